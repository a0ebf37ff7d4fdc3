"""Per-key rate limits (VERIFY_RATE_LIMIT), shared by instances through VERIFY_RATE_LIMIT_STORAGE.

The limit is counted per API key, by the key's id (never its secret), across every route.
A request without a valid key is not counted at all: it gets its 401 from the route, and
nobody can spend another caller's budget by sending a wrong secret.
"""

from __future__ import annotations

import math
import time

from flask import Flask, Response, g, request
from flask_limiter import ApplicationLimit, Limiter, RequestLimit
from limits import parse_many
from sqlalchemy.exc import SQLAlchemyError

from verify.api.context import db_session
from verify.api.errors import problem
from verify.settings import Settings, SettingsError
from verify.store import queries

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
            key = queries.find_api_key(secret.strip(), session=db_session())
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
    retry_after = max(1, math.ceil(limit.reset_at - time.time()))
    response = problem(429, "too-many-requests", "Too many requests", f"this key may make {limit.limit}; retry later")
    response.headers["Retry-After"] = str(retry_after)
    return response


def init_app(app: Flask, settings: Settings) -> None:
    """Install the limiter when VERIFY_RATE_LIMIT is set; without it nothing is counted."""
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
        key_prefix="verify",
    )
    limiter.init_app(app)
    app.extensions["verify-limiter"] = limiter
