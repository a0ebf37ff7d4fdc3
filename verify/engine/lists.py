"""Block, challenge and allow lists: a compiled index for fast matching, and the list checks."""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

import pytricia

from verify.engine.models import Check, Finding, Signals

KINDS = ("email", "email_domain", "ip", "asn", "country", "phone_prefix", "device")
ACTIONS = ("deny", "challenge", "allow")

# The seeded disposable-provider list is read as the `email.disposable` signal, scored by the
# policy, rather than as a hard list deny: an allow list can then correct the package's mistakes.
DISPOSABLE_LIST = "disposable-domains"
# Published cloud ranges (filled by `verify feeds`): a match is the `ip.hosting` signal where no
# Anonymous IP database answers, scored by the policy, never a verdict of its own. Its action,
# `signal`, says so; custom lists cannot take it.
HOSTING_LIST = "hosting-networks"
SIGNAL_ACTION = "signal"


@dataclass(frozen=True)
class ListEntryValue:
    """One entry as the index needs it."""

    list_name: str
    kind: str
    action: str
    value: str
    reason: str | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class ListMatch:
    list: str
    action: str
    kind: str
    entry: str
    matched: str
    reason: str | None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "list": self.list,
            "action": self.action,
            "kind": self.kind,
            "entry": self.entry,
            "matched": self.matched,
            "reason": self.reason,
        }


def _live(entry: ListEntryValue, now: datetime) -> bool:
    return entry.expires_at is None or entry.expires_at > now


class ListIndex:
    """Every list entry, indexed per kind: sets for exact values, radix trees for networks."""

    def __init__(self, entries: Iterable[ListEntryValue]) -> None:
        self._exact: dict[str, dict[str, list[ListEntryValue]]] = defaultdict(lambda: defaultdict(list))
        self._networks: dict[tuple[str, int], pytricia.PyTricia] = {}
        self._longest_prefix = 0
        self.size = 0
        # Stored values an older version wrote but this one cannot read (a zoned IPv6 address):
        # one bad row must not make every assessment fail, so it is left out and reported.
        self.skipped: list[ListEntryValue] = []
        for entry in entries:
            if self._add(entry):
                self.size += 1
            else:
                self.skipped.append(entry)

    def _add(self, entry: ListEntryValue) -> bool:
        if entry.kind != "ip":
            self._exact[entry.kind][entry.value].append(entry)
            if entry.kind == "phone_prefix":
                self._longest_prefix = max(self._longest_prefix, len(entry.value))
            return True
        # Stored values are already normalised (engine/list_values.py), so the radix tree parses
        # them itself: going through ipaddress first made rebuilding 100,000 networks take seconds.
        version = 6 if ":" in entry.value else 4
        key = (entry.list_name, version)
        tree = self._networks.get(key)
        if tree is None:
            tree = self._networks[key] = pytricia.PyTricia(32 if version == 4 else 128)
        try:
            tree[entry.value] = entry
            return True
        except (ValueError, SystemError):  # pytricia reports some malformed text as SystemError
            pass
        try:
            tree[str(ipaddress.ip_network(entry.value, strict=False))] = entry
        except (ValueError, SystemError):
            return False
        return True

    def _exact_matches(self, kind: str, candidates: Iterable[str], matched: str, now: datetime) -> list[ListMatch]:
        table = self._exact.get(kind, {})
        return [
            ListMatch(e.list_name, e.action, kind, e.value, matched, e.reason)
            for candidate in candidates
            for e in table.get(candidate, ())
            if _live(e, now)
        ]

    def match_email(self, canonical: str, *, now: datetime) -> list[ListMatch]:
        return self._exact_matches("email", [canonical], canonical, now)

    def match_domain(self, domain: str, *, now: datetime) -> list[ListMatch]:
        """The domain and each parent domain (a list entry covers its subdomains)."""
        labels = domain.split(".")
        candidates = [".".join(labels[i:]) for i in range(len(labels))]
        return self._exact_matches("email_domain", candidates, domain, now)

    def match_asn(self, asn: int, *, now: datetime) -> list[ListMatch]:
        return self._exact_matches("asn", [str(asn)], str(asn), now)

    def match_country(self, country: str, *, now: datetime) -> list[ListMatch]:
        return self._exact_matches("country", [country], country, now)

    def match_device(self, device_id: str, *, now: datetime) -> list[ListMatch]:
        return self._exact_matches("device", [device_id], device_id, now)

    def match_phone(self, e164: str, *, now: datetime) -> list[ListMatch]:
        digits = e164.lstrip("+")
        limit = min(len(digits), self._longest_prefix)
        candidates = [digits[:n] for n in range(1, limit + 1)]
        return self._exact_matches("phone_prefix", candidates, e164, now)

    def match_ip(self, address: str, *, now: datetime) -> list[ListMatch]:
        """The most specific live network of each list that holds the address."""
        version = ipaddress.ip_address(address).version
        found = []
        for (list_name, tree_version), tree in self._networks.items():
            if tree_version != version:
                continue
            key = tree.get_key(address)
            while key is not None:
                entry = tree[key]
                if _live(entry, now):
                    found.append(ListMatch(list_name, entry.action, "ip", entry.value, address, entry.reason))
                    break
                key = tree.parent(key)
        return found


# -- checks over signals["lists"] --------------------------------------------------------

def _describe(match: dict) -> str:
    why = f" ({match['reason']})" if match.get("reason") else ""
    return f"{match['matched']} matches {match['entry']} on list {match['list']}{why}"


def _list_check(action: str) -> Check:
    def check(signals: Signals, _policy: object) -> Iterator[Finding]:
        for match in signals.get("lists", ()):
            if match["action"] == action:
                yield Finding(f"list.{action}", _describe(match))

    check.__name__ = f"check_list_{action}"
    return check


CHECKS = tuple(_list_check(action) for action in ACTIONS)
