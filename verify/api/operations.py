"""Unauthenticated operations routes: liveness, readiness, metrics, the contract."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, Response, current_app

from verify import metrics
from verify.api.auth import authenticate
from verify.api.context import services
from verify.errors import Unauthenticated
from verify.settings import PROJECT_ROOT

bp = Blueprint("operations", __name__)

SPEC_PATH = PROJECT_ROOT / "openapi.yaml"
WRITE_PROBE_TIMEOUT_MS = 500  # a probe must answer well inside a load balancer's check interval

# A readiness check returns what /readyz shows for it and whether the service can work
# without it; `admin` says whether the caller may see file-system paths.
Check = Callable[..., tuple[Any, bool]]


@bp.get("/healthz")
def healthz():
    return {"status": "ok"}


def database_check(*, admin: bool) -> tuple[dict, bool]:
    """Ready means a write can be made: a reachable but read-only or locked database is not."""
    try:
        services().database.probe_write(timeout_ms=WRITE_PROBE_TIMEOUT_MS)
    except Exception as error:  # whatever stops the probe stops every write
        current_app.logger.warning("readiness: the database cannot take a write: %s", type(error).__name__)
        return {"status": "unavailable", "error": type(error).__name__}, False
    return {"status": "ok"}, True


def geoip_check(*, admin: bool) -> tuple[list, bool]:
    # A GeoIP problem is reported, not fatal: its signals read "unknown" and the rest works.
    statuses = services().assessor.geoip.statuses(now=datetime.now(timezone.utc))
    shown = [status.as_dict() for status in statuses]
    if not admin:
        # Paths (and errors, which quote them) tell a stranger how the host is laid out.
        shown = [{key: value for key, value in item.items() if key not in ("path", "error")} for item in shown]
    return shown, True


def dns_check(*, admin: bool) -> tuple[dict, bool]:
    # A failing DNS canary is degraded, not down: MX outcomes read "unknown" meanwhile.
    return services().assessor.mx_checker.readiness(), True


CHECKS: dict[str, Check] = {"database": database_check, "geoip": geoip_check, "dns": dns_check}


def is_admin() -> bool:
    """Whether the request carries a live admin key; anyone else still gets an answer."""
    try:
        return "admin" in authenticate().scopes
    except Unauthenticated:
        return False
    except Exception:  # the database is down: the database check says so
        return False


@bp.get("/readyz")
def readyz():
    admin = is_admin()
    checks, ready = {}, True
    for name, check in CHECKS.items():
        checks[name], fine = check(admin=admin)
        ready = ready and fine
    body = {"status": "ok" if ready else "unavailable", "checks": checks}
    return body, 200 if ready else 503


@bp.get("/metrics")
def metrics_exposition():
    body, content_type = metrics.render()
    return Response(body, content_type=content_type)


@bp.get("/openapi.yaml")
def openapi_spec():
    return Response(SPEC_PATH.read_bytes(), mimetype="application/yaml")
