"""Phone parsing and the phone checks, as tables; no app."""

from __future__ import annotations

import pytest

from verify.engine import phone
from verify.engine.phone import describe_phone


def codes_for(raw: str | None, *, declared: str | None = None, ip_country=None) -> set[str]:
    signals = {
        "phone": describe_phone(raw, declared_country=declared, ip_country=ip_country),
        "ip": {"provided": ip_country is not None, "country": ip_country, "declared_country": declared},
    }
    return {finding.code for check in phone.CHECKS for finding in check(signals, None)}


# One real number per type, from libphonenumber's own example ranges.
@pytest.mark.parametrize(
    "raw, kind, country, expected",
    [
        ("+447400123456", "mobile", "GB", set()),
        ("+441212345678", "fixed_line", "GB", set()),
        ("+12015550123", "fixed_line_or_mobile", "US", set()),
        ("+445612345678", "voip", "GB", {"phone.voip"}),
        ("+448001234567", "toll_free", "GB", {"phone.premium_or_special"}),
        ("+18002530000", "toll_free", "US", {"phone.premium_or_special"}),
        ("+449012345678", "premium_rate", "GB", {"phone.premium_or_special"}),
        ("+4918012345", "shared_cost", "DE", {"phone.premium_or_special"}),
        ("+447012345678", "personal_number", "GB", {"phone.premium_or_special"}),
        ("+447640123456", "pager", "GB", {"phone.premium_or_special"}),
        ("+445512345678", "uan", "GB", {"phone.premium_or_special"}),
        ("+49177991234567", "voicemail", "DE", set()),
        ("+80012345678", "toll_free", None, {"phone.premium_or_special"}),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_each_number_type(raw, kind, country, expected):
    signals = describe_phone(raw, declared_country=None, ip_country=None)
    assert signals["valid"] is True
    assert (signals["type"], signals["country"]) == (kind, country)
    assert signals["type_source"] == "number ranges"
    assert codes_for(raw) == expected


@pytest.mark.parametrize(
    "raw, declared, ip_country, e164, hint",
    [
        ("07400 123456", "GB", None, "+447400123456", "GB"),
        ("07400 123456", None, "GB", "+447400123456", "GB"),
        ("07400 123456", None, "unknown", None, None),
        ("(201) 555-0123", "US", "GB", "+12015550123", "US"),
        ("+44 7400 123456", "US", None, "+447400123456", "US"),
    ],
    ids=["national-with-declared-country", "national-with-ip-country", "national-ip-country-unknown", "declared-wins-over-ip", "e164-ignores-the-hint"],
)
def test_region_hint(raw, declared, ip_country, e164, hint):
    signals = describe_phone(raw, declared_country=declared, ip_country=ip_country)
    assert signals.get("e164") == e164
    assert signals["region_hint"] == hint


def test_carrier_is_shown_where_the_library_knows_it():
    assert describe_phone("+447400123456", declared_country=None, ip_country=None)["carrier"] == "Three"
    assert describe_phone("+441212345678", declared_country=None, ip_country=None)["carrier"] is None


@pytest.mark.parametrize(
    "raw, declared, ip_country, expected",
    [
        (None, None, None, set()),
        ("not a number", "GB", None, {"phone.invalid"}),
        ("12345", None, None, {"phone.invalid"}),
        ("+1234", None, None, {"phone.invalid"}),
        ("+442012345", None, None, {"phone.invalid"}),
        ("+14155550123", None, None, set()),
        # country mismatch needs the phone, IP and declared countries all known
        ("+4915112345678", "US", "US", {"phone.country_mismatch"}),
        ("+4915112345678", "US", "DE", set()),
        ("+4915112345678", "DE", "US", set()),
        ("+4915112345678", None, "US", set()),
        ("+4915112345678", "US", "unknown", set()),
        ("+4915112345678", "US", None, set()),
        ("+80012345678", "US", "US", {"phone.premium_or_special"}),
    ],
    ids=[
        "no-phone",
        "words",
        "national-without-any-region",
        "too-short",
        "possible-but-invalid",
        "valid",
        "foreign-to-ip-and-declared",
        "matches-ip",
        "matches-declared",
        "declared-unknown",
        "ip-country-unknown",
        "no-ip",
        "non-geographic-has-no-country",
    ],
)
def test_phone_checks(raw, declared, ip_country, expected):
    assert codes_for(raw, declared=declared, ip_country=ip_country) == expected


def test_unparseable_number_says_why():
    signals = describe_phone("12345", declared_country=None, ip_country=None)
    assert signals["parsed"] is False and signals["valid"] is False
    assert "E.164" in signals["error"]
    assert describe_phone("hello", declared_country="GB", ip_country=None)["error"]


def test_possible_but_invalid_shows():
    signals = describe_phone("+442012345", declared_country=None, ip_country=None)
    assert (signals["parsed"], signals["valid"], signals["possible"]) == (True, False, True)
    assert signals["type"] == "unknown"
