"""Request lines and header fields too large to read: 414 and 431 as problem+json, both from
the app (any WSGI server, the test client) and from gunicorn under `verify serve`."""

from __future__ import annotations

import json
import socket

import pytest

from tests.store.test_resilience import verify_serve
from verify.api.request_size import MAX_HEADER_FIELD, MAX_HEADER_FIELDS, MAX_URI

HEALTH = "/healthz"


def assert_problem(status: int, expected: int, content_type: str, body: bytes) -> None:
    assert status == expected, body[:200]
    assert content_type.split(";")[0].strip() == "application/problem+json"
    document = json.loads(body)
    assert document["status"] == expected and document["type"].startswith("https://")


# -- through the app -----------------------------------------------------------------------

def test_a_uri_over_the_limit_is_414_from_the_app(client):
    response = client.get("/v1/assessments?email=" + "a" * MAX_URI)
    assert_problem(response.status_code, 414, response.content_type, response.data)


def test_a_uri_at_the_limit_is_read(client):
    response = client.get(HEALTH + "?x=" + "a" * (MAX_URI - 100))
    assert response.status_code == 200


def test_a_header_field_over_the_limit_is_431_from_the_app(client):
    response = client.get(HEALTH, headers={"X-Big": "a" * MAX_HEADER_FIELD})
    assert_problem(response.status_code, 431, response.content_type, response.data)


def test_too_many_header_fields_are_431_from_the_app(client):
    response = client.get(HEALTH, headers=[(f"X-H{i}", "1") for i in range(MAX_HEADER_FIELDS + 1)])
    assert_problem(response.status_code, 431, response.content_type, response.data)


# -- through gunicorn ----------------------------------------------------------------------

def raw_exchange(port: int, request: bytes) -> tuple[int, str, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers.get("content-type", ""), body


@pytest.fixture(scope="module")
def served(tmp_path_factory, sqlite_template):
    import shutil

    path = tmp_path_factory.mktemp("served") / "verify.db"
    shutil.copy(sqlite_template, path)
    with verify_serve(f"sqlite:///{path}", workers=1) as (_server, port):
        yield port


@pytest.mark.parametrize("size", [MAX_URI + 10, 64 * 1024])
def test_a_long_request_line_is_414_problem_json_from_gunicorn(served, size):
    request = b"GET /healthz?x=" + b"a" * size + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    status, content_type, body = raw_exchange(served, request)
    assert_problem(status, 414, content_type, body)


@pytest.mark.parametrize("size", [MAX_HEADER_FIELD - 5, MAX_HEADER_FIELD + 10, 64 * 1024])
def test_a_large_header_field_is_431_problem_json_from_gunicorn(served, size):
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size + b"\r\nConnection: close\r\n\r\n"
    status, content_type, body = raw_exchange(served, request)
    assert_problem(status, 431, content_type, body)


@pytest.mark.parametrize("count", [MAX_HEADER_FIELDS + 5, 10 * MAX_HEADER_FIELDS])
def test_too_many_header_fields_are_431_problem_json_from_gunicorn(served, count):
    fields = b"".join(b"X-H%d: 1\r\n" % i for i in range(count))
    status, content_type, body = raw_exchange(served, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + fields + b"Connection: close\r\n\r\n")
    assert_problem(status, 431, content_type, body)


def test_a_broken_request_line_is_400_problem_json_from_gunicorn(served):
    status, content_type, body = raw_exchange(served, b"GET\x01 / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert_problem(status, 400, content_type, body)


def test_a_request_within_the_limits_is_answered_by_gunicorn(served):
    status, content_type, body = raw_exchange(served, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
