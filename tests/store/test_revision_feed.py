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
