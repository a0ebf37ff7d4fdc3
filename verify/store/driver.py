"""Statements run through the database driver itself (sqlite3, psycopg), for the assessment hot path.

The ORM and a per-request Session cost more than the statements they run (profiled: about
2 ms of 2.5 per assessment on SQLite). Here a statement is plain SQL with `:name` parameters,
written once for both databases and translated once per dialect; timestamps are bound as each
database stores them. On PostgreSQL a batch of statements goes out in one pipeline: one
network round trip however many statements it holds; psycopg prepares each statement on a
connection after a few uses, so planning is paid once per connection, not per request.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

import sqlite3

import orjson
import psycopg
import sqlalchemy as sa

from verify.errors import Conflict, Unavailable

Params = Mapping[str, Any]
log = logging.getLogger(__name__)


class UniqueViolation(Conflict):
    """A write collided with a concurrent one on a unique key (two retries under one Idempotency-Key)."""


class WriterUnreachable(Unavailable):
    """The group-commit writer could not be reached, and no part of the batch was sent to it
    (so the caller may commit the batch itself)."""


_NAMED = re.compile(r"(?<![:\w]):(\w+)")


@lru_cache(maxsize=64)
def _pyformat(sql: str) -> str:
    """`:name` to psycopg's `%(name)s`, once per statement text."""
    return _NAMED.sub(r"%(\1)s", sql.replace("%", "%%"))


def sqlite_moment(moment: datetime) -> str:
    """A UTC moment as SQLAlchemy stores it in SQLite (naive, microseconds always written),
    so that text comparison in an index orders it as time."""
    utc = moment.astimezone(timezone.utc)
    return (f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d} {utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
            f".{utc.microsecond:06d}")


@lru_cache(maxsize=65536)
def _sqlite_text_moment(text: str) -> datetime:
    # A hot key's rows come back on every request: their moments are parsed once.
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def json_text(value: Any) -> str:
    """A JSON column's text (orjson: about ten times json.dumps on an assessment's signals);
    what orjson refuses (an integer past 64 bits in a caller's metadata) goes through json."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass
class Driver:
    """One DBAPI connection and its dialect, and the group-commit writer its writes go to, if any."""

    connection: Any
    dialect: str
    writer: Any = None  # group commit (see `writer` below)

    @classmethod
    def of_session(cls, session: Any) -> Driver:
        """The driver connection under a Session's transaction (the CLI and tests assess through one)."""
        connection = session.connection()
        return cls(connection.connection.driver_connection, connection.dialect.name)

    @property
    def postgres(self) -> bool:
        return self.dialect == "postgresql"

    def bind(self, params: Params) -> dict[str, Any]:
        if self.postgres:
            return dict(params)
        return {name: sqlite_moment(value) if isinstance(value, datetime) else value for name, value in params.items()}

    def moment(self, value: Any) -> datetime | None:
        """A timestamp read back: SQLite gives the stored text, PostgreSQL an aware datetime."""
        if value is None:
            return None
        if isinstance(value, str):
            return _sqlite_text_moment(value)
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)

    def read(self, batch: Sequence[tuple[str, Params]]) -> list[list[tuple]]:
        """The rows of each statement, in one round trip on PostgreSQL."""
        if not self.postgres:
            return [self.connection.execute(sql, self.bind(params)).fetchall() for sql, params in batch]
        cursors = []
        with self.connection.pipeline():
            for sql, params in batch:
                cursor = self.connection.cursor()
                cursor.execute(_pyformat(sql), params)
                cursors.append(cursor)
        return [cursor.fetchall() for cursor in cursors]

    def write(self, batch: Sequence[tuple[str, Sequence[Params]]]) -> None:
        """Run each statement for each of its parameter sets, in the current transaction (one round trip on PostgreSQL)."""
        if self.writer is not None:  # committed by the writer process on return: commit() has nothing left to do
            try:
                return self.writer.write([(sql, [self.bind(row) for row in rows]) for sql, rows in batch])
            except WriterUnreachable:  # its supervisor is gone and nothing restarts it: commit here, as without one
                _warn_writer_gone()
        try:
            if not self.postgres:
                for sql, rows in batch:
                    self.connection.executemany(sql, [self.bind(row) for row in rows])
                return
            with self.connection.pipeline():
                cursor = self.connection.cursor()
                for sql, rows in batch:
                    for row in rows:
                        cursor.execute(_pyformat(sql), row)
        except (sqlite3.IntegrityError, psycopg.IntegrityError):
            raise UniqueViolation("a concurrent change collided with this one; retry") from None

    def commit(self) -> None:
        """End the write transaction: SQLite's; PostgreSQL in autocommit committed at the pipeline's sync."""
        if not getattr(self.connection, "autocommit", False):
            self.connection.commit()

    def rollback(self) -> None:
        if not getattr(self.connection, "autocommit", False):
            self.connection.rollback()


# Group commit (store/group_commit.py): a `verify serve` worker on SQLite sets this to its
# client of the single writer process, and the pooled drivers send their write batches there.
writer: Any = None
WRITER_GONE_WARNING_SECONDS = 60.0
_writer_gone_warned = -WRITER_GONE_WARNING_SECONDS


def _warn_writer_gone() -> None:
    global _writer_gone_warned
    now = time.monotonic()
    if now - _writer_gone_warned >= WRITER_GONE_WARNING_SECONDS:
        _writer_gone_warned = now
        log.warning("the SQLite group-commit writer is not reachable: this worker commits its own writes "
                    "(restart verify serve to bring the writer back)")


@contextmanager
def pooled_driver(engine: sa.Engine) -> Iterator[Driver]:
    """A driver connection from the engine's pool, outside any Session; back to the pool after.

    On PostgreSQL it is one of the hot path's own autocommit connections (store/database.py):
    reads need no transaction, and a write batch in one pipeline is one implicit transaction
    (its statements commit together at the sync, or none does). SQLite's module opens a
    transaction before the first write; the caller commits. A connection that failed under us
    (a restarted server) is dropped from the pool, not reused.
    """
    pooled = engine.raw_connection()
    raw = pooled.driver_connection
    postgres = engine.dialect.name == "postgresql"
    try:
        yield Driver(raw, engine.dialect.name, writer=None if postgres else writer)
    except BaseException:
        if postgres and (raw.closed or raw.broken):
            pooled.invalidate()
        elif not postgres:
            raw.rollback()
        raise
    finally:
        pooled.close()
