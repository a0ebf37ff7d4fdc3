"""The feed table and the per-source replace, on both databases."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlmodel import select

from verify.store import feeds, lengths
from verify.store.lists import add_list_entries
from verify.store.lists import get_list
from verify.store.models import ListEntry

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def add(services, name: str, list_name: str = "blocked-ips") -> None:
    with services.database.transaction() as session:
        feeds.add_feed(name, url=f"https://feeds.example/{name}", list_name=list_name, feed_format="lines",
                       interval=timedelta(hours=6), actor="test", session=session)


def test_a_due_feed_is_claimed_by_one_worker_only(services):
    add(services, "tor")
    add(services, "aws", "hosting-networks")
    with services.database.transaction() as session:
        assert feeds.claim_due_feeds(now=NOW, lease=timedelta(minutes=15), session=session) == ["aws", "tor"]
    with services.database.transaction() as session:
        assert feeds.claim_due_feeds(now=NOW, lease=timedelta(minutes=15), session=session) == []
    with services.database.transaction() as session:  # a crashed worker's claim lapses
        assert feeds.claim_due_feeds(now=NOW + timedelta(minutes=16), lease=timedelta(minutes=15), session=session) == ["aws", "tor"]


def test_replace_touches_only_its_source_and_refuses_a_big_shrink(services):
    with services.database.transaction() as session:
        list_def = get_list("blocked-ips", session=session)
        add_list_entries(list_def, ["192.0.2.1"], source="key:alice", actor="alice", session=session)
        source = feeds.feed_source("tor")
        assert feeds.replace_source_entries(list_def, ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"], source=source,
                                            max_shrink=0.5, force=False, actor="feeds", session=session) == (3, 0, 3)
    with services.database.transaction() as session:
        list_def = get_list("blocked-ips", session=session)
        with pytest.raises(feeds.ShrinkRefused):
            feeds.replace_source_entries(list_def, ["192.0.2.2"], source=source, max_shrink=0.5, force=False, actor="feeds", session=session)
        assert feeds.replace_source_entries(list_def, ["192.0.2.2"], source=source, max_shrink=0.5, force=True,
                                            actor="feeds", session=session) == (0, 2, 1)
    with services.database.transaction() as session:
        rows = {row.value: row.source for row in session.exec(select(ListEntry).where(ListEntry.list_id == list_def.id))}
    assert rows == {"192.0.2.1": "key:alice", "192.0.2.2": "feed:tor"}



def test_validators_too_long_for_their_columns_are_dropped(services):
    # A hostile or broken server's ETag must not fail the sync on PostgreSQL; without a
    # validator the next download is simply unconditional.
    add(services, "tor")
    with services.database.transaction() as session:
        feeds.record_sync("tor", status="ok", at=NOW, etag='"' + "e" * lengths.FEED_ETAG + '"',
                          last_modified="x" * (lengths.FEED_LAST_MODIFIED + 1), session=session)
    with services.database.transaction() as session:
        feed, _ = feeds.get_feed("tor", session=session)
        assert (feed.etag, feed.last_modified) == (None, None)
    with services.database.transaction() as session:
        feeds.record_sync("tor", status="ok", at=NOW, etag="e" * lengths.FEED_ETAG, last_modified="x" * lengths.FEED_LAST_MODIFIED,
                          session=session)
    with services.database.transaction() as session:
        feed, _ = feeds.get_feed("tor", session=session)
        assert (len(feed.etag), len(feed.last_modified)) == (lengths.FEED_ETAG, lengths.FEED_LAST_MODIFIED)
