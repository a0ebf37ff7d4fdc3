"""Signing in and out of the console, and the checks every console request passes.

The session holds the key's id, never its secret. Each request reloads the key, so a revoked
key ends its sessions at once; a session idle for longer than the timeout ends too. Every
POST carries a CSRF token (Flask-WTF), the login form included.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app, g, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError, generate_csrf, validate_csrf
from wtforms import ValidationError

from verify.api.context import db_session, services
from verify.console.blueprint import bp, console_enabled
from verify.store.audit import record_audit
from verify.store.models import ApiKey
from verify.store.transactions import commit

CONSOLE_SCOPES = ("admin", "review")
OPEN_ENDPOINTS = ("console.login", "console.static")


def current_key() -> ApiKey:
    return g.console_key


def is_admin() -> bool:
    return "admin" in current_key().scopes


def requires_admin(view: Callable) -> Callable:
    """Pages and actions that change lists or policy, or read the audit trail: admin keys only."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if not is_admin():
            return render_template("console/error.html", status=403,
                                   error_text="This needs an admin key; a review key reads and labels only."), 403
        return view(*args, **kwargs)

    return guarded


def signed_in_key() -> ApiKey | None:
    """The live key behind this session, or None (no session, revoked key, idle too long)."""
    key_id, lookup, seen = session.get("key_id"), session.get("lookup"), session.get("seen")
    if not isinstance(key_id, int) or not isinstance(seen, (int, float)):
        return None
    if time.time() - seen > current_app.config["CONSOLE_IDLE"].total_seconds():
        return None
    key = db_session().get(ApiKey, key_id)
    if key is None or key.revoked_at is not None or key.lookup != lookup or not set(CONSOLE_SCOPES) & set(key.scopes):
        return None
    return key


@bp.before_request
def guard():
    if not console_enabled():
        return render_template("console/error.html", status=503,
                               error_text="The console is off: set VERIFY_SECRET_KEY and restart."), 503
    if request.method == "POST":
        try:
            validate_csrf(request.form.get("csrf_token"))
        except (ValidationError, CSRFError) as error:
            return render_template("console/error.html", status=400, error_text=f"Refused: {error.args[0]} Reload the page and try again."), 400
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    key = signed_in_key()
    if key is None:
        session.clear()
        return redirect(url_for("console.login", next=request.path if request.method == "GET" else None))
    session["seen"] = int(time.time())
    g.console_key = key
    return None


@bp.app_template_global()
def csrf_token() -> str:
    return generate_csrf()


@bp.context_processor
def signed_in() -> dict[str, Any]:
    key = g.get("console_key")
    return {"key": key, "admin": key is not None and "admin" in key.scopes}


def safe_next(target: str | None) -> str:
    """Only a console path: never an outside address (open redirect)."""
    if target and target.startswith("/console/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("console.overview")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        return render_template("console/login.html", next=request.args.get("next", ""))
    secret = request.form.get("api_key", "").strip()
    key = services().assessor.snapshots.api_key(secret, session=db_session()) if secret else None
    if key is None or not set(CONSOLE_SCOPES) & set(key.scopes):
        message = "That key is unknown or revoked." if key is None else "Sign in with a key of scope admin or review."
        return render_template("console/login.html", error=message, next=request.form.get("next", "")), 401
    session.clear()  # a fresh session (and CSRF token) at each sign-in: no fixation
    session.update(key_id=key.id, lookup=key.lookup, seen=int(time.time()))
    record_audit(key.name, "console.sign_in", target=key.name, session=db_session())
    commit(db_session())
    return redirect(safe_next(request.form.get("next")))


@bp.post("/logout")
def logout():
    session.clear()
    return redirect(url_for("console.login"))


