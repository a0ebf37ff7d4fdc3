"""Block, challenge and allow lists: a compiled index for fast matching, and the list checks."""

from __future__ import annotations

import ipaddress
import threading
from collections import Counter
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


@dataclass(frozen=True)
class ListChange:
    """One change to a list as the index applies it: `add` (or replace) an entry, or `remove` its value."""

    op: str  # "add" | "remove"
    entry: ListEntryValue


class ListIndex:
    """Every list entry, indexed per kind: sets for exact values, radix trees for networks.

    Built whole from every entry, then kept current by `apply`ing the changes after it, in
    place: a one-entry change costs microseconds where a rebuild of 300,000 entries took
    seconds. Applying one entry and building with it are the same code, so the two agree.
    """

    def __init__(self, entries: Iterable[ListEntryValue]) -> None:
        # Entries of one value are kept in tuples, replaced rather than mutated, so that a
        # match running beside `apply` reads either the old tuple or the new one.
        self._exact: dict[str, dict[str, tuple[ListEntryValue, ...]]] = {}
        self._networks: dict[tuple[str, int], pytricia.PyTricia] = {}
        self._longest_prefix = 0
        # Held by `apply` and by the radix-tree walk, whose steps a removal could pull apart.
        self._lock = threading.Lock()
        self.size = 0
        self.sizes: Counter[str] = Counter()  # stored entries per list, unreadable ones included
        # Stored values an older version wrote but this one cannot read (a zoned IPv6 address):
        # one bad row must not make every assessment fail, so it is left out and reported.
        self.skipped: list[ListEntryValue] = []
        for entry in entries:  # one per list and value, as the table's unique constraint keeps them
            self._put(entry, replace=False)

    def apply(self, changes: Iterable[ListChange]) -> list[ListEntryValue]:
        """Apply changes in order, in place; return the added entries that cannot be read."""
        skipped = []
        with self._lock:
            for change in changes:
                if change.op == "add":
                    if not self._put(change.entry):
                        skipped.append(change.entry)
                elif change.op == "remove":
                    self._remove(change.entry)
                else:
                    raise ValueError(f"unknown list change {change.op!r}")
        return skipped

    def entries(self) -> list[ListEntryValue]:
        """Every indexed entry (not the skipped ones), in no particular order."""
        with self._lock:
            found = [entry for table in self._exact.values() for entries in table.values() for entry in entries]
            found += [tree[key] for tree in self._networks.values() for key in tree]
        return found

    def _put(self, entry: ListEntryValue, *, replace: bool = True) -> bool:
        """Add the entry, replacing its list's entry of the same value; False when it cannot be read."""
        if replace:
            self._remove(entry)
        self.sizes[entry.list_name] += 1
        if self._add(entry):
            self.size += 1
            return True
        self.skipped.append(entry)
        return False

    def _remove(self, entry: ListEntryValue) -> bool:
        """Take the list's entry of this value out; False when there was none."""
        if self._discard(entry):
            self.size -= 1
        else:
            for position, skipped in enumerate(self.skipped):
                if skipped.list_name == entry.list_name and skipped.value == entry.value:
                    del self.skipped[position]
                    break
            else:
                return False
        self.sizes[entry.list_name] -= 1
        if not self.sizes[entry.list_name]:
            del self.sizes[entry.list_name]
        return True

    def _add(self, entry: ListEntryValue) -> bool:
        if entry.kind != "ip":
            table = self._exact.setdefault(entry.kind, {})
            table[entry.value] = table.get(entry.value, ()) + (entry,)
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

    def _discard(self, entry: ListEntryValue) -> bool:
        """Take the entry of this list and value out of the tables; False when they hold none."""
        if entry.kind != "ip":
            table = self._exact.get(entry.kind, {})
            found = table.get(entry.value, ())
            kept = tuple(e for e in found if e.list_name != entry.list_name)
            if len(kept) == len(found):
                return False
            if kept:
                table[entry.value] = kept
            else:
                del table[entry.value]
            return True
        tree = self._networks.get((entry.list_name, 6 if ":" in entry.value else 4))
        if tree is None:
            return False
        # The tree holds one entry per network; normalised values name each network once.
        for key in (entry.value, _network_text(entry.value)):
            try:
                if key is not None and tree.has_key(key) and tree[key].value == entry.value:
                    del tree[key]
                    return True
            except (ValueError, SystemError, KeyError):
                continue
        return False

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
        with self._lock:
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


def _network_text(value: str) -> str | None:
    """The network as ipaddress writes it: the key `_add` falls back to for text the tree cannot parse."""
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        return None


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
