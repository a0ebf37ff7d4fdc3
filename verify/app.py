"""create_app: the table of contents of the service."""

from __future__ import annotations

import json

from flask import Flask

from verify import api, console, logs
from verify.api import context, instrumentation, limits, request_size, server_timing
from verify.api.json_encoding import OrjsonProvider
from verify.assessing import Assessor
from verify.engine.reasons import default_points
from verify.intel.dns import MxChecker, NullMxChecker
from verify.intel.geoip import GeoIP
from verify.intel.providers import Providers
from verify.settings import Settings
from verify.store.database import Database
from verify.store.snapshots import Snapshots

MAX_BODY_BYTES = 64 * 1024


def build_services(settings: Settings) -> context.Services:
    """Everything a request needs, built once per process."""
    mx_checker = (
        MxChecker(timeout=settings.dns_timeout, nameservers=settings.dns_nameservers, canary=settings.dns_canary)
        if settings.mx_check
        else NullMxChecker()
    )
    assessor = Assessor(
        providers=Providers.load(settings.data_dir),
        mx_checker=mx_checker,
        snapshots=Snapshots(base_points=default_points()),
        geoip=GeoIP.from_settings(settings),
    )
    return context.Services(settings=settings, database=Database(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous), assessor=assessor)


def default_policy(settings: Settings) -> dict:
    return json.loads((settings.data_dir / "default_policy.json").read_text(encoding="utf-8"))


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    # The contract lists every method a route takes; others get 405 with Allow, OPTIONS too.
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.json = OrjsonProvider(app)
    app.json.sort_keys = False  # keys in the order the views build them, as the contract lists them
    logs.init_app(app)
    instrumentation.init_app(app)
    server_timing.init_app(app, settings)
    request_size.init_app(app)
    context.init_app(app, build_services(settings))
    limits.init_app(app, settings)
    api.init_app(app)
    console.init_app(app, settings)
    return app
