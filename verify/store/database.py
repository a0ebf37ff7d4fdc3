"""The database connection: engine, sessions, migrations, readiness."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from verify.errors import Conflict

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 15000
MIGRATION_LOCK_KEY = 0x76657269667900  # "verify" in ASCII: one key for every instance of the service


def normalise_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs that name no driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _sqlite_pragmas(synchronous: str):
    """WAL lets several gunicorn workers read while one writes. `synchronous` is the durability
    setting (VERIFY_SQLITE_SYNCHRONOUS): FULL syncs the log at every commit; NORMAL only at
    checkpoints, so a power cut (never a crashed process) can lose the last commits."""

    def on_connect(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    return on_connect


# The assessment hot path's own PostgreSQL connections (store/driver.py). Its statements are
# index scans by design: without seqscan a generic plan made while the table was empty or
# unanalysed still seeks its index (such a plan cost 5 to 9 ms per request), and a generic
# plan means planning once per connection, not once per request.
HOT_PATH_OPTIONS = "-c enable_seqscan=off -c plan_cache_mode=force_generic_plan -c jit=off"


def create_db_engine(url: str, *, sqlite_synchronous: str = "full", hot_path: bool = False) -> sa.Engine:
    """An engine tuned for the backend: WAL SQLite, or PostgreSQL with short connect timeouts.

    No pre-ping: it cost every request a round trip. A connection that a restarted server
    broke fails its statement once; SQLAlchemy then drops it and the pool's older ones, and
    the hot path (store/driver.py) drops its own.
    """
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 15, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas(sqlite_synchronous))
        return engine
    return sa.create_engine(
        url,
        pool_size=2 if hot_path else 5,  # the hot path holds one connection per request at most
        max_overflow=10,
        pool_timeout=3,
        **({"isolation_level": "AUTOCOMMIT"} if hot_path else {}),
        # keepalives and tcp_user_timeout bound a statement whose connection dies mid-flight
        # (a partition), which statement_timeout on the server cannot see.
        connect_args={
            "connect_timeout": 3,
            "options": "-c statement_timeout=5000" + (" " + HOT_PATH_OPTIONS if hot_path else ""),
            "keepalives": 1,
            "keepalives_idle": 5,
            "keepalives_interval": 2,
            "keepalives_count": 2,
            "tcp_user_timeout": 8000,
        },
    )


class Database:
    """One engine and its session factory."""

    def __init__(self, url: str, *, sqlite_synchronous: str = "full") -> None:
        self.url = normalise_url(url)
        self.engine = create_db_engine(self.url, sqlite_synchronous=sqlite_synchronous)
        self._sessions = sessionmaker(self.engine, class_=Session, expire_on_commit=False)
        # PostgreSQL: a pool of its own for the hot path; SQLite's file needs none.
        self.hot_engine = create_db_engine(self.url, hot_path=True) if self.dialect == "postgresql" else self.engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self) -> Session:
        return self._sessions()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error; a unique-key collision is a Conflict."""
        with self._sessions() as session:
            try:
                with session.begin():
                    yield session
            except IntegrityError:
                raise Conflict("a concurrent change collided with this one; retry") from None

    def upgrade(self) -> None:
        """Apply every pending Alembic migration."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    @contextmanager
    def migration_lock(self) -> Iterator[None]:
        """Hold PostgreSQL's advisory lock for migrations: of containers that start together,
        one migrates and seeds, and the others wait and then find it done.

        SQLite needs none: it is one machine's file, migrated by the one process that serves it.
        """
        if self.dialect != "postgresql":
            yield
            return
        with self.engine.connect() as connection:
            # Waiting for the lock may take longer than the service's statement timeout.
            connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            try:
                yield
            finally:
                connection.rollback()  # ends the transaction, and with it the lock

    def ping(self) -> None:
        """Raise if the database cannot be reached."""
        with self.engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))

    def probe_write(self, *, timeout_ms: int = 500) -> None:
        """Raise unless a write can be made now: a rolled-back no-op update that must take the
        write lock (a read-only file or database, or a writer holding the lock, fails it)."""
        sqlite = self.dialect == "sqlite"
        with self.engine.connect() as connection:
            try:
                if sqlite:
                    connection.exec_driver_sql(f"PRAGMA busy_timeout={int(timeout_ms)}")
                else:
                    connection.exec_driver_sql(f"SET LOCAL lock_timeout = {int(timeout_ms)}")
                    connection.exec_driver_sql(f"SET LOCAL statement_timeout = {2 * int(timeout_ms)}")
                connection.exec_driver_sql("UPDATE alembic_version SET version_num = version_num")
            finally:
                connection.rollback()
                if sqlite:
                    connection.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")

    def dispose(self) -> None:
        self.engine.dispose()
        self.hot_engine.dispose()
