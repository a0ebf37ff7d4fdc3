"""The commands that keep outside knowledge fresh: `verify geoip update`, `verify feeds …`, `verify worker`.

Registered on the `verify` group by verify/cli.py.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import click
from flask.cli import with_appcontext

from verify.children import StopFlag, stop_on_signals
from verify.engine.list_values import LIST_NAME
from verify.delivery import DELIVERY_POLL, deliver_until_idle, deliverer_for
from verify.feed_sync import FeedSyncer, SyncResult
from verify.intel.feeds import FORMATS
from verify.intel.geoip_update import UpdateFailed, Updater, configured_editions
from verify.periodic import Periodic, run_periodic
from verify.progress import progress
from verify.revising import due_revision_jobs, failing_revision_jobs, run_due
from verify.store import feeds as feed_store
from verify.store import lengths
from verify.store.revisions import failing_job_rows, requeue_jobs

DEFAULT_INTERVAL = "6h"


def _cli():  # verify.cli imports this module at its end; import it back lazily
    from verify import cli

    return cli


# -- verify geoip update ----------------------------------------------------------------------

@click.command("update")
@click.option("--force", is_flag=True, help="Download even when the checksum says the file in place is current.")
@with_appcontext
def geoip_update(force: bool) -> None:
    """Download the configured MaxMind editions, check them and replace the files atomically.

    Editions come from VERIFY_GEOIP_EDITIONS (default GeoLite2-City GeoLite2-ASN), each written
    to the path of its role (VERIFY_GEOIP_CITY_DB, _ASN_DB, _ANONYMOUS_DB), with the account id
    and licence key of VERIFY_MAXMIND_ACCOUNT_ID and VERIFY_MAXMIND_LICENSE_KEY. A file whose
    checksum matches the one recorded beside it is not downloaded again. On any failure the
    file in use is left as it was and the command exits with status 1.
    """
    settings = _cli().app_services().settings
    editions = configured_editions(settings)
    failures = 0
    for edition in editions:
        with progress(edition.name, unit="bytes") as bar:
            updater = Updater(settings, on_total=bar.set_total, on_chunk=bar.advance)
            try:
                outcome = updater.update(edition, force=force)
            except UpdateFailed as error:
                failures += 1
                click.echo(f"error: {error.detail}", err=True)
                continue
        click.echo(outcome.describe())
    if failures:
        sys.exit(1)


# -- verify feeds -------------------------------------------------------------------------------

@click.group("feeds")
def feeds_group() -> None:
    """Public sources that fill lists: Tor exits, cloud ranges, disposable-domain upstreams, any URL."""


def _syncer() -> FeedSyncer:
    services = _cli().app_services()
    return FeedSyncer(database=services.database, settings=services.settings, rules=services.assessor.providers.mail_rules)


def _interval(text: str) -> timedelta:
    return _cli().parse_age(text)


@feeds_group.command("add")
@click.option("--name", required=True, help="A name for the feed; its entries carry the source feed:NAME.")
@click.option("--url", required=True, help="The http(s) URL of the file.")
@click.option("--list", "list_name", required=True, help="The list it fills (blocked-ips, hosting-networks, ...).")
@click.option("--format", "feed_format", type=click.Choice(FORMATS), default="lines", show_default=True,
              help="lines or csv (first column) for any list; tor for the Tor exit lists; aws, google-cloud, azure, oracle for the cloud ranges.")
@click.option("--interval", default=DEFAULT_INTERVAL, show_default=True, help="How often `verify worker` syncs it (such as 6h or 1d).")
@with_appcontext
def feeds_add(name: str, url: str, list_name: str, feed_format: str, interval: str) -> None:
    """Add a feed (it is filled by `verify feeds sync` or `verify worker`)."""
    if not LIST_NAME.fullmatch(name):
        raise click.BadParameter("lower-case letters, digits and dashes, at most 64", param_hint="--name")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > lengths.FEED_URL:
        raise click.BadParameter(f"an http:// or https:// URL of at most {lengths.FEED_URL} characters", param_hint="--url")
    every = _interval(interval)
    services = _cli().migrated_services()
    with services.database.transaction() as session:
        feed_store.add_feed(name, url=url, list_name=list_name, feed_format=feed_format, interval=every, actor="cli", session=session)
    click.echo(f"added feed {name}: {feed_format} from {url} into {list_name}, every {interval}; run `verify feeds sync {name}` to fill it now")


@feeds_group.command("list")
@with_appcontext
def feeds_list() -> None:
    """Each feed: its list, format, interval, entries, last sync and its outcome."""
    services = _cli().migrated_services()
    with services.database.transaction() as session:
        rows = feed_store.list_feeds(session=session)
    if not rows:
        click.echo("no feeds; add one with `verify feeds add`")
    for feed, list_def, entries in rows:
        synced = f"{feed.last_sync_at:%Y-%m-%dT%H:%M:%SZ} {feed.last_status}" if feed.last_sync_at else "never synced"
        error = f"\t{feed.last_error}" if feed.last_error else ""
        hours = feed.interval_seconds / 3600
        click.echo(f"{feed.name}\t{list_def.name}\t{feed.format}\tevery {hours:g}h\t{entries} entries\t{synced}\t{feed.url}{error}")


@feeds_group.command("remove")
@click.argument("name")
@click.option("--keep-entries", is_flag=True, help="Leave the entries the feed put on its list (they are no longer refreshed).")
@with_appcontext
def feeds_remove(name: str, keep_entries: bool) -> None:
    """Remove a feed and the entries it put on its list."""
    services = _cli().migrated_services()
    with services.database.transaction() as session:
        removed = feed_store.remove_feed(name, keep_entries=keep_entries, actor="cli", session=session)
    click.echo(f"removed feed {name}" + ("" if keep_entries else f" and its {removed} entries"))


def _sync_one(syncer: FeedSyncer, name: str, *, force: bool) -> SyncResult:
    with progress(name, unit="bytes") as bar:
        return syncer.sync(name, force=force, on_total=bar.set_total, on_chunk=bar.advance)


@feeds_group.command("sync")
@click.argument("name", required=False)
@click.option("--force", is_flag=True, help="Download unconditionally and accept a download that shrinks the list a lot.")
@with_appcontext
def feeds_sync(name: str | None, force: bool) -> None:
    """Refresh one feed, or every feed: only its own entries are replaced, in one transaction.

    Exits with status 1 when a feed failed (unreachable, garbage) or was refused (it would
    shrink its entries by more than VERIFY_FEED_MAX_SHRINK); its entries are then left as they were.
    """
    cli = _cli()
    services = cli.migrated_services()
    with services.database.transaction() as session:
        names = [feed.name for feed, _, _ in feed_store.list_feeds(session=session)]
    if name is not None:
        if name not in names:
            cli.fail(f"no feed named {name!r}")
        names = [name]
    if not names:
        click.echo("no feeds; add one with `verify feeds add`")
    syncer = _syncer()
    failed = 0
    for feed_name in names:
        result = _sync_one(syncer, feed_name, force=force)
        click.echo(result.describe(), err=result.failed)
        failed += result.failed
    if failed:
        sys.exit(1)


# -- verify revisions ----------------------------------------------------------------------------

@click.group("revisions")
def revisions_group() -> None:
    """Re-judging jobs whose batches failed: see them, and re-queue those set aside."""


@revisions_group.command("list")
@with_appcontext
def revisions_list() -> None:
    """Jobs whose last batch failed: set aside, or waiting to be tried again (with their last error)."""
    services = _cli().migrated_services()
    with services.database.transaction() as session:
        jobs = failing_job_rows(session=session)
    if not jobs:
        click.echo("no failing revision jobs")
    for job in jobs:
        state = (f"set aside {job.failed_at:%Y-%m-%dT%H:%M:%SZ}" if job.failed_at
                 else f"retry at {job.retry_at:%Y-%m-%dT%H:%M:%SZ}" if job.retry_at else "due")
        click.echo(f"{job.id}\t{job.cause_kind}:{job.cause_ref}\t{job.failures} failures\t{state}\t{job.last_error or ''}")


@revisions_group.command("retry")
@click.argument("job_ids", nargs=-1, type=click.IntRange(min=1))
@with_appcontext
def revisions_retry(job_ids: tuple[int, ...]) -> None:
    """Re-queue set-aside jobs (all of them, or the JOB_IDS given), after fixing what failed them."""
    services = _cli().migrated_services()
    with services.database.transaction() as session:
        requeued = requeue_jobs(job_ids or None, actor="cli", session=session)
    missing = sorted(set(job_ids) - set(requeued))
    if requeued:
        click.echo(f"re-queued {len(requeued)} job(s): {', '.join(map(str, requeued))}")
    else:
        click.echo("no set-aside job to re-queue")
    if missing:
        click.echo(f"error: not set aside: {', '.join(map(str, missing))}", err=True)
        sys.exit(1)


# -- verify worker -------------------------------------------------------------------------------

@dataclass(frozen=True)
class RevisionsRecorded:
    count: int
    failing: int = 0  # jobs whose last batch failed (logged): waiting to be tried again, or set aside

    @property
    def failed(self) -> bool:
        return self.failing > 0

    def describe(self) -> str:
        failing = f"; {self.failing} job(s) failing, see the log and `verify revisions list`" if self.failing else ""
        return f"revisions: {self.count} recorded{failing}"


def revise(database, *, until_idle: bool) -> list[RevisionsRecorded]:
    """One bounded round of queued re-judging (`--once`: until no job is due)."""
    recorded = run_due(database)
    while until_idle and due_revision_jobs(database):
        recorded += run_due(database)
    failing = failing_revision_jobs(database) if until_idle else 0
    return [RevisionsRecorded(recorded, failing)] if recorded or failing else []


@click.command("worker")
@click.option("--once", is_flag=True, help="Run the due jobs once and exit (for tests and cron); status 1 if one failed.")
@click.option("--poll", type=click.FloatRange(min=0.1), default=60.0, show_default=True, help="Seconds between looks for due feeds.")
@click.option(
    "--delivery-poll", type=click.FloatRange(min=0.1), default=DELIVERY_POLL, show_default=True,
    help="Seconds between looks for due webhook deliveries.",
)
@with_appcontext
def worker(once: bool, poll: float, delivery_poll: float) -> None:
    """Background jobs: webhook deliveries, revisions (re-judging in batches) and scheduled feed
    syncs (each feed at its own interval).

    Several workers may run against one database: each due delivery, revision job and feed is
    claimed by one of them. Stops cleanly on SIGTERM or SIGINT.
    """
    services = _cli().migrated_services()
    syncer = _syncer()
    deliverer = deliverer_for(services.settings, services.database)
    tasks = [
        Periodic("webhook deliveries", delivery_poll, lambda: deliver_until_idle(deliverer)),
        Periodic("revisions", delivery_poll, lambda: revise(services.database, until_idle=once)),
        Periodic("feed syncs", poll, syncer.sync_due),
    ]
    stop = StopFlag() if once else stop_on_signals()
    failed = run_periodic(tasks, once=once, stop=stop, report=lambda result: click.echo(result.describe(), err=result.failed))
    if once and failed:
        sys.exit(1)
