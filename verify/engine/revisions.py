"""Re-judging stored assessments when evidence arrives after them: which earlier assessments a
piece of evidence reaches, and what each one's verdict becomes. Pure: the caller passes the
stored keys and signals, the policy in force and the times; a replay of the same traffic and
the same feedback gives the same revisions.

Evidence and its reach:
- a person's `fraud` label on an assessment reaches the assessments that share one of its
  strong keys (the canonical mailbox, phone, device, payment fingerprint) within
  `revision_lookback_days` of it, and those that share its generated local-part template (on
  a domain of its own), its number block or its network within the medium window. A weak key
  (template, block, network) is shared by honest people too (an office, a carrier NAT, one
  block of a mobile operator): it counts only where the assessment's own identity evidence
  already corroborates it (`corroborated`);
- a new deny-list entry reaches the stored assessments it matches within the look-back;
- a key that crosses a `cluster_*` limit reaches its earlier members in the long window.

A revision only ever raises a verdict; only a person's `legitimate` label lowers one, and only
for the assessment it labels (`legitimate`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from verify.engine import history
from verify.engine.decide import CHECKS, judge
from verify.engine.identity import ip_filter, is_generated_template
from verify.engine.models import Finding, Reason, Signals, Verdict

RANK: dict[str, int] = {"allow": 0, "challenge": 1, "deny": 2}

# Assessment column -> what a detail calls it.
STRONG_KEYS: dict[str, str] = {
    "email_canonical": "mailbox",
    "phone_e164": "phone number",
    "device_id": "device",
    "payment_fingerprint": "payment method",
}
WEAK_KEYS: dict[str, str] = {
    "local_template": "local-part template",
    "phone_block": "number block",
    "ip_network": "network",
}

# Evidence about the identity itself, of the assessment's own: where a weak link may count.
IDENTITY_CODES = frozenset(
    code for code in history.CORROBORATING_CODES if not code.startswith(("ip.", "list.", "cluster."))
) | {"email.pattern_burst"}

# history count -> (the limit that makes a cluster, the column its members share)
CLUSTER_LIMITS: dict[str, tuple[str, str]] = {
    "email_variants": ("cluster_email", "email_canonical"),
    "phone": ("cluster_phone", "phone_e164"),
    "device": ("cluster_device", "device_id"),
    "payment": ("cluster_payment", "payment_fingerprint"),
}


@dataclass(frozen=True)
class Link:
    """Stored assessments whose `column` holds one of `values` (`match`: equal, prefix or domain),
    with occurred_at in [since, until); `weak` links need corroboration."""

    column: str
    values: tuple[Any, ...]
    since: datetime
    until: datetime
    detail: str
    match: str = "equal"
    weak: bool = False

    def reaches(self, keys: Mapping[str, Any], occurred_at: datetime) -> bool:
        if not self.since <= occurred_at < self.until:
            return False
        value = keys.get(self.column)
        if value is None:
            return False
        if self.match == "prefix":
            return any(str(value).startswith(str(prefix)) for prefix in self.values)
        if self.match == "domain":
            return any(value == domain or str(value).endswith("." + str(domain)) for domain in self.values)
        return value in self.values


@dataclass(frozen=True)
class Evidence:
    """What a job re-judges with: the links, the reason code they add, and what they leave out."""

    code: str
    links: tuple[Link, ...]
    exclude: str | None = None  # the assessment the evidence is about, judged on its own


@dataclass(frozen=True)
class StoredAssessment:
    """What re-judging needs of a stored assessment: its keys, its signals and its verdict now."""

    id: str
    occurred_at: datetime
    keys: Mapping[str, Any]
    signals: Signals
    reasons: Sequence[Mapping[str, Any]]
    verdict: str  # the current verdict: the latest revision's, or the stored one


@dataclass(frozen=True)
class Outcome:
    previous_verdict: Verdict
    verdict: Verdict
    reasons: tuple[Reason, ...]


# -- reach -----------------------------------------------------------------------------------

def fraud_label_evidence(
    labelled: StoredAssessment, *, limits: Mapping[str, int], shared_domain: bool, label_source: str
) -> Evidence:
    """The links a person's fraud label on `labelled` follows."""
    lookback = timedelta(days=int(limits["revision_lookback_days"]))
    nearby = timedelta(seconds=int(limits["window_medium_seconds"]))
    at = labelled.occurred_at
    links = []
    for column, what in STRONG_KEYS.items():
        value = labelled.keys.get(column)
        if value is not None:
            detail = f"shares its {what} with assessment {labelled.id}, labelled fraud by a person ({label_source})"
            links.append(Link(column, (value,), at - lookback, at + lookback, detail))
    for column, what in WEAK_KEYS.items():
        value = labelled.keys.get(column)
        if value is None:
            continue
        # A template is a link only on a domain of its own and when it was generated: first.last
        # on gmail.com is half the world.
        if column == "local_template" and (shared_domain or not is_generated_template(str(value))):
            continue
        detail = f"shares its {what} with assessment {labelled.id}, labelled fraud by a person ({label_source}), within a day"
        links.append(Link(column, (value,), at - nearby, at + nearby, detail, weak=True))
    self_link = Link("id", (labelled.id,), at, at + timedelta(microseconds=1), f"labelled fraud by a person ({label_source})")
    return Evidence("cluster.fraud_label", (self_link, *links))


def crossed_limits(signals: Signals, limits: Mapping[str, int]) -> list[str]:
    """The history counts whose cluster this signup makes reach its limit (counts are of *other* mailboxes)."""
    crossed = []
    for key, (limit_name, _column) in CLUSTER_LIMITS.items():
        earlier = history.count(signals, key, "long")
        if earlier is not None and earlier + 1 == int(limits[limit_name]):
            crossed.append(key)
    return crossed


def cluster_evidence(key: str, value: Any, *, at: datetime, source_id: str, limits: Mapping[str, int]) -> Evidence:
    """Earlier members of a cluster that just reached its limit."""
    limit_name, column = CLUSTER_LIMITS[key]
    window = timedelta(seconds=int(limits["window_long_seconds"]))
    what = STRONG_KEYS[column]
    detail = (f"its {what} went on to sign up {limits[limit_name]} mailboxes (assessment {source_id} reached "
              f"the `{limit_name}` limit)")
    return Evidence("cluster.limit", (Link(column, (value,), at - window, at, detail),), exclude=source_id)


def ip_keys(value: str) -> tuple[str, tuple[str, ...]] | None:
    """The stored keys an IP list entry covers, as search finds them; None for a range too wide
    to look up by key (more than 256 networks or addresses, a /8 say): it revises nothing."""
    try:
        return ip_filter(value)
    except ValueError:
        return None


def list_evidence(list_name: str, kind: str, values: Sequence[Any], *, now: datetime, limits: Mapping[str, int]) -> Evidence | None:
    """Stored assessments a new deny-list entry matches, within the look-back; None for kinds not kept as a key."""
    since = now - timedelta(days=int(limits["revision_lookback_days"]))
    shown = values[0] if len(values) == 1 else f"{len(values)} entries"
    detail = f"now on the deny list {list_name} ({shown})"
    match kind:
        case "email":
            link = Link("email_canonical", tuple(values), since, now, detail)
        case "email_domain":
            link = Link("email_domain", tuple(values), since, now, detail, match="domain")
        case "device":
            link = Link("device_id", tuple(values), since, now, detail)
        case "asn":
            link = Link("asn", tuple(int(value) for value in values), since, now, detail)
        case "phone_prefix":
            link = Link("phone_e164", tuple(f"+{str(value).lstrip('+')}" for value in values), since, now, detail, match="prefix")
        case "ip":
            # Each entry as the stored keys it covers: its /24s or /64s, or its addresses.
            covered: dict[str, list[str]] = {"ip": [], "ip_network": []}
            for value in values:
                if (keys := ip_keys(str(value))) is not None:
                    covered[keys[0]] += keys[1]
            links = [Link(column, tuple(keys), since, now, detail) for column, keys in covered.items() if keys]
            return Evidence("cluster.list_match", tuple(links)) if links else None
        case _:
            return None
    return Evidence("cluster.list_match", (link,))


# -- as stored with a queued job (JSON) -------------------------------------------------------

def evidence_document(evidence: Evidence) -> dict[str, Any]:
    return {
        "code": evidence.code,
        "exclude": evidence.exclude,
        "links": [
            {"column": link.column, "values": list(link.values), "since": link.since.isoformat(),
             "until": link.until.isoformat(), "detail": link.detail, "match": link.match, "weak": link.weak}
            for link in evidence.links
        ],
    }


def evidence_from_document(document: Mapping[str, Any]) -> Evidence:
    links = tuple(
        Link(item["column"], tuple(item["values"]), datetime.fromisoformat(item["since"]), datetime.fromisoformat(item["until"]),
             item["detail"], match=item.get("match", "equal"), weak=bool(item.get("weak")))
        for item in document["links"]
    )
    return Evidence(document["code"], links, exclude=document.get("exclude"))


# -- the new verdict ---------------------------------------------------------------------------

def corroborated(reasons: Iterable[Mapping[str, Any]]) -> bool:
    """The assessment's own reasons say its identity is made up or recycled."""
    return any(reason.get("code") in IDENTITY_CODES and (reason.get("points") or 0) > 0 for reason in reasons)


def usable_links(stored: StoredAssessment, evidence: Evidence) -> list[Link]:
    """The links by which the evidence may raise this assessment: none when it is the evidence's own, already
    denied (nothing raises a denial), or reached only weakly without identity evidence of its own. Needs no signals."""
    if stored.id == evidence.exclude or stored.verdict == "deny":
        return []
    reached = [link for link in evidence.links if link.reaches({**stored.keys, "id": stored.id}, stored.occurred_at)]
    if not reached or (all(link.weak for link in reached) and not corroborated(stored.reasons)):
        return []
    itself = [link for link in reached if link.column == "id"]
    return itself or [link for link in reached if not link.weak] or reached


def rejudge(stored: StoredAssessment, evidence: Evidence, policy: Any) -> Outcome | None:
    """The raised verdict the evidence gives a stored assessment, or None when it does not raise it."""
    usable = usable_links(stored, evidence)
    if not usable:
        return None
    finding = Finding(evidence.code, "; ".join(dict.fromkeys(link.detail for link in usable)))

    def later_evidence(_signals: Signals, _policy: Any) -> Iterable[Finding]:
        return (finding,)

    decision = judge(stored.signals, policy, checks=(*CHECKS, later_evidence))
    verdict = decision.verdict
    if evidence.code == "cluster.list_match":  # as at signup, a deny-list match wins over everything
        verdict = "deny"
    if RANK[verdict] <= RANK[stored.verdict]:
        return None
    return Outcome(previous_verdict=stored.verdict, verdict=verdict, reasons=decision.reasons)  # type: ignore[arg-type]


def legitimate(current: str) -> Outcome | None:
    """A person's `legitimate` label lowers that one assessment to allow."""
    if current == "allow":
        return None
    return Outcome(previous_verdict=current, verdict="allow", reasons=())  # type: ignore[arg-type]


def rejudge_with_reasons(signals: Signals, reasons: Sequence[Mapping[str, Any]], policy: Any) -> Verdict:
    """A stored revision's verdict under another policy: its signals with its cluster findings (simulation)."""
    found = tuple(
        Finding(str(reason["code"]), str(reason.get("detail", "")))
        for reason in reasons if str(reason.get("code", "")).startswith("cluster.")
    )
    if not found:  # a legitimate label: a person's word, whatever the policy
        return "allow"

    def later_evidence(_signals: Signals, _policy: Any) -> Iterable[Finding]:
        return found

    verdict = judge(signals, policy, checks=(*CHECKS, later_evidence)).verdict
    return "deny" if any(f.code == "cluster.list_match" for f in found) else verdict
