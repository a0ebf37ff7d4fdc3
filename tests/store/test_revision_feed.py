"""The revision feed under concurrent writers: a poller following the cursor sees every revision once, in order.

Several writers (threads with their own connections, as several instances would be) record
revisions in transactions that stay open for a while after taking their sequences, committing
out of the order they started in; a poller reads the feed all along. Were sequences handed out
without holding the stamp's row lock to commit (an autoincrement column, say), a later sequence
would become visible before an earlier one and a poller past it would skip the earlier one.
"""

from __future__ import annotations

import random
import threading
import time

from verify.store.database import Database
from verify.store.revisions import NewRevision, record_revisions, revisions_after

WRITERS, ROUNDS = 4, 10


def revision(n: int) -> NewRevision:
    return NewRevision(assessment_id=f"a-{n}", external_id=None, previous_verdict="allow", verdict="deny",
                       reasons=[], cause_kind="feedback", cause_ref="test")


def test_a_poller_never_skips_a_revision_with_writers_committing_out_of_order(database_url):
    database = Database(database_url)
    done = threading.Event()
    errors: list[BaseException] = []

    def write(writer: int) -> None:
        rng = random.Random(writer)
        try:
            for round_ in range(ROUNDS):
                with database.transaction() as session:
                    record_revisions(session, [revision(writer * 100 + round_ * 10 + k) for k in range(rng.randint(1, 3))])
                    time.sleep(rng.uniform(0, 0.015))  # hold the transaction open: commits interleave
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            errors.append(error)

    seen: list[int] = []

    def poll() -> None:
        cursor = 0
        while True:
            finished = done.is_set()  # read before the page: the last page after it sees everything
            with database.transaction() as session:
                page = revisions_after(cursor, limit=3, session=session)
            seen.extend(row.sequence for row in page)
            if page:
                cursor = page[-1].sequence
            elif finished:
                return
            time.sleep(0.001)

    writers = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
    poller = threading.Thread(target=poll)
    poller.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    poller.join(timeout=30)
    assert not errors, errors
    with database.transaction() as session:
        stored = [row.sequence for row in revisions_after(0, limit=10_000, session=session)]
    database.dispose()
    assert stored == list(range(1, len(stored) + 1))  # no gaps: every sequence taken was committed
    assert seen == stored  # every revision once, in order, though commits interleaved


def test_two_workers_sharing_the_queue_revise_each_assessment_once(database_url, services, client, assess_headers, admin_headers):
    from tests.support.history_traffic import post
    from verify.revising import run_due

    # Twelve members on one device, each labelled: twelve jobs that all reach all of them.
    members = [post(client, assess_headers, f"w{n}.worker@gmail.com", n, device_id="shared-farm-dev")["id"] for n in range(12)]
    for member in members:
        assert client.post(f"/v1/assessments/{member}/feedback", json={"label": "fraud"}, headers=admin_headers).status_code == 201
    database = Database(database_url)
    counts: list[int] = []
    workers = [threading.Thread(target=lambda: counts.append(run_due(database, batch=3))) for _ in range(2)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    with database.transaction() as session:
        feed = revisions_after(0, limit=1000, session=session)
    database.dispose()
    assert sum(counts) == len(feed)
    rank = {"allow": 0, "challenge": 1, "deny": 2}
    for member in members:  # a chain, each step up from where the last left it: never one change twice
        chain = [(row.previous_verdict, row.verdict) for row in feed if row.assessment_id == member]
        assert chain and chain[-1][1] == "deny", chain
        assert all(rank[after] > rank[before] for before, after in chain), chain
        assert all(chain[i][1] == chain[i + 1][0] for i in range(len(chain) - 1)), chain
