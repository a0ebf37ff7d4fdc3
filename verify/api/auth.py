"""Bearer API keys and scopes: every /v1 route names the scopes it accepts."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import g, request

from verify.api.context import db_session, services
from verify.errors import Forbidden, Unauthenticated
from verify.store.models import ApiKey

SCOPES = ("assess", "admin", "review")


def current_key() -> ApiKey:
    return g.api_key


def key_for(secret: str) -> ApiKey | None:
    """The live key with this secret (from the per-process copy, revalidated each request)."""
    return services().assessor.snapshots.api_key(secret, session=db_session())


def bearer_secret() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthenticated("send an API key as `Authorization: Bearer <key>`")
    return secret.strip()


def authenticate() -> ApiKey:
    return known_key(key_for(bearer_secret()))


def known_key(key: ApiKey | None) -> ApiKey:
    if key is None:
        raise Unauthenticated("the API key is unknown or revoked")
    return key


def allowed(key: ApiKey, *accepted: str) -> ApiKey:
    """The key, when it holds one of the accepted scopes; remembered as the request's key."""
    if not set(accepted) & set(key.scopes):
        raise Forbidden(f"this route needs the {' or '.join(accepted)} scope")
    g.api_key = key
    return key


def requires_scope(*accepted: str) -> Callable:
    """Let the request through when its key holds any of the accepted scopes."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            allowed(authenticate(), *accepted)
            return view(*args, **kwargs)

        return guarded

    return decorate
