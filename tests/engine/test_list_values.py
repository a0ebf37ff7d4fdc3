"""Validation and normalisation of list values, per kind (no app needed)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from verify.engine import list_values
from verify.engine.list_values import Located, ValuesInvalid, normalise_all, normaliser, text_lines
from verify.engine.lists import ListEntryValue, ListIndex
from verify.intel.providers import Providers
from verify.settings import PROJECT_ROOT

RULES = Providers.load(PROJECT_ROOT / "data").mail_rules

GOOD = [
    # kind, raw, stored
    ("email_domain", "Example.COM", "example.com"),
    ("email_domain", "  example.com.  ", "example.com"),
    ("email_domain", "bücher.example", "xn--bcher-kva.example"),
    ("email_domain", "mail.sub.example.org", "mail.sub.example.org"),
    ("email", "J.Smith+promo@GoogleMail.com", "jsmith@gmail.com"),
    ("email", "Alice@Example.org", "alice@example.org"),
    ("ip", "203.0.113.9", "203.0.113.9"),
    ("ip", "203.0.113.9/32", "203.0.113.9"),
    ("ip", "198.51.100.0/24", "198.51.100.0/24"),
    ("ip", "2001:DB8:0:0::1", "2001:db8::1"),
    ("ip", "2001:db8::/32", "2001:db8::/32"),
    ("asn", "AS13335", "13335"),
    ("asn", "as13335", "13335"),
    ("asn", " 13335 ", "13335"),
    ("country", "gb", "GB"),
    ("country", "AQ", "AQ"),
    ("phone_prefix", "+44 7700-900", "447700900"),
    ("phone_prefix", "1415", "1415"),
    ("device", "  d-81f2 ", "d-81f2"),
]

BAD = [
    ("email_domain", "someone@example.com", "email address"),
    ("email_domain", "https://example.com/path", "URL"),
    ("email_domain", "example.com:25", "port"),
    ("email_domain", "*.example.com", "subdomains"),
    ("email_domain", "localhost", "valid domain"),
    ("email_domain", "exa mple.com", "valid domain"),
    ("email_domain", "", "empty"),
    ("email", "not-an-address", "valid email"),
    ("ip", "10.0.0.5/24", "did you mean 10.0.0.0/24"),
    ("ip", "999.1.1.1", "IPv4 or IPv6"),
    ("ip", "example.com", "IPv4 or IPv6"),
    ("asn", "AS", "AS number"),
    ("asn", "0", "from 1"),
    ("asn", "AS4294967296", "from 1"),
    ("asn", "-5", "AS number"),
    ("country", "ZZ", "not an assigned"),
    ("country", "GBR", "alpha-2"),
    ("country", "g1", "alpha-2"),
    ("phone_prefix", "+0044", "never with 0"),
    ("phone_prefix", "44a", "E.164 prefix"),
    ("phone_prefix", "+", "E.164 prefix"),
    ("phone_prefix", "1234567890123456", "at most 15"),
    ("device", "   ", "empty"),
    ("device", "x" * 257, "at most 256"),
]


@pytest.mark.parametrize(("kind", "raw", "stored"), GOOD, ids=[f"{k}:{r.strip()[:30]}" for k, r, _ in GOOD])
def test_good_values_are_normalised(kind, raw, stored):
    assert normaliser(kind, rules=RULES)(raw) == stored


@pytest.mark.parametrize(("kind", "raw", "message"), BAD, ids=[f"{k}:{r[:30]}" for k, r, _ in BAD])
def test_bad_values_are_refused_with_a_reason(kind, raw, message):
    with pytest.raises(list_values.ValueInvalid, match=message):
        normaliser(kind, rules=RULES)(raw)


def test_one_bad_value_rejects_all_and_each_is_named():
    values = [Located("values[0]", "ok.example"), Located("values[1]", "a@b.c"), Located("values[2]", "x y")]
    with pytest.raises(ValuesInvalid) as caught:
        normalise_all("email_domain", values, rules=RULES)
    assert [e["field"] for e in caught.value.errors] == ["values[1]", "values[2]"]


def test_text_lines_skip_blanks_and_comments_but_keep_hash_inside_a_value():
    text = "\ufeff# header\nexample.com\n\n  other.example   # why\nabc#1\n"
    assert text_lines(text) == [Located("line 2", "example.com"), Located("line 4", "other.example"), Located("line 5", "abc#1")]


def test_stored_values_match_what_signups_are_looked_up_by():
    """An entry normalised here is found by the index for the signup's own normalised keys."""
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def entry(kind: str, raw: str) -> ListEntryValue:
        return ListEntryValue(f"l-{kind}", kind, "deny", normaliser(kind, rules=RULES)(raw))

    index = ListIndex([
        entry("email_domain", "Bücher.Example."),
        entry("email", "J.Smith+x@googlemail.com"),
        entry("ip", "198.51.100.0/24"),
        entry("asn", "AS64500"),
        entry("country", "kp"),
        entry("phone_prefix", "+44 7700 900"),
        entry("device", " dev-1 "),
    ])
    assert index.match_domain("mail.xn--bcher-kva.example", now=now)
    assert index.match_email("jsmith@gmail.com", now=now)
    assert index.match_ip("198.51.100.77", now=now) and not index.match_ip("198.51.101.1", now=now)
    assert index.match_asn(64500, now=now)
    assert index.match_country("KP", now=now)
    assert index.match_phone("+447700900123", now=now) and not index.match_phone("+447700800123", now=now)
    assert index.match_device("dev-1", now=now)


def test_expired_entry_stops_matching():
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    index = ListIndex([ListEntryValue("blocked-ips", "ip", "deny", "203.0.113.0/24", expires_at=now - timedelta(seconds=1))])
    assert index.match_ip("203.0.113.5", now=now) == []
    assert index.match_ip("203.0.113.5", now=now - timedelta(seconds=2))


def test_country_codes_are_the_assigned_ones():
    assert len(list_values.COUNTRY_CODES) == 250  # the 249 ISO 3166-1 codes and XK
    assert {"GB", "US", "DE", "AQ", "XK"} <= list_values.COUNTRY_CODES
    assert not {"AC", "TA", "EU", "ZZ", "UK"} & list_values.COUNTRY_CODES


@pytest.mark.parametrize("text", ["a.example\rb.example\n", "x\r\x00y\n", '"unclosed\n', "Í\rº\x03u\x1d\n"])
def test_any_csv_upload_is_rows_or_a_named_error_never_a_crash(text):
    from datetime import datetime, timezone

    from verify.engine.list_values import ValuesInvalid, file_rows

    try:
        rows = file_rows(text, is_csv=True, now=datetime.now(timezone.utc), parse_time=datetime.fromisoformat)
    except ValuesInvalid as error:
        assert all(item["field"].startswith("line ") for item in error.errors)
    else:
        assert all(row.located.where.startswith("line ") for row in rows)
