"""The admin console at /console/: server-rendered pages over the same store and engine functions as the API."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask

from verify.console.blueprint import CONTENT_SECURITY_POLICY, bp
from verify.console import assessments, auth, lists, overview, policy, trail  # noqa: F401  (they add their routes to bp)
from verify.settings import Settings

__all__ = ["CONTENT_SECURITY_POLICY", "init_app"]


def init_app(app: Flask, settings: Settings) -> None:
    """Sign sessions with VERIFY_SECRET_KEY; without one the console answers 503 (saying why) and the API runs as before.

    A key generated per process would sign differently on each worker, so sessions would end
    at random: no key, no console.
    """
    if settings.secret_key:
        app.secret_key = settings.secret_key
    app.config.update(
        SESSION_COOKIE_NAME="verify_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_PATH="/console",
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=settings.console_idle_minutes),
        WTF_CSRF_TIME_LIMIT=None,  # the session's idle timeout bounds a token's life
        CONSOLE_IDLE=timedelta(minutes=settings.console_idle_minutes),
    )
    app.register_blueprint(bp)
