"""The round-trip counting proxy, against the real PostgreSQL: what psycopg's calls cost."""

from __future__ import annotations

import struct
import time

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.conftest import POSTGRES_SKIP_REASON, POSTGRES_URL
from tests.support.pg_proxy import PostgresProxy

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason=POSTGRES_SKIP_REASON)


@pytest.fixture
def proxy():
    target = conninfo_to_dict(POSTGRES_URL or "")
    with PostgresProxy(target.get("host", "127.0.0.1"), int(target.get("port", 5432))) as running:
        yield running


def connect(proxy: PostgresProxy, *, sslmode: str = "disable", autocommit: bool = True) -> psycopg.Connection:
    connection = psycopg.connect(make_conninfo(POSTGRES_URL, host="127.0.0.1", port=proxy.port, sslmode=sslmode),
                                 autocommit=autocommit)
    proxy.reset()  # the startup exchange is not what the tests count
    return connection


def test_one_select_in_autocommit_is_one_round_trip(proxy):
    with connect(proxy) as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)
        assert (proxy.round_trips, proxy.queries) == (1, 1)  # without parameters: a simple Query
        assert connection.execute("SELECT %s", [1]).fetchone() == (1,)
        assert (proxy.round_trips, proxy.syncs) == (2, 1)  # Parse, Bind, Describe, Execute, Sync


def test_a_pipeline_of_two_statements_is_one_round_trip(proxy):
    with connect(proxy) as connection:
        with connection.pipeline():
            first = connection.execute("SELECT 1")
            second = connection.execute("SELECT 2")
        assert (first.fetchone(), second.fetchone()) == ((1,), (2,))
        assert (proxy.round_trips, proxy.syncs, proxy.flushes) == (1, 1, 0)  # Sync and Flush sent together


def test_a_fetch_in_the_middle_of_a_pipeline_is_a_round_trip_of_its_own(proxy):
    with connect(proxy) as connection:
        with connection.pipeline():
            assert connection.execute("SELECT %s", [1]).fetchone() == (1,)
            connection.execute("SELECT %s", [2])
        assert proxy.round_trips == 2


def test_a_select_in_a_transaction_then_commit_is_three_round_trips(proxy):
    # psycopg sends BEGIN as a simple Query of its own, then the statement, then COMMIT: three waits.
    with connect(proxy, autocommit=False) as connection:
        connection.execute("SELECT 1").fetchone()
        connection.commit()
        assert (proxy.round_trips, proxy.queries, proxy.syncs) == (3, 3, 0)
        proxy.reset()
        connection.execute("SELECT %s", [1]).fetchone()
        connection.commit()
        assert (proxy.round_trips, proxy.queries, proxy.syncs) == (3, 2, 1)


def test_an_ssl_request_is_refused_and_the_client_goes_on_in_clear(proxy):
    with connect(proxy, sslmode="prefer") as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)
        assert connection.pgconn.ssl_in_use is False
        assert proxy.round_trips == 1


def test_a_statement_larger_than_a_read_is_counted_once(proxy):
    with connect(proxy) as connection:
        assert connection.execute("SELECT length(%s)", ["x" * 300_000]).fetchone() == (300_000,)
        assert proxy.round_trips == 1


def message(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("!i", 4 + len(payload)) + payload


def read_until_ready(sock) -> bytes:
    received = b""
    while not received.endswith(b"Z\x00\x00\x00\x05I"):  # ReadyForQuery, idle
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection: {received!r}"
        received += chunk
    return received


def test_a_message_split_across_sends_is_counted_once(proxy):
    import socket

    target = conninfo_to_dict(POSTGRES_URL or "")
    startup_fields = b"user\x00" + target.get("user", "postgres").encode() + b"\x00database\x00" + target["dbname"].encode() + b"\x00\x00"
    startup = struct.pack("!ii", 8 + len(startup_fields), 196608) + startup_fields
    query = message(b"Q", b"SELECT 1\x00")
    with socket.create_connection(("127.0.0.1", proxy.port)) as sock:
        sock.sendall(startup)
        read_until_ready(sock)
        proxy.reset()
        for piece in (query[:1], query[1:3], query[3:]):  # the type byte, half the length, the rest
            sock.sendall(piece)
            time.sleep(0.05)
        assert b"T" in read_until_ready(sock)  # a RowDescription came back
        assert (proxy.queries, proxy.round_trips) == (1, 1)
