"""Sending webhook deliveries: claim the due ones (store), sign and POST each (Standard
Webhooks), record the outcome and when to try again.

`verify worker` and, on the embedded default, a child process of `verify serve` both call
`Deliverer.deliver_due`. Sends happen outside any transaction; several workers share the
work through the claims in verify/store/webhooks.py. Delivery is at least once: a worker
killed after the receiver answered but before the outcome was recorded leaves a delivery
that is sent again once its claim lapses, with the same webhook-id, which receivers use to
drop repeats (as the specification tells them to).
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import requests
from sqlalchemy.exc import SQLAlchemyError

from verify import standard_webhooks
from verify.children import Stop, stop_event
from verify.intel.download import USER_AGENT
from verify.settings import Settings
from verify.store import webhooks as webhook_store
from verify.store.database import Database

log = logging.getLogger(__name__)

BATCH = 20
DELIVERY_POLL = 1.0  # seconds between looks for due deliveries: an event goes out about this soon
# A claim lasts longer than its batch can take (each send is bounded by about three timeouts:
# connect, the answer's head, its body), so a live worker's claim never lapses under it; a dead
# worker's deliveries go out again when it does, 5 minutes later with the default timeout.
LEASE = timedelta(minutes=5)
FIRST_RETRY = timedelta(seconds=5)
LONGEST_RETRY = timedelta(hours=2)
RESPONSE_PREFIX = 200  # characters of a receiver's answer kept for the log; the rest is dropped


def _cause(error: BaseException) -> str:
    """The innermost cause, which names the actual problem (refused, reset, name not known)."""
    while error.__context__ is not None and error.__context__ is not error:
        error = error.__context__
    return str(error) or type(error).__name__


def retry_delay(attempts: int, *, rng: random.Random) -> timedelta:
    """Exponential backoff after the n-th failed attempt: 5 s, 10 s, 20 s, … at most 2 h,
    each drawn between half and all of that, so that receivers that failed together (an
    outage) are not all retried at the same moment."""
    ceiling = min(FIRST_RETRY * 2 ** min(attempts - 1, 30), LONGEST_RETRY)
    return ceiling * rng.uniform(0.5, 1.0)


@dataclass(frozen=True)
class Outcome:
    """One attempt: what the receiver answered, and what became of the delivery."""

    delivery_id: str
    succeeded: bool
    status: str  # succeeded | retry | failed | lost (the claim lapsed meanwhile)
    status_code: int | None = None
    error: str | None = None

    @property
    def failed(self) -> bool:
        """Given up on: retried for a day, or longer, without a 2xx answer."""
        return self.status == "failed"

    def describe(self) -> str:
        return f"webhook delivery {self.delivery_id}: {self.status}" + (f" ({self.error})" if self.error else "")


class Deliverer:
    def __init__(
        self,
        *,
        database: Database,
        timeout: float = 10.0,
        lease: timedelta = LEASE,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        rng: random.Random | None = None,
    ) -> None:
        self.database = database
        self.timeout = timeout
        self.lease = lease  # at least this; longer when a batch could take longer
        self.clock = clock
        self.rng = rng or random.Random()
        self.http = requests.Session()

    def deliver_due(self, *, limit: int = BATCH) -> list[Outcome]:
        """Claim up to `limit` due deliveries, send each once, record each outcome."""
        lease = max(self.lease, timedelta(seconds=limit * 3 * self.timeout))
        with self.database.transaction() as session:
            claimed = webhook_store.claim_due(now=self.clock(), lease=lease, limit=limit, session=session)
        return [self._deliver(delivery) for delivery in claimed]

    def _deliver(self, delivery: webhook_store.Claimed) -> Outcome:
        status_code, error, response = self.send(delivery)
        succeeded = status_code is not None and 200 <= status_code < 300
        at = self.clock()
        next_at = None
        if not succeeded and at < delivery.retry_until:
            next_at = at + retry_delay(delivery.attempts, rng=self.rng)
        with self.database.transaction() as session:
            kept = webhook_store.record_attempt(
                delivery, succeeded=succeeded, at=at, next_attempt_at=next_at, status_code=status_code,
                error=error, response=response, session=session,
            )
        status = "succeeded" if succeeded else "retry" if next_at else "failed"
        if not kept:
            status = "lost"
        if not succeeded:
            log.warning("webhook delivery %s, attempt %d: %s (%s)", delivery.id, delivery.attempts, error, status)
        return Outcome(delivery.id, succeeded, status, status_code, error)

    def send(self, delivery: webhook_store.Claimed) -> tuple[int | None, str | None, str | None]:
        """POST the signed body once: (status code, error, start of the answer's body)."""
        timestamp = int(self.clock().timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            **standard_webhooks.headers(delivery.secret, message_id=delivery.id, timestamp=timestamp, body=delivery.body),
        }
        try:
            # Redirects are not followed: a signed POST must not be replayed to wherever a
            # receiver (or whoever took over its name) points.
            with self.http.post(
                delivery.url, data=delivery.body.encode("utf-8"), headers=headers,
                timeout=self.timeout, allow_redirects=False, stream=True,
            ) as answer:
                shown = self.answer_prefix(answer)
                code = answer.status_code
                error = None
                if not 200 <= code < 300:
                    error = f"HTTP {code}" + (" (redirects are not followed)" if 300 <= code < 400 else "")
                return code, error, shown or None
        except requests.Timeout:
            return None, f"no answer within {self.timeout:g} s", None
        except requests.RequestException as failure:
            return None, f"could not be reached: {_cause(failure)}"[:500], None
        except Exception as failure:  # noqa: BLE001 (a receiver must never stop the loop: urllib3 raises oddities)
            return None, f"failed: {type(failure).__name__}"[:500], None

    def answer_prefix(self, answer: requests.Response) -> str:
        """The start of the answer's body, for the log: read for at most one more timeout, so
        that a receiver that drips its body cannot hold the worker."""
        deadline = time.monotonic() + self.timeout
        kept = b""
        try:
            while len(kept) < RESPONSE_PREFIX * 4 and time.monotonic() < deadline:
                chunk = answer.raw.read1(256, decode_content=True)  # what has arrived, never waiting for more
                if not chunk:
                    break
                kept += chunk
        except (requests.RequestException, OSError, ValueError) as failure:
            log.debug("the answer's body broke off: %s", type(failure).__name__)
        except Exception:  # noqa: BLE001 (urllib3's own errors: the status is what counts)
            pass
        return kept.decode("utf-8", "replace")[:RESPONSE_PREFIX].replace("\x00", "")


def deliverer_for(settings: Settings, database: Database) -> Deliverer:
    return Deliverer(database=database, timeout=settings.webhook_timeout)


def deliver_until_idle(deliverer: Deliverer, *, limit: int = BATCH) -> list[Outcome]:
    """Rounds of deliver_due until a round finds less than a full batch."""
    outcomes: list[Outcome] = []
    while True:
        batch = deliverer.deliver_due(limit=limit)
        outcomes += batch
        if len(batch) < limit:
            return outcomes


def run_deliveries(settings: Settings, *, poll: float, stop: Stop, parent_pid: int | None = None) -> None:
    """Deliver until `stop` is set, or until the parent process is gone (serve's child)."""
    database = Database(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
    deliverer = deliverer_for(settings, database)
    try:
        while not stop.is_set():
            if parent_pid is not None and os.getppid() != parent_pid:
                return
            try:
                deliver_until_idle(deliverer)
            except SQLAlchemyError as error:
                log.warning("webhook deliveries: the database failed (%s); trying again", type(error).__name__)
            except Exception:  # noqa: BLE001 (the loop outlives one bad round; the claims lapse and are retried)
                log.exception("webhook deliveries: a round failed; trying again")
            stop.wait(poll)
    finally:
        database.dispose()


def run_delivery_child(settings: Settings, *, parent_pid: int) -> None:
    """The delivery loop in a process forked from gunicorn's arbiter."""
    run_deliveries(settings, poll=DELIVERY_POLL, stop=stop_event(), parent_pid=parent_pid)
