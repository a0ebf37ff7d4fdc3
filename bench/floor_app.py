"""The floor under an assessment: the library calls it makes and one durable write, nothing else.

No authentication, history, lists, judging, log line or metrics: parse the body, make the
library calls (bench/library_calls.py), store the signup in a table with only a primary key,
commit (SQLite in WAL with `synchronous` from FLOOR_SQLITE_SYNCHRONOUS, each worker its own
commit, waiting for the write lock as verify's group writer does; PostgreSQL in autocommit),
answer. bench/http_bench.py serves it under the same
gunicorn settings as verify and the bare-Flask baseline, so its ratio says how much of the
baseline's rate is left once only the libraries and a durable commit are paid for.

FLOOR_DATABASE: an SQLite file path or a postgresql:// URL; FLOOR_GEOIP: a folder holding
city.mmdb, asn.mmdb and anon.mmdb.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from pathlib import Path

import maxminddb
import psycopg
from flask import Flask, request

from library_calls import library_calls

# SQLite's busy handler sleeps up to 100 ms a try: a worker polls for the write lock instead,
# as verify's group writer does (with the handler, this floor measured 0.27 instead of 0.32).
LOCK_POLL_SECONDS = 0.0002
TABLE = "CREATE TABLE IF NOT EXISTS floor_signups (id TEXT PRIMARY KEY, email TEXT, phone TEXT, ip TEXT, body TEXT)"


class Store:
    """One connection per worker process, opened on its first request (after gunicorn's fork)."""

    def __init__(self, database: str, synchronous: str) -> None:
        self.database, self.synchronous = database, synchronous
        self.postgres = database.startswith("postgresql://")
        self._connection = None
        self._pid = 0

    def add(self, row: tuple) -> None:
        connection = self._connected()
        if self.postgres:
            connection.execute("INSERT INTO floor_signups VALUES (%s, %s, %s, %s, %s)", row, prepare=True)
            return
        while True:
            try:
                connection.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as error:
                if error.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                    raise
                time.sleep(LOCK_POLL_SECONDS)
        connection.execute("INSERT INTO floor_signups VALUES (?, ?, ?, ?, ?)", row)
        connection.execute("COMMIT")

    def _connected(self):
        if self._pid != os.getpid():
            if self.postgres:
                self._connection = psycopg.connect(self.database, autocommit=True)
            else:
                self._connection = sqlite3.connect(self.database, isolation_level=None, timeout=30)
                self._connection.execute("PRAGMA journal_mode=WAL")
                self._connection.execute(f"PRAGMA synchronous={self.synchronous}")
            self._connection.execute(TABLE)
            if not self.postgres:
                self._connection.execute("PRAGMA busy_timeout=0")  # from here on, add() waits for the lock
            self._pid = os.getpid()
        return self._connection


def create_app() -> Flask:
    app = Flask(__name__)
    folder = Path(os.environ["FLOOR_GEOIP"])
    readers = [maxminddb.open_database(folder / name) for name in ("city.mmdb", "asn.mmdb", "anon.mmdb")]
    store = Store(os.environ["FLOOR_DATABASE"], os.environ.get("FLOOR_SQLITE_SYNCHRONOUS", "full"))

    @app.post("/v1/assessments")
    def assess():
        body = request.get_json()
        mailbox, e164 = library_calls(readers, email=body["email"], phone=body["phone"], country=body.get("country"),
                                      ip=body["ip"])
        assessment_id = str(uuid.uuid4())
        store.add((assessment_id, mailbox, e164, body["ip"], json.dumps(body)))
        return {"id": assessment_id, "verdict": "allow", "email": mailbox}, 201

    return app
