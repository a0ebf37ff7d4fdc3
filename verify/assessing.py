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
from verify.store.assessments import save_assessment
from verify.store.history import first_seen, history_counts, reputation_evidence
from verify.store.models import Assessment
from verify.store.revisions import enqueue_clusters
from verify.store.snapshots import Snapshots

__all__ = ["Assessor", "Keys", "Signup"]


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

    # -- history -------------------------------------------------------------------------

    # Reputation is kept per key of these columns; free-mail and relay domains have none.
    REPUTATION_KEYS = (("email_domain", "email_domain"), ("ip_network", "ip_network"), ("asn", "asn"), ("device", "device_id"))

    def read_history(self, signals: Signals, keys: Keys, policy: Policy, *, at: datetime, session: Session) -> dict[str, Any]:
        """Earlier signups per key, with first-seen and reputation: what signals["history"] holds."""
        limits = policy.limits
        spans, cap = history.windows(limits), int(limits["count_cap"])
        values = asdict(keys)
        shared_domain = history.domain_is_shared(signals)
        counted = dict(values)
        if shared_domain:  # gmail.com is the hottest key of all and says nothing: not counted
            counted.update(email_domain=None, local_template=None)
        counts = history_counts(counted, email=keys.email or "", windows=spans, end=at, cap=cap, session=session)
        domain_first_seen = None
        if keys.email_domain and not shared_domain:
            domain_first_seen = first_seen("email_domain", keys.email_domain, before=at, session=session)
        wanted = {
            column: values[column]
            for name, column in self.REPUTATION_KEYS
            if values.get(column) is not None and not (name == "email_domain" and shared_domain)
        }
        evidence = reputation_evidence(wanted, before=at, sample=int(limits["reputation_sample"]), session=session)
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

    # -- the whole assessment ----------------------------------------------------------

    def assess(
        self,
        signup: Signup,
        *,
        session: Session,
        now: datetime,
        api_key_id: int | None = None,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
    ) -> Assessment:
        """Judge one signup and store it (uncommitted): the one function the API and the CLI call."""
        gathered = self.gather(signup)
        keys = identity.signup_keys(gathered, device_id=signup.device_id, payment_fingerprint=signup.payment_fingerprint)
        snapshot = self.snapshots.current(session=session)
        matches = self.match_lists(gathered, keys, snapshot.lists, now=now)
        mx = self.mail_exchange(keys.email_domain, matches) if keys.email_domain else None
        signals = self.with_lists(gathered, matches, mx=mx)
        signals["history"] = self.read_history(signals, keys, snapshot.policy, at=signup.occurred_at, session=session)
        decision = judge(signals, snapshot.policy)
        row = Assessment(
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
        save_assessment(row, session=session)
        enqueue_clusters(row, snapshot.policy, session=session)
        return row
