"""The benchmark's floor (bench/floor_app.py) does what its row claims: the library calls and
one committed row per assessment, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import psycopg
import pytest

from bench.engine_bench import build_geoip

BENCH = Path(__file__).resolve().parents[2] / "bench"
SIGNUP = {"email": "Ann.Lee@Gmail.com", "ip": "81.2.69.10", "phone": "+14155550123", "country": "US"}


@pytest.fixture
def floor_app(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    build_geoip(tmp_path)
    monkeypatch.setenv("FLOOR_GEOIP", str(tmp_path))

    def make(database: str):
        monkeypatch.setenv("FLOOR_DATABASE", database)
        import floor_app

        return floor_app.create_app().test_client()

    return make


def test_the_floor_commits_each_signup_on_sqlite(floor_app, tmp_path):
    database = tmp_path / "floor.db"
    answer = floor_app(str(database)).post("/v1/assessments", json=SIGNUP)
    assert answer.status_code == 201
    with sqlite3.connect(database) as connection:
        stored = connection.execute("SELECT id, email, phone FROM floor_signups").fetchall()
    assert stored == [(answer.json["id"], "Ann.Lee@gmail.com", "+14155550123")]


@pytest.mark.skipif(not os.environ.get("VERIFY_TEST_POSTGRES_URL"), reason="set VERIFY_TEST_POSTGRES_URL")
def test_the_floor_commits_each_signup_on_postgres(floor_app):
    url = os.environ["VERIFY_TEST_POSTGRES_URL"]
    answer = floor_app(url).post("/v1/assessments", json=SIGNUP)
    assert answer.status_code == 201
    with psycopg.connect(url, autocommit=True) as connection:
        stored = connection.execute("SELECT phone FROM floor_signups WHERE id = %s", (answer.json["id"],)).fetchall()
        connection.execute("DROP TABLE floor_signups")
    assert stored == [("+14155550123",)]
