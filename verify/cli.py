"""The `verify` command."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from pydantic import ValidationError

from verify.api.bodies import field_errors
from verify.api.context import Services
from verify.api.schemas import SignupIn, assessment_json
from verify.app import create_app, default_policy
from verify.assessing import Signup
from verify.errors import VerifyError
from verify.intel.providers import disposable_seed
from verify.store import queries
from verify.store.bootstrap import bootstrap


def app_services() -> Services:
    return current_app.extensions["verify"]


def upgrade_database(services: Services) -> None:
    """Apply migrations, then create what a first start needs."""
    services.database.upgrade()
    with services.database.transaction() as session:
        bootstrap(session=session, default_policy=default_policy(services.settings), disposable=disposable_seed())


def fail(message: str) -> None:
    raise click.ClickException(message)


@click.group(cls=FlaskGroup, create_app=create_app, add_default_commands=False, add_version_option=False)
def main() -> None:
    """verify: self-hosted signup verification."""


@main.command()
@click.option("--host", help="Address to listen on (VERIFY_HOST).")
@click.option("--port", type=int, help="Port to listen on (VERIFY_PORT).")
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes (VERIFY_WORKERS).")
@with_appcontext
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Run the production server (gunicorn), applying migrations first."""
    from verify.server import run_gunicorn

    services = app_services()
    upgrade_database(services)
    settings = services.settings
    services.database.dispose()  # workers open their own connections after the fork
    run_gunicorn(
        settings,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.workers,
    )


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@with_appcontext
def db_upgrade() -> None:
    """Apply migrations (and create the built-in lists and policy on first start)."""
    upgrade_database(app_services())
    click.echo("database is up to date")


@main.group()
def keys() -> None:
    """API keys."""


@keys.command("create")
@click.option("--name", required=True, help="A name that says who uses the key.")
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(["assess", "admin"]))
@with_appcontext
def keys_create(name: str, scopes: tuple[str, ...]) -> None:
    """Create a key and print its secret, alone on one line (it is not shown again)."""
    services = app_services()
    upgrade_database(services)
    try:
        with services.database.transaction() as session:
            secret = queries.create_api_key(name, scopes, session=session)
    except VerifyError as error:
        fail(error.detail)
    click.echo(secret)


@keys.command("list")
@with_appcontext
def keys_list() -> None:
    """List keys (names, scopes, state; never secrets)."""
    with app_services().database.transaction() as session:
        for key in queries.list_api_keys(session=session):
            state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
            click.echo(f"{key.name}\t{','.join(key.scopes)}\t{state}\tcreated {key.created_at:%Y-%m-%d}")


@keys.command("revoke")
@click.argument("name")
@with_appcontext
def keys_revoke(name: str) -> None:
    """Revoke a key at once."""
    try:
        with app_services().database.transaction() as session:
            queries.revoke_api_key(name, session=session)
    except VerifyError as error:
        fail(error.detail)
    click.echo(f"revoked {name}")


@main.command()
@click.option("--email", required=True)
@click.option("--phone")
@click.option("--ip")
@click.option("--country")
@click.option("--device-id")
@click.option("--user-agent")
@click.option("--external-id")
@click.option("--occurred-at", help="RFC 3339 time of the signup (default: now).")
@with_appcontext
def assess(**fields: str | None) -> None:
    """Assess one signup without a server and print the stored assessment as JSON."""
    services = app_services()
    upgrade_database(services)
    try:
        body = SignupIn.model_validate({name: value for name, value in fields.items() if value is not None})
    except ValidationError as error:
        fail("; ".join(f"{e['field']}: {e['message']}" for e in field_errors(error)))
    now = datetime.now(timezone.utc)
    signup = Signup(**body.model_dump(exclude={"occurred_at"}), occurred_at=body.occurred_at or now)
    with services.database.transaction() as session:
        row = services.assessor.assess(signup, session=session, now=now)
        click.echo(json.dumps(assessment_json(row), indent=2, ensure_ascii=False))


@main.group()
def geoip() -> None:
    """GeoIP databases (MaxMind DB format)."""


@geoip.command("info")
@with_appcontext
def geoip_info() -> None:
    """Each configured database: its type, build date and age; a warning when older than 30 days.

    Exits with status 1 when a configured database is missing or corrupt.
    """
    statuses = app_services().assessor.geoip.statuses(now=datetime.now(timezone.utc))
    if not statuses:
        click.echo("no GeoIP database is configured (VERIFY_GEOIP_CITY_DB, VERIFY_GEOIP_ASN_DB, VERIFY_GEOIP_ANONYMOUS_DB)")
        return
    for status in statuses:
        built = f"{status.build_date:%Y-%m-%d}" if status.build_date else "-"
        age = f"{status.age_days:g} days" if status.age_days is not None else "-"
        click.echo(f"{status.role}\t{status.path}\t{status.status}\t{status.database_type or '-'}\tbuilt {built}\tage {age}")
        if status.status == "stale":
            click.echo(f"warning: the {status.role} database is {status.age_days:g} days old; run geoipupdate", err=True)
        if status.error:
            click.echo(f"warning: the {status.role} database: {status.error}", err=True)
    if any(status.status in ("missing", "corrupt") for status in statuses):
        sys.exit(1)


if __name__ == "__main__":
    sys.exit(main())
