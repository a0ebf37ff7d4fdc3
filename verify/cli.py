"""The `verify` command."""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext
from pydantic import ValidationError
from sqlalchemy import event

from verify.api.assessments import announcement
from verify.api.bodies import field_errors
from verify.api.context import Services
from verify.api.schemas import SignupIn, assessment_json, parse_rfc3339
from verify.app import create_app, default_policy
from verify.assessing import Signup
from verify.doctor import shown_url
from verify.engine import list_values
from verify.engine.identity import MailRules
from verify.engine.list_values import Located, ValuesInvalid, normalise_all
from verify.engine.lists import DISPOSABLE_LIST
from verify.errors import VerifyError
from verify.intel.providers import disposable_seed
from verify.store.assessments import assessment_ids_before, delete_assessments
from verify.store.audit import record_audit
from verify.store.keys import create_api_key, list_api_keys, revoke_api_key
from verify.store.lists import get_list, import_list_entries, refresh_package_entries, stream_entries, stream_values
from verify.store.webhooks import purge_deliveries
from verify.progress import progress
from verify.store import lengths
from verify.store.bootstrap import bootstrap
from verify.store.database import Database


def app_services() -> Services:
    services = current_app.extensions["verify"]
    name_database_on_first_use(services.database, services.settings.database_url)
    return services


def name_database_on_first_use(database: Database, url: str) -> None:
    """Say on stderr which database the command used, without credentials, once it connects.

    A shell and a service whose environments differ use different databases, and the only
    symptom was a 401; stdout stays the command's own output.
    """
    if getattr(database.engine, "_verify_named", False):
        return
    database.engine._verify_named = True
    shown = shown_url(url)
    event.listen(database.engine, "connect", lambda *_: click.echo(f"database: {shown}", err=True), once=True)


def upgrade_database(services: Services) -> None:
    """Apply migrations, then create what a first start needs."""
    with services.database.migration_lock():
        services.database.upgrade()
        with services.database.transaction() as session:
            bootstrap(session=session, default_policy=default_policy(services.settings), disposable=disposable_seed)


def migrated_services() -> Services:
    """The app's services, on a database migrated to the latest schema and bootstrapped."""
    services = app_services()
    upgrade_database(services)
    return services


def fail(message: str) -> None:
    raise click.ClickException(message)


class VerifyGroup(FlaskGroup):
    """Only verify's own commands: installed Flask plugins (Flask-Limiter's `limiter`) are not part of the CLI."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return click.Group.list_commands(self, ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return click.Group.get_command(self, ctx, name)

    def invoke(self, ctx: click.Context) -> Any:
        # The one place a command says what went wrong: the error's message, exit status 1.
        try:
            return super().invoke(ctx)
        except VerifyError as error:
            raise click.ClickException(error.detail) from None


@click.group(cls=VerifyGroup, create_app=create_app, add_default_commands=False, add_version_option=False)
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

    services = migrated_services()
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
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(["assess", "admin", "review"]))
@with_appcontext
def keys_create(name: str, scopes: tuple[str, ...]) -> None:
    """Create a key and print its secret, alone on one line (it is not shown again)."""
    services = migrated_services()
    with services.database.transaction() as session:
        secret = create_api_key(name, scopes, session=session)
    click.echo(secret)


@keys.command("list")
@with_appcontext
def keys_list() -> None:
    """List keys (names, scopes, state; never secrets)."""
    with app_services().database.transaction() as session:
        for key in list_api_keys(session=session):
            state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
            click.echo(f"{key.name}\t{','.join(key.scopes)}\t{state}\tcreated {key.created_at:%Y-%m-%d}")


@keys.command("revoke")
@click.argument("name")
@with_appcontext
def keys_revoke(name: str) -> None:
    """Revoke a key at once."""
    with app_services().database.transaction() as session:
        revoke_api_key(name, session=session)
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
    services = migrated_services()
    try:
        body = SignupIn.model_validate({name: value for name, value in fields.items() if value is not None})
    except ValidationError as error:
        fail("; ".join(f"{e['field']}: {e['message']}" for e in field_errors(error)))
    now = datetime.now(timezone.utc)
    signup = Signup(**body.model_dump(exclude={"occurred_at"}), occurred_at=body.occurred_at or now)
    with services.database.transaction() as session:
        row = services.assessor.assess(
            signup, session=session, now=now,
            deliveries=lambda judged: announcement(judged.row, assessment_json(judged.row), judged.snapshot, now=now),
        )
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


# Without the app: a configuration the app cannot start with is what doctor must report.
@main.command(with_appcontext=False)
def doctor() -> None:
    """Check the configuration: database and migrations, GeoIP files, DNS, rate-limit storage.

    Prints one line per check (ok, warn or fail, with the reason; URLs without credentials)
    and exits with status 1 when any check fails. Changes nothing.
    """
    from verify.doctor import FAIL, Finding, diagnose
    from verify.settings import Settings, SettingsError

    try:
        findings = diagnose(Settings.from_env(), now=datetime.now(timezone.utc))
    except SettingsError as error:
        findings = [Finding("settings", FAIL, str(error))]
    for finding in findings:
        click.echo(finding.line())
    if any(finding.status == FAIL for finding in findings):
        sys.exit(1)


# -- lists -------------------------------------------------------------------------------

LIST_ERRORS_SHOWN = 20
NORMALISE_SLICE = 2000


@main.group("lists")
def lists_group() -> None:
    """Block, challenge and allow lists."""


def read_list_file(path: Path) -> list[list_values.FileRow]:
    """Values of a file, with where each came from: text (one per line, `#` comments) or CSV (.csv)."""
    text = path.read_text(encoding="utf-8-sig")
    try:
        return list_values.file_rows(
            text, is_csv=path.suffix.lower() == ".csv", now=datetime.now(timezone.utc), parse_time=parse_rfc3339
        )
    except ValuesInvalid as error:
        fail("\n".join(f"{e['field']}: {e['message']}" for e in error.errors[:LIST_ERRORS_SHOWN]))
    return []


def normalise_with_progress(kind: str, located: list[Located], *, rules: MailRules) -> list[str]:
    """normalise_all, in slices so that a terminal shows how far a large file has got."""
    values: list[str] = []
    errors: list[dict[str, str]] = []
    with progress("checking values", total=len(located), unit="values") as bar:
        for start in range(0, len(located), NORMALISE_SLICE):
            part = located[start:start + NORMALISE_SLICE]
            try:
                values += normalise_all(kind, part, rules=rules)
            except ValuesInvalid as error:
                errors += error.errors
            bar.advance(len(part))
    if errors:
        raise ValuesInvalid(errors)
    return values


def file_source(file: Path) -> str:
    """The provenance of a file's entries: `file:<name>`, cut to what the column holds."""
    return f"file:{file.name}"[:lengths.ENTRY_SOURCE]


@lists_group.command("import")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def lists_import(name: str, file: Path) -> None:
    """Add the values of FILE to the list NAME; one bad value rejects the whole file.

    FILE is text, one value per line with `#` comments, or CSV (.csv) with the value in the
    first column and optional reason and expires_at columns. Entries record `file:<name>`
    as their provenance.
    """
    services = migrated_services()
    try:
        rows = read_list_file(file)
    except UnicodeDecodeError:
        fail(f"{file} is not UTF-8 text")
    try:
        with services.database.transaction() as session:
            list_def = get_list(name, session=session)
            values = normalise_with_progress(list_def.kind, [row.located for row in rows], rules=services.assessor.providers.mail_rules)
            entries = [(value, row.reason, row.expires_at) for value, row in zip(values, rows)]
            with progress(f"storing {len(entries):,} entries"):
                added, updated = import_list_entries(list_def, entries, source=file_source(file), actor="cli", session=session)
    except ValuesInvalid as error:
        shown = [f"{e['field']}: {e['message']}" for e in error.errors[:LIST_ERRORS_SHOWN]]
        more = len(error.errors) - len(shown)
        fail("nothing imported; bad values:\n  " + "\n  ".join(shown) + (f"\n  ... and {more} more" if more else ""))
    click.echo(f"added {added}, updated {updated}")


@lists_group.command("export")
@click.argument("name")
@click.option("--format", "export_format", type=click.Choice(["text", "csv"]), default="text", show_default=True,
              help="text: one value per line; csv: value, reason, expires_at, source (what import reads back).")
@with_appcontext
def lists_export(name: str, export_format: str) -> None:
    """Print the entries of the list NAME (what `verify lists import` reads)."""
    services = migrated_services()
    with services.database.transaction() as session:
        list_def = get_list(name, session=session)
        if export_format == "text":
            for value in stream_values(list_def, session=session):
                click.echo(value)
            return
        for line in list_values.entries_csv(stream_entries(list_def, session=session)):
            click.echo(line, nl=False)


@lists_group.command("update-disposable")
@with_appcontext
def lists_update_disposable() -> None:
    """Refresh `disposable-domains` from the installed disposable-email-domains package.

    Entries from an earlier package version are replaced by the new version's set; entries
    an admin added by hand are kept.
    """
    services = migrated_services()
    domains, source = disposable_seed()
    with services.database.transaction() as session:
        list_def = get_list(DISPOSABLE_LIST, session=session)
        added, removed = refresh_package_entries(list_def, set(domains), source=source, actor="cli", session=session)
    click.echo(f"{source}: added {added}, removed {removed}")

AGE = re.compile(r"(\d{1,6})([dh])")
PURGE_BATCH = 1000


def parse_age(text: str) -> timedelta:
    """`90d` or `36h`: an age in days or hours."""
    match = AGE.fullmatch(text.strip())
    if not match or int(match.group(1)) == 0:
        raise click.BadParameter("give a positive age in days or hours, such as 90d or 36h")
    amount = int(match.group(1))
    return timedelta(days=amount) if match.group(2) == "d" else timedelta(hours=amount)


@main.command()
@click.option("--older-than", "older_than", required=True, help="Age such as 90d or 36h (d = days, h = hours).")
@with_appcontext
def purge(older_than: str) -> None:
    """Delete assessments (and their feedback) that occurred longer ago than the age; print the count."""
    cutoff = datetime.now(timezone.utc) - parse_age(older_than)
    database = app_services().database
    assessments = feedback = 0
    with progress("purging assessments", unit="assessments") as bar:
        while True:  # in batches, so that SQLite writers wait for one short transaction at a time
            with database.transaction() as session:
                ids = assessment_ids_before(cutoff, limit=PURGE_BATCH, session=session)
                deleted = delete_assessments(ids, session=session)
            assessments, feedback = assessments + deleted[0], feedback + deleted[1]
            bar.advance(deleted[0])
            if len(ids) < PURGE_BATCH:
                break
    with database.transaction() as session:
        deliveries = purge_deliveries(cutoff, session=session)
        detail = {
            "older_than": older_than, "cutoff": cutoff.isoformat(), "assessments": assessments, "feedback": feedback,
            "webhook_deliveries": deliveries,
        }
        record_audit("cli", "assessments.purge", target=older_than, detail=detail, session=session)
    click.echo(
        f"purged {assessments} assessments ({feedback} feedback) that occurred before {cutoff:%Y-%m-%dT%H:%M:%SZ}"
        f", and {deliveries} finished webhook deliveries"
    )


# Outside knowledge kept fresh (verify/cli_intel.py): geoip update, feeds, worker, failing revision jobs.
from verify import cli_intel  # noqa: E402  (it imports this module's helpers back)

geoip.add_command(cli_intel.geoip_update)
main.add_command(cli_intel.feeds_group)
main.add_command(cli_intel.worker)
main.add_command(cli_intel.revisions_group)


if __name__ == "__main__":
    sys.exit(main())
