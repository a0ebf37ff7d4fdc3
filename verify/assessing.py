"""Assess one signup: gather signals from the outside-knowledge readers, judge, store.

This is the one place where intel, the pure engine and the store meet; the HTTP view and
the CLI both call `Assessor.assess`.
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
from verify.engine.email import EmailInvalid, is_role_account, looks_random, parse_email, typo_suggestion
from verify.engine.lists import DISPOSABLE_LIST, HOSTING_LIST, ListIndex, ListMatch
from verify.engine.models import Signals
from verify.engine.network import address_scope, is_country
from verify.engine.phone import describe_phone
from verify.engine.policy import Policy
from verify.intel.geoip import GeoIP
from verify.intel.providers import Providers
from verify.store import queries
from verify.store.models import Assessment
from verify.store.snapshots import Snapshots


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
    metadata: dict[str, Any] | None = None


@dataclass
class Keys:
    """What the signup is remembered and counted by."""

    email_canonical: str | None = None
    email_domain: str | None = None
    local_template: str | None = None
    phone_e164: str | None = None
    phone_block: str | None = None
    ip: str | None = None
    ip_network: str | None = None
    asn: int | None = None
    device_id: str | None = None


@dataclass
class Gathered:
    signals: Signals
    keys: Keys


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

    # -- gathering ---------------------------------------------------------------------

    def email_signals(self, raw: str, keys: Keys) -> dict[str, Any]:
        try:
            parsed = parse_email(raw)
        except EmailInvalid as error:
            return {"valid": False, "error": str(error)}
        providers = self.providers
        domain = parsed.ascii_domain
        keys.email_domain = domain
        keys.email_canonical = providers.canonical_email(parsed.local, domain)
        keys.local_template = identity.local_template(keys.email_canonical.rsplit("@", 1)[0])
        rule = providers.rules.get(domain)
        return {
            "valid": True,
            "normalized": parsed.address,
            "local": parsed.local,
            "domain": domain,
            "canonical": keys.email_canonical,
            "provider": rule.provider if rule else None,
            "free": providers.is_free(domain),
            "relay": providers.is_relay(domain),
            "role_account": is_role_account(parsed.local, providers.role_names),
            "random_local_part": looks_random(parsed.local),
            "typo_suggestion": typo_suggestion(domain, providers.popular, known=providers.real_domains),
            "mx": self.mail_exchange(domain),
        }

    def mail_exchange(self, domain: str) -> str:
        # The big providers receive mail: asking DNS for them adds latency and, behind a
        # broken resolver, would turn every Gmail signup into an undeliverable one.
        if domain in self.providers.free or self.providers.is_relay(domain):
            return "known_provider"
        return self.mx_checker.check(domain)

    def ip_signals(self, address: str | None, keys: Keys, *, declared_country: str | None) -> dict[str, Any]:
        """Address space, location, owner and anonymity of the signup's IP."""
        if address is None:
            return {"provided": False}
        ip = ipaddress.ip_address(address)
        described = self.geoip.describe(address)
        if isinstance(described["asn"], int):
            keys.asn = described["asn"]
        return {
            "provided": True,
            "address": address,
            "version": ip.version,
            "scope": address_scope(address),
            "network": keys.ip_network,
            **described,
            "declared_country": declared_country,
        }

    def phone_signals(self, raw: str | None, keys: Keys, *, declared_country: str | None, ip_country: Any) -> dict[str, Any]:
        """What the number's ranges say; a national number is read in the declared, else the IP's, country."""
        phone = describe_phone(raw, declared_country=declared_country, ip_country=ip_country)
        # A number of the right length for its country code is worth counting even when it
        # lies outside the allocated ranges: farms reuse made-up numbers too.
        if phone.get("possible"):
            keys.phone_e164 = phone["e164"]
            keys.phone_block = identity.phone_block(phone["e164"])
        return phone

    def gather(self, signup: Signup) -> Gathered:
        """Everything that needs no database: syntax, DNS, GeoIP, phone."""
        keys = Keys(device_id=signup.device_id)
        if signup.ip is not None:
            keys.ip = signup.ip
            keys.ip_network = identity.ip_network(signup.ip)
        ip = self.ip_signals(signup.ip, keys, declared_country=signup.country)
        signals: Signals = {
            "email": self.email_signals(signup.email, keys),
            "phone": self.phone_signals(signup.phone, keys, declared_country=signup.country, ip_country=ip.get("country")),
            "ip": ip,
            "history": {},
            "lists": [],
        }
        return Gathered(signals=signals, keys=keys)

    def match_lists(self, gathered: Gathered, signup: Signup, lists: ListIndex, *, now: datetime) -> None:
        keys, signals = gathered.keys, gathered.signals
        matches: list[ListMatch] = []
        if keys.email_domain:
            matches += lists.match_domain(keys.email_domain, now=now)
        if keys.email_canonical:
            matches += lists.match_email(keys.email_canonical, now=now)
        if keys.device_id:
            matches += lists.match_device(keys.device_id, now=now)
        matches += self.network_matches(gathered, lists, now=now)
        disposable = [m for m in matches if m.list == DISPOSABLE_LIST]
        if signals["email"].get("valid"):
            signals["email"]["disposable"] = bool(disposable)
        signals["lists"] = [m.as_dict() for m in matches if m.list not in (DISPOSABLE_LIST, HOSTING_LIST)]
        hosting = [m for m in matches if m.list == HOSTING_LIST]
        # Published cloud ranges stand in for the Anonymous IP database only where it gave no answer.
        if hosting and signals["ip"].get("is_hosting_provider") == "unknown":
            signals["ip"].update(is_hosting_provider=True, hosting_source=f"{HOSTING_LIST} list", hosting_network=hosting[0].entry)

    def network_matches(self, gathered: Gathered, lists: ListIndex, *, now: datetime) -> list[ListMatch]:
        """Regional lists: the IP and its ASN, the IP's and the phone's country, the phone's prefix."""
        keys, signals = gathered.keys, gathered.signals
        matches: list[ListMatch] = []
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

    # -- history -------------------------------------------------------------------------

    # Reputation is kept per key of these columns; free-mail and relay domains have none.
    REPUTATION_KEYS = (("email_domain", "email_domain"), ("ip_network", "ip_network"), ("asn", "asn"), ("device", "device_id"))

    def add_history(self, gathered: Gathered, signup: Signup, policy: Policy, *, session: Session) -> None:
        """Count earlier signups per key into signals["history"], with first-seen and reputation."""
        keys, signals = gathered.keys, gathered.signals
        limits, at = policy.limits, signup.occurred_at
        spans, cap = history.windows(limits), int(limits["count_cap"])
        values = asdict(keys)
        shared_domain = history.domain_is_shared(signals)
        counted = dict(values)
        if shared_domain:  # gmail.com is the hottest key of all and says nothing: not counted
            counted.update(email_domain=None, local_template=None)
        counts = queries.history_counts(counted, email=signup.email, windows=spans, end=at, cap=cap, session=session)
        first_seen = None
        if keys.email_domain and not shared_domain:
            first_seen = queries.first_seen("email_domain", keys.email_domain, before=at, session=session)
        wanted = {
            column: values[column]
            for name, column in self.REPUTATION_KEYS
            if values.get(column) is not None and not (name == "email_domain" and shared_domain)
        }
        evidence = queries.reputation_evidence(wanted, before=at, sample=int(limits["reputation_sample"]), session=session)
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
        }
        signals["history"] = {
            "windows": spans,
            "cap": cap,
            "keys": {name: value for name, value in shown_keys.items() if value is not None},
            "counts": counts,
            "capped": sorted(f"{name}.{window}" for name, by in counts.items() for window, n in by.items() if n >= cap),
            "email_domain_first_seen_days": (
                None if first_seen is None else round((at - first_seen).total_seconds() / history.DAY, 2)
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
        gathered = self.gather(signup)
        snapshot = self.snapshots.current(session=session)
        self.match_lists(gathered, signup, snapshot.lists, now=now)
        self.add_history(gathered, signup, snapshot.policy, session=session)
        decision = judge(gathered.signals, snapshot.policy)
        keys = gathered.keys
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
            email=signup.email,
            email_canonical=keys.email_canonical,
            email_domain=keys.email_domain,
            local_template=keys.local_template,
            phone=signup.phone,
            phone_e164=keys.phone_e164,
            phone_block=keys.phone_block,
            ip=signup.ip,
            ip_network=keys.ip_network,
            asn=keys.asn,
            country=signup.country,
            device_id=signup.device_id,
            user_agent=signup.user_agent,
            external_id=signup.external_id,
            metadata_=signup.metadata,
            reasons=[reason.as_dict() for reason in decision.reasons],
            signals=gathered.signals,
        )
        return queries.save_assessment(row, session=session)
