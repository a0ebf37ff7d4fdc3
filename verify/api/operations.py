"""Unauthenticated operations routes: liveness, readiness, metrics, the contract."""

from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, Response, current_app

from verify import metrics
from verify.api.context import services
from verify.settings import PROJECT_ROOT

bp = Blueprint("operations", __name__)

SPEC_PATH = PROJECT_ROOT / "openapi.yaml"


@bp.get("/healthz")
def healthz():
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    checks: dict = {}
    ready = True
    try:
        services().database.ping()
        checks["database"] = {"status": "ok"}
    except Exception as error:  # any failure to reach the database means not ready
        current_app.logger.warning("readiness: database unreachable: %s", type(error).__name__)
        checks["database"] = {"status": "unavailable", "error": type(error).__name__}
        ready = False
    # A GeoIP problem is reported, not fatal: its signals read "unknown" and the rest works.
    statuses = services().assessor.geoip.statuses(now=datetime.now(timezone.utc))
    checks["geoip"] = [status.as_dict() for status in statuses]
    # A failing DNS canary is degraded, not down: MX outcomes read "unknown" meanwhile.
    checks["dns"] = services().assessor.mx_checker.readiness()
    body = {"status": "ok" if ready else "unavailable", "checks": checks}
    return body, 200 if ready else 503


@bp.get("/metrics")
def metrics_exposition():
    body, content_type = metrics.render()
    return Response(body, content_type=content_type)


@bp.get("/openapi.yaml")
def openapi_spec():
    return Response(SPEC_PATH.read_bytes(), mimetype="application/yaml")
