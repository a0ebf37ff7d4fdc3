"""Assess one signup, in stages: gather signals, derive keys, match lists, ask DNS, read history, judge, record.

This is the one place where intel, the pure engine and the store meet; the HTTP view and
the CLI both call `Assessor.assess`. Each stage returns plain values; the keys are derived
from the signals by one pure function (`identity.signup_keys`), never written on the side.
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from collections.abc import Callable
from typing import Any

from sqlmodel import Session

from verify.engine import history, identity
from verify.engine.decide import judge
from verify.engine.email import is_role_account, looks_random, typo_suggestion
from verify.engine.identity import IdentityInvalid, Keys
from verify.engine.lists import DISPOSABLE_LIST, HOSTING_LIST, ListIndex, ListMatch
from verify.engine.models import Signals
from verify.engine.network import address_scope, is_country
from verify.engine.phone import describe_phone
from verify.engine.policy import Policy
from verify.intel.geoip import GeoIP
from verify.intel.providers import Providers
from verify.stages import Stages
from verify.store import history as stored
from verify.store.assessments import FIND_IDEMPOTENT, INSERT_ASSESSMENT, NewAssessment
from verify.store.driver import Driver, json_text
from verify.store.revisions import INSERT_JOB, cluster_jobs
from verify.store.snapshots import Snapshot, Snapshots
from verify.store.recent import RecentIndex, window_of
from verify.store.stamps import ASSESSMENTS_STAMP, READ_STAMPS
from verify.store.webhooks import INSERT_DELIVERY

__all__ = ["Assessor", "Judged", "Keys", "Signup"]


@dataclass(frozen=True)
class Signup:
    """A signup as the registration backend describes it, already schema-checked."""

    email: str
    occurred_at: datetime
    phone: str | None = None
    ip: str | None = None
    country: str | None = None
    device_id: str | None = None
    user_agent: str | None = None
    external_id: str | None = None
    payment_fingerprint: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class Judged:
    """A judged signup not yet stored, with what judged it."""

    row: NewAssessment
    snapshot: Snapshot
    stamps: dict[str, int]
    # (id, request hash) of the assessment stored earlier under the same Idempotency-Key, if any
    earlier: tuple[str, str] | None


@dataclass(frozen=True)
class Read:
    """What the read round trip brought, with the copies it was read against."""

    snapshot: Snapshot
    signals: Signals
    counted: dict[str, Any]  # the keys history is read by
    rows: list[list[tuple]]
    counts: dict[str, dict[str, int]]
    samples: dict[str, list]  # the hot keys' reputation samples, from memory
    stamps: dict[str, int]


class Assessor:
    def __init__(
        self,
        *,
        providers: Providers,
        mx_checker: Any,
        snapshots: Snapshots,
        geoip: GeoIP | None = None,
    ) -> None:
        self.providers = providers
        self.mx_checker = mx_checker
        self.snapshots = snapshots
        self.geoip = geoip or GeoIP.unconfigured()
        self.recent = RecentIndex()  # this process's rows of the hot history keys

    # -- gathering (no database, no DNS) ---------------------------------------------------

    def email_signals(self, raw: str) -> dict[str, Any]:
        """What the address says on its own; `mx` is asked later, once the lists have spoken."""
        providers = self.providers
        try:
            key = identity.email_key(raw, rules=providers.mail_rules)
        except IdentityInvalid as error:
            return {"valid": False, "error": str(error)}
        domain = key.ascii_domain
        return {
            "valid": True,
            "normalized": f"{key.local}@{key.domain}",
            "address": key.address,
            "local": key.local,
            "domain": domain,
            "canonical": key.canonical,
            "provider": key.provider,
            "free": providers.is_free(domain),
            "relay": providers.is_relay(domain),
            "role_account": is_role_account(key.local, providers.role_names),
            "random_local_part": looks_random(key.local),
            "typo_suggestion": typo_suggestion(domain, providers.popular, known=providers.real_domains),
        }

    def ip_signals(self, address: str | None, *, declared_country: str | None) -> dict[str, Any]:
        """Address space, location, owner and anonymity of the signup's IP (already an identity.ip_address key)."""
        if address is None:
            return {"provided": False}
        return {
            "provided": True,
            "address": address,
            "version": ipaddress.ip_address(address).version,
            "scope": address_scope(address),
            "network": identity.ip_network(address),
            **self.geoip.describe(address),
            "declared_country": declared_country,
        }

    def gather(self, signup: Signup) -> Signals:
        """Everything that needs neither the database nor DNS: syntax, GeoIP, phone ranges."""
        ip = self.ip_signals(signup.ip, declared_country=signup.country)
        return {
            "email": self.email_signals(signup.email),
            "phone": describe_phone(signup.phone, declared_country=signup.country, ip_country=ip.get("country")),
            "ip": ip,
            "history": {},
            "lists": [],
        }

    # -- lists, then DNS ---------------------------------------------------------------------

    def match_lists(self, signals: Signals, keys: Keys, lists: ListIndex, *, now: datetime) -> list[ListMatch]:
        """Every live list entry that names one of the keys (the disposable list included)."""
        matches: list[ListMatch] = []
        if keys.email_domain:
            matches += lists.match_domain(keys.email_domain, now=now)
        if keys.email_canonical:
            matches += lists.match_email(keys.email_canonical, now=now)
        if keys.device_id:
            matches += lists.match_device(keys.device_id, now=now)
        if keys.ip:
            matches += lists.match_ip(keys.ip, now=now)
        if keys.asn is not None:
            matches += lists.match_asn(keys.asn, now=now)
        countries = [signals["ip"].get("country"), signals["phone"].get("country")]
        for country in dict.fromkeys(c for c in countries if is_country(c)):
            matches += lists.match_country(country, now=now)
        if signals["phone"].get("e164"):
            matches += lists.match_phone(signals["phone"]["e164"], now=now)
        return matches

    def mail_exchange(self, domain: str, matches: list[ListMatch]) -> str:
        """The MX verdict of the domain, asked only when neither a provider nor a list already decided it."""
        # The big providers receive mail: asking DNS for them adds latency and, behind a
        # broken resolver, would turn every Gmail signup into an undeliverable one.
        if domain in self.providers.free or self.providers.is_relay(domain):
            return "known_provider"
        # A domain on a deny, allow or disposable list is judged by the list: a lookup would
        # cost a round trip (and leak the domain to the resolver) for nothing.
        if any(match.kind == "email_domain" for match in matches):
            return "skipped"
        return self.mx_checker.check(domain)

    @staticmethod
    def with_lists(signals: Signals, matches: list[ListMatch], *, mx: str | None) -> Signals:
        """The signals with the list matches and the MX verdict filled in (a new value)."""
        email = dict(signals["email"])
        if email.get("valid"):
            email["disposable"] = any(m.list == DISPOSABLE_LIST for m in matches)
            email["mx"] = mx
        ip = dict(signals["ip"])
        hosting = [m for m in matches if m.list == HOSTING_LIST]
        # Published cloud ranges stand in for the Anonymous IP database only where it gave no answer.
        if hosting and ip.get("is_hosting_provider") == "unknown":
            ip.update(is_hosting_provider=True, hosting_source=f"{HOSTING_LIST} list", hosting_network=hosting[0].entry)
        shown = [m.as_dict() for m in matches if m.list not in (DISPOSABLE_LIST, HOSTING_LIST)]
        return {**signals, "email": email, "ip": ip, "lists": shown}

    # -- history: one round trip with the stamps ------------------------------------------

    # Reputation is kept per key of these columns; free-mail and relay domains have none.
    REPUTATION_KEYS = (("email_domain", "email_domain"), ("ip_network", "ip_network"), ("asn", "asn"), ("device", "device_id"))

    @staticmethod
    def counted_keys(signals: Signals, keys: Keys) -> dict[str, Any]:
        """The keys history is read by; gmail.com is the hottest key of all and says nothing: not counted."""
        counted = asdict(keys)
        if history.domain_is_shared(signals):
            counted.update(email_domain=None, local_template=None)
        return counted

    def evidence_batch(self, counted: dict[str, Any], keys: Keys, policy: Policy, *, at: datetime,
                       earlier_of: tuple[int, str] | None, skip: set[str], skip_columns: set[str]) -> list[tuple[str, dict[str, Any]]]:
        """The statements of the read round trip: stamps, counts (but of the names in `skip`), first
        sighting, reputation (but of the key columns in `skip_columns`), and an earlier answer under
        the Idempotency-Key (always five)."""
        limits = policy.limits
        return [
            (READ_STAMPS, {}),
            (stored.COUNTS, stored.counts_params(counted, email=keys.email or "", windows=history.windows(limits), end=at,
                                                 cap=int(limits["count_cap"]), skip=skip)),
            (stored.FIRST_SEEN, {"email_domain": counted["email_domain"], "first": stored.FIRST_MOMENT, "end": at}),
            (stored.REPUTATION, stored.reputation_params(counted, end=at, sample=int(limits["reputation_sample"]), skip=skip_columns)),
            (FIND_IDEMPOTENT, {"api_key_id": earlier_of[0] if earlier_of else None,
                               "idempotency_key": earlier_of[1] if earlier_of else None}),
        ]

    def read_counts(self, counted: dict[str, Any], keys: Keys, policy: Policy, rows: list[list[tuple]], *, at: datetime,
                    memory: set[str]) -> dict[str, dict[str, int]] | None:
        """Counts per history name: from the SQL scans, and for the hot keys from this process's
        recent rows; None when those cannot tell (the request then reads them by SQL)."""
        names = stored.counted_names(counted)
        counts = stored.read_counts(rows[1], tuple(name for name in names if name not in memory))
        if memory:
            limits = policy.limits
            window = window_of(stored.window_starts(history.windows(limits), at), at, int(limits["count_cap"]))
            for name in memory:
                found = self.recent.counts(name, counted, window, email=keys.email or "")
                if found is None:
                    return None
                counts[name] = found
        return {name: counts[name] for name in names}

    def kept_samples(self, counted: dict[str, Any], policy: Policy, *, at: datetime, columns: set[str]) -> dict[str, list] | None:
        """The reputation samples of the hot keys, from this process's recent rows; None when they cannot tell."""
        sample = int(policy.limits["reputation_sample"])
        found = {}
        for column in stored.REPUTATION_COLUMNS:
            if column in columns:
                found[column] = self.recent.reputation(column, counted, end=at, sample=sample)
                if found[column] is None:
                    return None
        return found

    def history_signal(self, rows: list[list[tuple]], counts: dict[str, dict[str, int]], samples: dict[str, list],
                       counted: dict[str, Any], keys: Keys, policy: Policy, *, at: datetime, driver: Driver) -> dict[str, Any]:
        """Earlier signups per key, with first-seen and reputation: what signals["history"] holds."""
        limits = policy.limits
        spans, cap = history.windows(limits), int(limits["count_cap"])
        domain_first_seen = driver.moment(rows[2][0][0]) if rows[2] else None
        columns = tuple(column for _, column in self.REPUTATION_KEYS if counted.get(column) is not None)
        evidence = {**stored.read_reputation(rows[3], columns, driver), **samples}
        record = {
            name: history.reputation(evidence[column], at=at, limits=limits)
            for name, column in self.REPUTATION_KEYS
            if column in evidence
        }
        shown_keys = {
            "email_canonical": keys.email_canonical,
            "email_domain": keys.email_domain,
            "local_template": keys.local_template,
            "phone": keys.phone_e164,
            "phone_block": keys.phone_block,
            "ip": keys.ip,
            "ip_network": keys.ip_network,
            "asn": keys.asn,
            "device": keys.device_id,
            "payment": keys.payment_fingerprint,
        }
        return {
            "windows": spans,
            "cap": cap,
            "keys": {name: value for name, value in shown_keys.items() if value is not None},
            "counts": counts,
            "capped": sorted(f"{name}.{window}" for name, by in counts.items() for window, n in by.items() if n >= cap),
            "email_domain_first_seen_days": (
                None if domain_first_seen is None else round((at - domain_first_seen).total_seconds() / history.DAY, 2)
            ),
            "reputation": record,
        }

    def read_evidence(self, signup: Signup, gathered: Signals, keys: Keys, *, driver: Driver, session: Callable[[], Session],
                      now: datetime, earlier_of: tuple[int, str] | None, stages: Stages) -> Read:
        """The lists' verdicts and the one read round trip, with the copies as of the stamps it read.

        When a stamp moved (an admin changed something) the copies are renewed and the round trip
        made again; when the hot keys' kept rows cannot tell, it is made again by SQL alone. The
        fourth try takes what it reads.
        """
        stamps = self.snapshots.seen_stamps or dict(driver.read([(READ_STAMPS, {})])[0])
        by_sql_only = False
        for attempt in range(4):
            last = attempt == 3
            snapshot = self.snapshots.at(stamps, session)
            matches = self.match_lists(gathered, keys, snapshot.lists, now=now)
            mx = self.mail_exchange(keys.email_domain, matches) if keys.email_domain else None
            signals = self.with_lists(gathered, matches, mx=mx)
            stages.mark("lists")
            counted = self.counted_keys(signals, keys)
            cap = int(snapshot.policy.limits["count_cap"])
            names, columns = (set(), set()) if by_sql_only or last else self.recent.kept(counted, stored.REPUTATION_COLUMNS)
            recent_batch, plan = self.recent.statements(counted, cap=cap)
            evidence = self.evidence_batch(counted, keys, snapshot.policy, at=signup.occurred_at, earlier_of=earlier_of,
                                          skip=names, skip_columns=columns)
            rows = driver.read(evidence + recent_batch)
            stages.mark("history")
            current = dict(rows[0])
            if not self.snapshots.fresh(current) and not last:
                stamps = current
                continue
            self.recent.absorb(rows[len(evidence):], plan, cap=cap, moment=driver.moment, stamp=current.get(ASSESSMENTS_STAMP, 0))
            counts = self.read_counts(counted, keys, snapshot.policy, rows, at=signup.occurred_at, memory=names)
            samples = self.kept_samples(counted, snapshot.policy, at=signup.occurred_at, columns=columns)
            if counts is not None and samples is not None:
                break
            by_sql_only = True
        self.recent.notice(counts, counted)
        stages.mark("history")  # the hot keys' counts and samples, taken from memory, are history too
        self.snapshots.seen_stamps = current
        return Read(snapshot, signals, counted, rows, counts, samples, current)

    # -- the whole assessment ----------------------------------------------------------

    def judge_signup(
        self,
        signup: Signup,
        *,
        driver: Driver,
        session: Callable[[], Session],
        now: datetime,
        api_key_id: int | None = None,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        stages: Stages | None = None,
    ) -> Judged:
        """Judge one signup, reading the database once (one round trip); nothing is written.

        The policy, lists and subscriptions are this process's copies as of the last stamps it
        saw; the round trip reads the stamps again, and when one moved (an admin changed
        something) the copies are renewed through `session` and the round trip is made again.
        """
        stages = stages or Stages.off()
        gathered = self.gather(signup)
        keys = identity.signup_keys(gathered, device_id=signup.device_id, payment_fingerprint=signup.payment_fingerprint)
        stages.mark("gather")
        earlier_of = (api_key_id, idempotency_key) if idempotency_key is not None and api_key_id is not None else None
        read = self.read_evidence(signup, gathered, keys, driver=driver, session=session, now=now, earlier_of=earlier_of,
                                  stages=stages)
        snapshot, signals = read.snapshot, read.signals
        earlier = read.rows[4][0] if read.rows[4] else None
        signals["history"] = self.history_signal(read.rows, read.counts, read.samples, read.counted, keys, snapshot.policy,
                                                 at=signup.occurred_at, driver=driver)
        decision = judge(signals, snapshot.policy)
        stages.mark("judge")
        row = NewAssessment(
            id=str(uuid.uuid4()),
            created_at=now,
            occurred_at=signup.occurred_at,
            verdict=decision.verdict,
            score=decision.score,
            policy_version=snapshot.policy.version,
            api_key_id=api_key_id,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            # One spelling per address (an invalid one as cleaned), so that erasure and the
            # variant count compare stored keys, never SQL lower().
            email=keys.email or identity.clean_text(signup.email),
            email_canonical=keys.email_canonical,
            email_domain=keys.email_domain,
            local_template=keys.local_template,
            phone=signup.phone,
            phone_e164=keys.phone_e164,
            phone_block=keys.phone_block,
            ip=keys.ip,
            ip_network=keys.ip_network,
            asn=keys.asn,
            country=signup.country,
            device_id=keys.device_id,
            payment_fingerprint=keys.payment_fingerprint,
            user_agent=signup.user_agent,
            external_id=signup.external_id,
            metadata_=signup.metadata,
            reasons=[reason.as_dict() for reason in decision.reasons],
            signals=signals,
        )
        return Judged(row=row, snapshot=snapshot, stamps=read.stamps, earlier=earlier)

    @staticmethod
    def record(judged: Judged, *, driver: Driver, deliveries: list[dict[str, Any]]) -> None:
        """Write the assessment, the revision jobs its cluster causes and its webhook deliveries: one
        round trip, one transaction (uncommitted on SQLite and inside a Session: the caller commits)."""
        jobs = [{**job, "payload": json_text(job["payload"])} for job in cluster_jobs(judged.row, judged.snapshot.policy)]
        batch = [(INSERT_ASSESSMENT, [judged.row.values()])]
        if jobs:
            batch.append((INSERT_JOB, jobs))
        if deliveries:
            batch.append((INSERT_DELIVERY, deliveries))
        driver.write(batch)

    def assess(self, signup: Signup, *, session: Session, now: datetime, deliveries: Callable[[Judged], list] | None = None) -> NewAssessment:
        """Judge one signup and store it in `session`'s transaction (uncommitted): the CLI's way."""
        judged = self.judge_signup(signup, driver=Driver.of_session(session), session=lambda: session, now=now)
        self.record(judged, driver=Driver.of_session(session), deliveries=deliveries(judged) if deliveries else [])
        return judged.row
