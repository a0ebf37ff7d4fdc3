"""Request limits: bounded bodies, and per-key rate limits (VERIFY_RATE_LIMIT) shared by
instances through VERIFY_RATE_LIMIT_STORAGE.

The limit is counted per API key, by the key's id (never its secret), across every route.
A request without a valid key is not counted at all: it gets its 401 from the route, and
nobody can spend another caller's budget by sending a wrong secret.
"""

from __future__ import annotations

import math
import time

from flask import Flask, Response, g, request
from werkzeug.exceptions import RequestEntityTooLarge
from flask_limiter import ApplicationLimit, Limiter, RequestLimit
from limits import parse_many
from sqlalchemy.exc import SQLAlchemyError

from verify.api.auth import key_for
from verify.api.context import db_session
from verify.api.errors import problem
from verify.errors import InvalidInput, NotFound
from verify.settings import Settings, SettingsError

KEY_PREFIX = "verify"  # the namespace of the counters in a shared Redis
_NO_KEY = object()


def limited_key() -> str | None:
    """`api-key:<id>` for a request with a valid bearer key, else None (looked up once per request)."""
    cached = g.get("rate_limit_key", _NO_KEY)
    if cached is not _NO_KEY:
        return cached
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    key = None
    if scheme.lower() == "bearer" and secret.strip():
        try:
            key = key_for(secret.strip())
        except SQLAlchemyError:
            # The database is down: the route answers 503 itself; the limiter must not read
            # this as its own storage failing.
            db_session().rollback()
            key = None
    g.rate_limit_key = f"api-key:{key.id}" if key is not None else None
    return g.rate_limit_key


def _not_limited() -> bool:
    return limited_key() is None


def _too_many(limit: RequestLimit) -> Response:
    retry_after = max(1, math.ceil(limit.window[0] - time.time()))
    response = problem(429, "too-many-requests", "Too many requests", f"this key may make {limit.limit}; retry later")
    response.headers["Retry-After"] = str(retry_after)
    return response


def bound_streamed_body() -> None:
    """413 for a chunked body (no Content-Length) larger than MAX_CONTENT_LENGTH.

    Werkzeug stops reading such a stream at the maximum and hands over what it read: the
    JSON would look merely truncated (400). Read it here, and look one byte further.
    """
    if request.content_length is not None or not request.environ.get("wsgi.input_terminated"):
        return
    limit = request.max_content_length
    if limit is not None and len(request.get_data(cache=True)) >= limit and request.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()


def refuse_nul() -> None:
    """NUL in a path or a query: nothing stored can match it, and PostgreSQL refuses it in text."""
    if "\x00" in request.path:
        raise NotFound("no such resource")
    if any("\x00" in key or "\x00" in value for key, value in request.args.items(multi=True)):
        raise InvalidInput("query parameters must not contain NUL characters", errors=[{"field": "query", "message": "contains NUL"}])


def init_app(app: Flask, settings: Settings) -> None:
    """Bound streamed bodies, refuse NUL in URLs; install the rate limiter when VERIFY_RATE_LIMIT is set."""
    app.before_request(bound_streamed_body)
    app.before_request(refuse_nul)
    if not settings.rate_limit:
        return
    try:
        parse_many(settings.rate_limit)
    except ValueError:
        raise SettingsError(f"VERIFY_RATE_LIMIT must read like 200/second, not {settings.rate_limit!r}") from None
    limiter = Limiter(
        key_func=lambda: limited_key() or "",
        application_limits=[
            ApplicationLimit(settings.rate_limit, key_function=lambda: limited_key() or "", exempt_when=_not_limited)
        ],
        storage_uri=settings.rate_limit_storage,
        strategy="moving-window",
        on_breach=_too_many,
        # A broken Redis must not take signups down with it: limit each instance in memory meanwhile.
        swallow_errors=True,
        in_memory_fallback=[settings.rate_limit],
        key_prefix=KEY_PREFIX,
    )
    limiter.init_app(app)
    app.extensions["verify-limiter"] = limiter
