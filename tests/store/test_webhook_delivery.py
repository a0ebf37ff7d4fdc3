"""Webhook deliveries against a real receiver on loopback, on both databases: written in the
caller's transaction, signed per Standard Webhooks (checked with the `standardwebhooks`
package), retried with backoff for a day, never sent twice at once by concurrent workers."""

from __future__ import annotations

import random
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlmodel import select
from standardwebhooks.webhooks import Webhook

from tests.support.webhook_receiver import WebhookReceiver
from verify.delivery import FIRST_RETRY, LEASE, LONGEST_RETRY, Deliverer, deliver_until_idle, retry_delay
from verify.store.database import Database
from verify.store.models import WebhookDelivery
from verify.store.webhooks import (
    ASSESSMENT_CREATED,
    REVISION_CREATED,
    RETRY_WINDOW,
    claim_due,
    create_endpoint,
    enqueue_event,
    enqueue_events,
    purge_deliveries,
)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def revision(n: int) -> dict:
    """A revision as DESIGN.md section 3 shapes it."""
    return {
        "id": f"rev-{n}", "sequence": n, "assessment_id": f"assessment-{n}", "external_id": f"user-{n}",
        "previous_verdict": "allow", "verdict": "deny",
        "reasons": [{"code": "cluster.fraud_label", "points": 60, "detail": "shares a device with a labelled fraud"}],
        "cause": {"kind": "feedback", "ref": "feedback-1"}, "created_at": "2026-12-03T08:00:00.000Z",
    }


@pytest.fixture
def receiver():
    server = WebhookReceiver(stall=0.6).start()
    yield server
    server.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


# A receiver on loopback answers well within PATIENT even on a loaded machine; HASTY is
# shorter than the receiver's stall, for the tests of a receiver too slow to wait for.
PATIENT = 5.0
HASTY = 0.3


def make_deliverer(services, clock, timeout: float = PATIENT) -> Deliverer:
    return Deliverer(database=services.database, timeout=timeout, clock=clock, rng=random.Random(7))


@pytest.fixture
def deliverer(services, clock) -> Deliverer:
    return make_deliverer(services, clock)


def endpoint(services, url: str, events=(REVISION_CREATED,), *, enabled: bool = True):
    with services.database.transaction() as session:
        return create_endpoint(url=url, events=list(events), description="", enabled=enabled, actor="test", session=session)


def enqueue(services, payloads: list[dict], *, now: datetime | None = None) -> None:
    with services.database.transaction() as session:
        enqueue_events(session, REVISION_CREATED, payloads, now=now)


def deliveries(services) -> list[WebhookDelivery]:
    with services.database.transaction() as session:
        return list(session.exec(select(WebhookDelivery).order_by(WebhookDelivery.seq)))


def signed_by(secret: str, received) -> bool:
    """The independent implementation's signature of what arrived equals the header's."""
    stamp = datetime.fromtimestamp(int(received.headers["webhook-timestamp"]), tz=timezone.utc)
    expected = Webhook(secret).sign(received.headers["webhook-id"], stamp, received.body.decode())
    return received.headers["webhook-signature"] == expected


def test_an_event_is_written_in_the_callers_transaction(services, receiver):
    subscribed = endpoint(services, receiver.url("/a"))
    endpoint(services, receiver.url("/b"), events=[ASSESSMENT_CREATED])
    endpoint(services, receiver.url("/c"), enabled=False)
    with pytest.raises(RuntimeError):
        with services.database.transaction() as session:
            assert enqueue_event(session, REVISION_CREATED, revision(1)) == 1
            raise RuntimeError("the process dies before the revision commits")
    assert deliveries(services) == []  # nothing announced that was not recorded
    with services.database.transaction() as session:
        enqueue_event(session, REVISION_CREATED, revision(1))
    [row] = deliveries(services)
    assert (row.endpoint_id, row.event_type, row.status, row.attempts) == (subscribed.id, REVISION_CREATED, "pending", 0)
    assert row.retry_until - row.created_at == RETRY_WINDOW


def test_a_receiver_that_fails_times_out_and_recovers_gets_every_event_once(services, receiver, clock, deliverer):
    hook = endpoint(services, receiver.url())
    enqueue(services, [revision(n) for n in range(1, 4)], now=clock())

    receiver.mode = "fail"
    outcomes = deliverer.deliver_due()
    assert [(o.status, o.status_code, o.error) for o in outcomes] == [("retry", 500, "HTTP 500")] * 3
    assert all(len(row.last_response) <= 200 for row in deliveries(services))  # a short prefix only
    assert deliverer.deliver_due() == []  # backing off: nothing is due yet

    receiver.mode = "stall"
    clock.advance(minutes=1)
    outcomes = make_deliverer(services, clock, timeout=HASTY).deliver_due()
    assert [(o.status, o.error) for o in outcomes] == [("retry", "no answer within 0.3 s")] * 3

    receiver.mode = "ok"
    clock.advance(minutes=2)
    assert [o.status for o in deliver_until_idle(deliverer)] == ["succeeded"] * 3
    clock.advance(hours=30)
    assert deliverer.deliver_due() == []

    ok = receiver.ids(answered="ok")
    assert sorted(ok) == sorted(row.id for row in deliveries(services)) and len(set(ok)) == 3
    assert all(signed_by(hook.secret, r) for r in receiver.received)
    assert len(receiver.received) == 9
    assert {r.headers["webhook-id"]: r.body for r in receiver.received if r.answered == "ok"} == {
        r.headers["webhook-id"]: r.body for r in receiver.received if r.answered == "fail"
    }  # every attempt sends the same bytes under the same id
    for row in deliveries(services):
        assert (row.status, row.attempts, row.last_status_code, row.claim) == ("succeeded", 3, 204, None)


def test_signatures_verify_with_the_standardwebhooks_package(services, receiver):
    hook = endpoint(services, receiver.url())
    enqueue(services, [revision(1)])
    Deliverer(database=services.database, timeout=2).deliver_due()
    [received] = receiver.received
    event = Webhook(hook.secret).verify(received.body, received.headers)  # raises unless signed right, and recent
    assert event["type"] == REVISION_CREATED and event["data"] == revision(1)
    assert received.headers["content-type"] == "application/json"
    assert hook.secret.startswith("whsec_")
    with pytest.raises(Exception):
        Webhook("whsec_" + "A" * 43 + "=").verify(received.body, received.headers)


def test_retries_back_off_exponentially_for_at_least_a_day_then_fail(services, receiver, clock, deliverer):
    endpoint(services, receiver.url())
    enqueue(services, [revision(1)], now=clock())
    created = clock()
    receiver.mode = "fail"
    delays = []
    while True:
        [outcome] = deliverer.deliver_due()
        [row] = deliveries(services)
        if outcome.status == "failed":
            break
        delays.append(row.next_attempt_at - clock())
        clock.now = row.next_attempt_at
    assert row.status == "failed" and row.next_attempt_at is None
    assert clock() - created >= timedelta(hours=24)  # retried for at least a day
    assert row.attempts == len(delays) + 1 < 40
    for attempt, delay in enumerate(delays, start=1):
        ceiling = min(FIRST_RETRY * 2 ** (attempt - 1), LONGEST_RETRY)
        assert ceiling / 2 <= delay <= ceiling  # exponential, with jitter
    assert delays[-1] > 100 * delays[0]


def test_backoff_jitter_spreads_retries():
    drawn = {retry_delay(4, rng=random.Random(seed)) for seed in range(20)}
    assert len(drawn) == 20 and all(timedelta(seconds=20) <= d <= timedelta(seconds=40) for d in drawn)
    assert retry_delay(60, rng=random.Random(1)) <= LONGEST_RETRY


def test_redirects_are_not_followed(services, receiver, clock, deliverer):
    endpoint(services, receiver.url())
    enqueue(services, [revision(1)], now=clock())
    receiver.mode = "redirect"
    [outcome] = deliverer.deliver_due()
    assert (outcome.status, outcome.status_code) == ("retry", 307) and "not followed" in outcome.error
    assert [r.path for r in receiver.received] == ["/hook"]


def test_a_receiver_that_drips_its_answer_does_not_hold_the_worker(services, receiver, clock):
    endpoint(services, receiver.url())
    enqueue(services, [revision(1)], now=clock())
    receiver.mode = "drip"
    started = time.monotonic()
    [outcome] = make_deliverer(services, clock, timeout=1.0).deliver_due()
    assert time.monotonic() - started < 5  # about two timeouts (2 s); the whole body would take 10 s
    assert (outcome.status, outcome.status_code) == ("succeeded", 200)  # the status came in time
    assert set(deliveries(services)[0].last_response) == {"x"}


def test_an_unreachable_receiver_is_retried(services, clock, deliverer):
    endpoint(services, "http://127.0.0.1:9/hook")  # the discard port: nothing listens
    enqueue(services, [revision(1)], now=clock())
    [outcome] = deliverer.deliver_due()
    assert outcome.status == "retry" and outcome.error.startswith("could not be reached")


def test_a_disabled_endpoint_waits(services, receiver, clock, deliverer):
    hook = endpoint(services, receiver.url())
    enqueue(services, [revision(1)], now=clock())
    with services.database.transaction() as session:
        from verify.store.webhooks import update_endpoint

        update_endpoint(hook.id, {"enabled": False}, actor="test", session=session)
    assert deliverer.deliver_due() == []
    with services.database.transaction() as session:
        update_endpoint(hook.id, {"enabled": True}, actor="test", session=session)
    assert [o.status for o in deliverer.deliver_due()] == ["succeeded"]


def test_a_killed_worker_loses_nothing(services, receiver, clock, deliverer):
    endpoint(services, receiver.url())
    enqueue(services, [revision(1), revision(2)], now=clock())
    with services.database.transaction() as session:  # a worker claims both, then is killed
        assert len(claim_due(now=clock(), lease=LEASE, limit=10, session=session)) == 2
    assert deliverer.deliver_due() == []  # its claims hold while it might still be sending
    clock.now += LEASE + timedelta(seconds=1)
    assert [o.status for o in deliverer.deliver_due()] == ["succeeded"] * 2
    assert sorted(receiver.ids()) == sorted(row.id for row in deliveries(services))


def test_concurrent_workers_never_send_one_delivery_twice(services, database_url):
    receiver = WebhookReceiver(hold=0.01).start()
    try:
        endpoint(services, receiver.url())
        enqueue(services, [revision(n) for n in range(60)])
        errors = []

        def work() -> None:
            database = Database(database_url)
            try:
                worker = Deliverer(database=database, timeout=2)
                while worker.deliver_due(limit=3):
                    pass
            except Exception as error:  # noqa: BLE001 (reported below)
                errors.append(error)
            finally:
                database.dispose()

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert errors == []
        ids = receiver.ids()
        assert len(ids) == 60 and len(set(ids)) == 60 and receiver.overlaps == 0
        assert {row.status for row in deliveries(services)} == {"succeeded"}
    finally:
        receiver.stop()


def test_retention_purges_finished_deliveries_only(services, receiver, clock, deliverer):
    endpoint(services, receiver.url())
    enqueue(services, [revision(1)], now=clock())
    assert [o.status for o in deliverer.deliver_due()] == ["succeeded"]
    enqueue(services, [revision(2)], now=clock())
    with services.database.transaction() as session:
        assert purge_deliveries(clock() + timedelta(seconds=1), session=session) == 1
    assert [row.status for row in deliveries(services)] == ["pending"]
