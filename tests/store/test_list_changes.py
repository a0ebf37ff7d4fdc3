"""The list-change log: every list write reaches each worker's index in place, and the index
always equals one rebuilt from the table (after a prune, an oversized change, concurrent writers)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from verify.engine.lists import ListIndex
from verify.engine.reasons import default_points
from verify.store import feeds as feed_store
from verify.store import list_changes
from verify.store.database import Database
from verify.store.lists import (
    add_list_entries,
    create_list,
    delete_list_source,
    delete_list_value,
    get_list,
    import_list_entries,
    load_list_entries,
    refresh_package_entries,
    replace_list_entries,
)
from verify.store.models import ListChangeRecord, ListEntry, utcnow
from verify.store.snapshots import Snapshots
from verify.store.stamps import LISTS_STAMP, bump_stamp


@pytest.fixture
def database(database_url):
    database = Database(database_url)
    yield database
    database.dispose()


def index_of(snapshots: Snapshots, database: Database) -> ListIndex:
    """The index as the next request of this worker sees it."""
    with database.transaction() as session:
        return snapshots.current(session=session).lists


def contents(index: ListIndex) -> tuple:
    return sorted(index.entries(), key=repr), sorted(index.skipped, key=repr), +index.sizes


def rebuilt(database: Database) -> tuple:
    with database.transaction() as session:
        return contents(ListIndex(load_list_entries(session=session)))


def values_of(index: ListIndex) -> set[str]:
    return {entry.value for entry in index.entries()}


def write(database: Database, change: Callable[[Session], object]) -> None:
    with database.transaction() as session:
        change(session)


def add(name: str, values: list[str], *, source: str = "api:test", **options) -> Callable[[Session], object]:
    return lambda session: add_list_entries(
        get_list(name, session=session), values, source=source, actor="test", session=session, **options
    )


def add_feed_entries(session: Session) -> None:
    feed_store.add_feed(
        "tor", url="http://127.0.0.1:9/tor", list_name="blocked-ips", feed_format="lines", interval=timedelta(hours=1),
        actor="test", session=session,
    )
    feed_store.replace_source_entries(
        get_list("blocked-ips", session=session), ["192.0.2.1", "192.0.2.2"], source="feed:tor", max_shrink=1.0, force=True,
        actor="test", session=session,
    )


def package_list(session: Session) -> None:
    list_def = create_list("pkg-domains", kind="email_domain", action="deny", description="", actor="test", session=session)
    refresh_package_entries(list_def, {"old.example", "kept.example"}, source="package:x 1", actor="test", session=session)


IN_AN_HOUR = utcnow() + timedelta(hours=1)
NOTHING = lambda session: None  # noqa: E731

# seed (before the worker's index is built), change (after): the change must reach the index in place.
WRITES = {
    "add with a reason and an expiry": (NOTHING, add("blocked-domains", ["spam.example"], reason="spam", expires_at=IN_AN_HOUR)),
    "add a present value again, with a new reason and expiry": (
        add("blocked-domains", ["spam.example"], reason="first"), add("blocked-domains", ["spam.example"], reason="second", expires_at=IN_AN_HOUR),
    ),
    "add networks": (NOTHING, add("blocked-ips", ["203.0.113.0/24", "2001:db8::/32", "198.51.100.7"])),
    "import": (NOTHING, lambda session: import_list_entries(
        get_list("blocked-ips", session=session), [("203.0.113.0/24", "scan", None), ("198.51.100.7", None, IN_AN_HOUR)],
        source="file:x.csv", actor="test", session=session,
    )),
    "replace": (add("blocked-domains", ["a.example", "b.example"]), lambda session: replace_list_entries(
        get_list("blocked-domains", session=session), ["b.example", "c.example"], source="api:test", actor="test", session=session,
    )),
    "remove one value": (add("blocked-ips", ["203.0.113.0/24", "203.0.113.9"]), lambda session: delete_list_value(
        get_list("blocked-ips", session=session), "203.0.113.9", actor="test", session=session,
    )),
    "remove a source": (add("blocked-emails", ["a@example.com", "b@example.com"], source="file:bad"), lambda session: delete_list_source(
        get_list("blocked-emails", session=session), "file:bad", actor="test", session=session,
    )),
    "refresh a package": (package_list, lambda session: refresh_package_entries(
        get_list("pkg-domains", session=session), {"kept.example", "new.example"}, source="package:x 2", actor="test", session=session,
    )),
    "feed sync": (add_feed_entries, lambda session: feed_store.replace_source_entries(
        get_list("blocked-ips", session=session), ["192.0.2.2", "192.0.2.3"], source="feed:tor", max_shrink=1.0, force=True,
        actor="test", session=session,
    )),
    "feed removed with its entries": (add_feed_entries, lambda session: feed_store.remove_feed(
        "tor", keep_entries=False, actor="test", session=session,
    )),
}


@pytest.mark.parametrize(("seed", "change"), list(WRITES.values()), ids=list(WRITES))
def test_each_list_write_reaches_a_warm_index_in_place(database, seed, change):
    write(database, seed)
    snapshots = Snapshots(base_points=default_points())
    warm = index_of(snapshots, database)
    before = contents(warm)
    write(database, change)
    index = index_of(snapshots, database)
    assert index is warm  # applied in place, not rebuilt
    assert contents(index) == rebuilt(database) != before


def test_two_instances_on_one_database_see_each_others_changes_in_place(database_url):
    first, second = Database(database_url), Database(database_url)
    try:
        workers = {first: Snapshots(base_points=default_points()), second: Snapshots(base_points=default_points())}
        warm = {database: index_of(snapshots, database) for database, snapshots in workers.items()}
        write(first, add("blocked-domains", ["one.example"]))
        write(second, add("blocked-ips", ["198.51.100.0/24"]))
        write(first, lambda session: delete_list_value(get_list("blocked-ips", session=session), "198.51.100.0/24", actor="t", session=session))
        for database, snapshots in workers.items():
            index = index_of(snapshots, database)
            assert index is warm[database]
            assert "one.example" in values_of(index) and "198.51.100.0/24" not in values_of(index)
            assert contents(index) == rebuilt(database)
    finally:
        first.dispose()
        second.dispose()


def test_a_pruned_log_falls_back_to_a_full_rebuild(database):
    snapshots = Snapshots(base_points=default_points())
    warm = index_of(snapshots, database)
    write(database, add("blocked-domains", ["gone-from-log.example"]))
    write(database, lambda session: list_changes.prune_list_changes(before=utcnow() + timedelta(days=2), session=session))
    index = index_of(snapshots, database)
    assert index is not warm
    assert "gone-from-log.example" in values_of(index) and contents(index) == rebuilt(database)


def test_a_write_prunes_the_changes_older_than_the_kept_period(database):
    write(database, add("blocked-domains", ["first.example"]))
    with database.transaction() as session:
        session.execute(sa.update(ListChangeRecord).values(created_at=utcnow() - list_changes.KEEP - timedelta(minutes=1)))
    write(database, add("blocked-domains", ["second.example"]))
    with database.transaction() as session:
        assert list(session.execute(sa.select(ListChangeRecord.value)).scalars()) == ["second.example"]


def test_a_change_too_large_to_log_is_logged_as_a_reset_and_rebuilds(database, monkeypatch):
    monkeypatch.setattr(list_changes, "MAX_LOGGED", 3)
    snapshots = Snapshots(base_points=default_points())
    warm = index_of(snapshots, database)
    write(database, add("blocked-domains", [f"bulk{i}.example" for i in range(5)]))
    with database.transaction() as session:
        logged = sa.select(ListChangeRecord.op).where(ListChangeRecord.list_name == "blocked-domains")
        assert list(session.execute(logged).scalars()) == ["reset"]
    index = index_of(snapshots, database)
    assert index is not warm and contents(index) == rebuilt(database)


def test_a_stamp_bumped_without_a_logged_change_rebuilds(database):
    """A writer that does not log (an older version, a hand-made fix) is still picked up."""
    snapshots = Snapshots(base_points=default_points())
    warm = index_of(snapshots, database)
    with database.transaction() as session:
        session.execute(sa.insert(ListEntry), [{
            "list_id": get_list("blocked-domains", session=session).id, "value": "unlogged.example", "reason": None,
            "source": "hand", "expires_at": None, "created_at": utcnow(),
        }])
        bump_stamp(LISTS_STAMP, session=session)
    index = index_of(snapshots, database)
    assert index is not warm and "unlogged.example" in values_of(index)


def test_a_writer_that_started_first_and_commits_last_is_not_skipped(database_url):
    """Two writers overlap: the one whose change was recorded first commits last. A worker that
    refreshes in between must still apply it afterwards (ids alone would have let it skip)."""
    writer, reader = Database(database_url), Database(database_url)
    snapshots = Snapshots(base_points=default_points())
    warm = index_of(snapshots, reader)
    recorded, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def slow() -> None:
        try:
            with writer.transaction() as session:
                add("blocked-domains", ["slow.example"])(session)
                recorded.set()
                release.wait(5)
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            errors.append(error)
            recorded.set()

    def fast() -> None:
        recorded.wait(5)
        try:
            write(writer, add("blocked-emails", ["fast@example.com"]))
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=slow), threading.Thread(target=fast)]
    try:
        for thread in threads:
            thread.start()
        recorded.wait(5)
        time.sleep(0.3)  # the fast writer has committed or waits for the slow one
        assert contents(index_of(snapshots, reader)) == rebuilt(reader)
        release.set()
        for thread in threads:
            thread.join(10)
        assert errors == []
        index = index_of(snapshots, reader)
        assert index is warm
        assert {"slow.example", "fast@example.com"} <= values_of(index)
        assert contents(index) == rebuilt(reader)
    finally:
        release.set()
        writer.dispose()
        reader.dispose()


def test_concurrent_writers_and_a_refreshing_worker_end_equal_to_a_rebuild(database_url):
    """Writers on three lists race a worker that refreshes and matches all the while: whatever
    order their changes commit in, the worker's index ends equal to the table."""
    writer, reader = Database(database_url), Database(database_url)
    snapshots = Snapshots(base_points=default_points())
    warm = index_of(snapshots, reader)
    done = threading.Event()
    errors: list[BaseException] = []
    now = utcnow()

    def writes(name: str, values: list[str]) -> None:
        try:
            for value in values:
                write(writer, add(name, [value]))
                if value.startswith("x"):
                    write(writer, lambda session: delete_list_value(get_list(name, session=session), value, actor="t", session=session))
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            errors.append(error)

    def worker() -> None:
        try:
            while not done.is_set():
                index = index_of(snapshots, reader)
                index.match_ip("203.0.113.7", now=now)
                index.match_domain("mail.a3.example", now=now)
                time.sleep(0.002)
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [
        threading.Thread(target=writes, args=("blocked-domains", [f"{p}{i}.example" for i in range(6) for p in "ax"])),
        threading.Thread(target=writes, args=("blocked-ips", [f"203.0.113.{i}" for i in range(8)])),
        threading.Thread(target=writes, args=("blocked-emails", [f"{p}{i}@example.com" for i in range(6) for p in "ax"])),
    ]
    observer = threading.Thread(target=worker)
    try:
        observer.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        done.set()
        observer.join(10)
    try:
        assert errors == []
        index = index_of(snapshots, reader)
        assert index is warm
        assert contents(index) == rebuilt(reader)
        assert {"a5.example", "203.0.113.7", "a5@example.com"} <= values_of(index)
        assert not {"x5.example", "x5@example.com"} & values_of(index)
    finally:
        writer.dispose()
        reader.dispose()
