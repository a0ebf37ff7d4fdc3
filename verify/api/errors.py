"""The one place where errors become application/problem+json (RFC 9457)."""

from __future__ import annotations

import logging
import sqlite3

import psycopg

from flask import Flask, Response, json
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from verify import errors, metrics

log = logging.getLogger(__name__)

PROBLEM_TYPE = "https://verify.invalid/problems/"

STATUS: dict[type[errors.VerifyError], tuple[int, str, str]] = {
    errors.MalformedRequest: (400, "malformed-request", "Malformed request"),
    errors.Unauthenticated: (401, "unauthenticated", "Authentication required"),
    errors.Forbidden: (403, "forbidden", "Not allowed for this key"),
    errors.NotFound: (404, "not-found", "Not found"),
    errors.Conflict: (409, "conflict", "Conflict"),
    errors.PayloadTooLarge: (413, "payload-too-large", "Payload too large"),
    errors.UnsupportedMediaType: (415, "unsupported-media-type", "Unsupported media type"),
    errors.InvalidInput: (422, "invalid-input", "Invalid input"),
    errors.UpstreamFailed: (502, "upstream-failed", "An outside source failed"),
    errors.Unavailable: (503, "unavailable", "Service unavailable"),
}


def problem(status: int, slug: str, title: str, detail: str, *, problems: list[dict] | None = None) -> Response:
    body: dict = {"type": PROBLEM_TYPE + slug, "title": title, "status": status, "detail": detail}
    if problems:
        body["errors"] = problems
    response = Response(json.dumps(body), status=status, mimetype="application/problem+json")
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="verify"'
    return response


def handle_verify_error(error: errors.VerifyError) -> Response:
    for cls in type(error).__mro__:
        if cls in STATUS:
            status, slug, title = STATUS[cls]
            return problem(status, slug, title, error.detail, problems=error.errors)
    return problem(500, "internal", "Internal error", "unexpected error")


def handle_http_error(error: HTTPException) -> Response:
    code = error.code or 500
    slug = (error.name or "error").lower().replace(" ", "-")
    response = problem(code, slug, error.name or "Error", error.description or "")
    if code == 405 and error.get_response().headers.get("Allow"):
        response.headers["Allow"] = error.get_response().headers["Allow"]
    if code == 429 and error.get_response().headers.get("Retry-After"):
        response.headers["Retry-After"] = error.get_response().headers["Retry-After"]
    return response


def handle_database_down(error: Exception) -> Response:
    log.warning("database unavailable: %s", type(error).__name__)
    metrics.record_database_error()
    return problem(503, "unavailable", "Service unavailable", "the database is not reachable; retry shortly")


def handle_unexpected(error: Exception) -> Response:
    log.exception("unhandled error")
    return problem(500, "internal", "Internal error", "an unexpected error occurred; it has been logged")


def init_app(app: Flask) -> None:
    app.register_error_handler(errors.VerifyError, handle_verify_error)
    app.register_error_handler(HTTPException, handle_http_error)
    # The hot path talks to the drivers themselves (store/driver.py): their errors are the same outage.
    for database_error in (OperationalError, InterfaceError, PoolTimeout, sqlite3.OperationalError, psycopg.OperationalError,
                           psycopg.InterfaceError):
        app.register_error_handler(database_error, handle_database_down)
    app.register_error_handler(Exception, handle_unexpected)
