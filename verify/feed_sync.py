"""Sync feeds: download (intel), normalise (engine), replace the feed's entries (store).

This is where the three meet for feeds, as `assessing.py` is for signups; `verify feeds sync`
and `verify worker` both call `FeedSyncer.sync`. The download runs outside any transaction,
so a slow server never holds a database lock.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from verify.engine.identity import MailRules
from verify.errors import VerifyError
from verify.intel.download import DownloadFailed
from verify.intel.feeds import FeedInvalid, download_feed, feed_values
from verify.settings import Settings
from verify.store import feeds as feed_store
from verify.store.database import Database

log = logging.getLogger(__name__)

ACTOR = "feeds"
CLAIM_LEASE = timedelta(minutes=15)  # a crashed worker's claim lapses after this


@dataclass(frozen=True)
class SyncResult:
    feed: str
    list: str
    status: str  # ok | unchanged | failed | refused
    added: int = 0
    removed: int = 0
    total: int = 0
    skipped: int = 0
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "refused")

    def describe(self) -> str:
        if self.status == "unchanged":
            return f"{self.feed} -> {self.list}: not modified since the last sync"
        if self.failed:
            return f"{self.feed} -> {self.list}: {self.status}: {self.error}"
        skipped = f", skipped {self.skipped} bad values" if self.skipped else ""
        return f"{self.feed} -> {self.list}: added {self.added}, removed {self.removed}, total {self.total}{skipped}"


class FeedSyncer:
    def __init__(
        self,
        *,
        database: Database,
        settings: Settings,
        rules: MailRules,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.database = database
        self.settings = settings
        self.rules = rules
        self.clock = clock

    def sync(
        self,
        name: str,
        *,
        force: bool = False,
        on_total: Callable[[int | None], None] | None = None,
        on_chunk: Callable[[int], None] | None = None,
    ) -> SyncResult:
        """Refresh one feed's entries; never raises for the feed's own failures, which are recorded."""
        with self.database.transaction() as session:
            feed, list_def = feed_store.get_feed(name, session=session)
            url, feed_format, kind, list_name = feed.url, feed.format, list_def.kind, list_def.name
            etag, last_modified = (None, None) if force else (feed.etag, feed.last_modified)
        try:
            download = download_feed(
                url, etag=etag, last_modified=last_modified, timeout=self.settings.download_timeout,
                max_bytes=self.settings.feed_max_bytes, on_total=on_total, on_chunk=on_chunk,
            )
            if download.fetched.not_modified:
                return self._record(SyncResult(name, list_name, "unchanged"))
            values = feed_values(download.body, feed_format=feed_format, kind=kind, rules=self.rules)
            with self.database.transaction() as session:
                feed, list_def = feed_store.get_feed(name, session=session)
                added, removed, total = feed_store.replace_source_entries(
                    list_def, values.values, source=feed_store.feed_source(name), max_shrink=self.settings.feed_max_shrink,
                    force=force, actor=ACTOR, detail={"feed": name, "url": url, "skipped": values.skipped}, session=session,
                )
                feed_store.record_sync(
                    name, status="ok", at=self.clock(), etag=download.fetched.etag,
                    last_modified=download.fetched.last_modified, session=session,
                )
            result = SyncResult(name, list_name, "ok", added, removed, total, values.skipped)
            if values.skipped:
                log.warning("feed %s: skipped %d bad values, e.g. %s", name, values.skipped, "; ".join(values.examples))
            return result
        except feed_store.ShrinkRefused as error:
            return self._record(SyncResult(name, list_name, "refused", error=error.detail))
        except (DownloadFailed, FeedInvalid) as error:
            return self._record(SyncResult(name, list_name, "failed", error=error.detail))

    def _record(self, result: SyncResult) -> SyncResult:
        if result.failed:
            log.warning("feed %s: %s: %s", result.feed, result.status, result.error)
        with self.database.transaction() as session:
            feed_store.record_sync(result.feed, status=result.status, at=self.clock(), error=result.error, session=session)
        return result

    def sync_due(self) -> list[SyncResult]:
        """Sync every feed whose interval has passed (claimed, so that several workers share the work)."""
        with self.database.transaction() as session:
            names = feed_store.claim_due_feeds(now=self.clock(), lease=CLAIM_LEASE, session=session)
        results = []
        for name in names:
            try:
                results.append(self.sync(name))
            except VerifyError as error:  # the feed was removed meanwhile
                log.warning("feed %s: %s", name, error.detail)
            except SQLAlchemyError:  # the database went away mid-sync: the claim lapses and it is retried
                log.exception("feed %s: the database failed during the sync", name)
                results.append(SyncResult(name, "?", "failed", error="the database failed during the sync"))
        return results
