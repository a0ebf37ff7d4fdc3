"""Changes applied to the list index in place match the index built afresh from the result (no app needed)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from verify.engine.lists import ListChange, ListEntryValue, ListIndex

T = datetime(2026, 6, 1, tzinfo=timezone.utc)
LISTS = {
    "blocked-ips": ("ip", "deny"),
    "allowed-ips": ("ip", "allow"),
    "blocked-domains": ("email_domain", "deny"),
    "allowed-domains": ("email_domain", "allow"),
    "blocked-emails": ("email", "deny"),
    "blocked-phone-prefixes": ("phone_prefix", "deny"),
    "blocked-asns": ("asn", "deny"),
}
VALUES = {
    # Nested networks, so that removing the most specific one uncovers its parent.
    "ip": ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.3", "2001:db8::/32", "2001:db8:1::/48", "2001:db8::1", "fe80::1%eth0"],
    "email_domain": ["example.com", "mail.example.com", "example.org"],
    "email": ["a@example.com", "b@example.com"],
    "phone_prefix": ["1", "44", "447", "4477"],
    "asn": ["64500", "64501"],
}
EXPIRIES = [None, T - timedelta(hours=1), T + timedelta(hours=1)]
NOWS = [T - timedelta(hours=2), T, T + timedelta(hours=2)]


def probes(index: ListIndex, now: datetime) -> list:
    """Every kind of match over addresses and names in and around the values above, order aside."""
    found = []
    for address in ["10.1.2.3", "10.1.2.4", "10.1.3.3", "10.2.0.1", "11.0.0.1", "2001:db8::1", "2001:db8:1::5", "2001:db9::1"]:
        found += index.match_ip(address, now=now)
    for domain in ["a.mail.example.com", "example.com", "example.org", "x.example.net"]:
        found += index.match_domain(domain, now=now)
    for email in ["a@example.com", "b@example.com", "c@example.com"]:
        found += index.match_email(email, now=now)
    for phone in ["+447700900123", "+4420", "+15551234", "+33123"]:
        found += index.match_phone(phone, now=now)
    for asn in [64500, 64501, 64502]:
        found += index.match_asn(asn, now=now)
    return sorted(found, key=lambda match: tuple(str(v) for v in match.as_dict().values()))


def entry(list_name: str, value: str, reason: str | None = None, expires_at: datetime | None = None) -> ListEntryValue:
    kind, action = LISTS[list_name]
    return ListEntryValue(list_name, kind, action, value, reason, expires_at)


def assert_same_as_rebuilt(index: ListIndex, state: dict[tuple[str, str], ListEntryValue]) -> None:
    rebuilt = ListIndex(state.values())
    for now in NOWS:
        assert probes(index, now) == probes(rebuilt, now)
    assert sorted(index.entries(), key=repr) == sorted(rebuilt.entries(), key=repr)
    assert sorted(index.skipped, key=repr) == sorted(rebuilt.skipped, key=repr)
    assert index.size == rebuilt.size
    assert +index.sizes == +rebuilt.sizes == Counter(list_name for list_name, _ in state)


@st.composite
def changes(draw) -> ListChange:
    list_name = draw(st.sampled_from(sorted(LISTS)))
    value = draw(st.sampled_from(VALUES[LISTS[list_name][0]]))
    if draw(st.booleans()):
        return ListChange("add", entry(list_name, value, draw(st.sampled_from([None, "spam"])), draw(st.sampled_from(EXPIRIES))))
    return ListChange("remove", entry(list_name, value))


def apply_to_state(state: dict[tuple[str, str], ListEntryValue], change: ListChange) -> None:
    key = (change.entry.list_name, change.entry.value)
    if change.op == "add":
        state[key] = change.entry
    else:
        state.pop(key, None)


@settings(max_examples=150, deadline=None)
@given(
    initial=st.lists(changes(), max_size=12),
    batches=st.lists(st.lists(changes(), min_size=1, max_size=8), min_size=1, max_size=5),
)
def test_changes_applied_in_place_match_a_full_rebuild(initial, batches):
    state: dict[tuple[str, str], ListEntryValue] = {}
    for change in initial:
        apply_to_state(state, change)
    index = ListIndex(state.values())
    for batch in batches:
        index.apply(batch)
        for change in batch:
            apply_to_state(state, change)
        assert_same_as_rebuilt(index, state)


def test_removing_the_most_specific_network_uncovers_its_parent():
    index = ListIndex([entry("blocked-ips", "10.0.0.0/8"), entry("blocked-ips", "10.1.2.0/24", "bad range")])
    assert [m.entry for m in index.match_ip("10.1.2.3", now=T)] == ["10.1.2.0/24"]
    index.apply([ListChange("remove", entry("blocked-ips", "10.1.2.0/24"))])
    assert [m.entry for m in index.match_ip("10.1.2.3", now=T)] == ["10.0.0.0/8"]
    index.apply([ListChange("remove", entry("blocked-ips", "10.0.0.0/8"))])
    assert index.match_ip("10.1.2.3", now=T) == []


def test_an_added_entry_with_an_expiry_stops_matching_when_it_expires():
    index = ListIndex([])
    index.apply([ListChange("add", entry("blocked-domains", "example.com", expires_at=T + timedelta(minutes=5)))])
    assert index.match_domain("mail.example.com", now=T)
    assert index.match_domain("mail.example.com", now=T + timedelta(minutes=5)) == []


def test_removing_one_lists_entry_keeps_another_lists_entry_for_the_same_value():
    index = ListIndex([entry("blocked-domains", "example.com"), entry("allowed-domains", "example.com")])
    index.apply([ListChange("remove", entry("allowed-domains", "example.com"))])
    assert [(m.list, m.action) for m in index.match_domain("example.com", now=T)] == [("blocked-domains", "deny")]


def test_apply_returns_the_added_values_it_cannot_read():
    index = ListIndex([])
    unreadable = entry("blocked-ips", "fe80::1%eth0")
    assert index.apply([ListChange("add", unreadable), ListChange("add", entry("blocked-ips", "10.1.2.3"))]) == [unreadable]
    assert index.skipped == [unreadable] and index.sizes["blocked-ips"] == 2
    index.apply([ListChange("remove", unreadable)])
    assert index.skipped == [] and index.sizes["blocked-ips"] == 1
