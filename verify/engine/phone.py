"""What a phone number says on its own (libphonenumber's number ranges), and its checks.

libphonenumber knows the numbering plans, not the subscribers: a number ported from a
mobile network to a VoIP provider keeps its mobile range, and non-geographic VoIP numbers
look like any other. The `type_source` signal says so, so that nobody reads more into a
`mobile` type than the ranges support.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import phonenumbers
from phonenumbers import PhoneNumberType, carrier

from verify.engine.identity import parse_phone
from verify.engine.models import Finding, Signals
from verify.engine.network import is_country

TYPE_SOURCE = "number ranges"

TYPE_NAMES: dict[int, str] = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "fixed_line",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.PERSONAL_NUMBER: "personal_number",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
    PhoneNumberType.UNKNOWN: "unknown",
}

# Numbers a person does not sign up with: the caller pays extra, or they forward to anyone.
SPECIAL_TYPES = frozenset({"premium_rate", "shared_cost", "toll_free", "pager", "uan", "personal_number"})

# libphonenumber's region for non-geographic numbers (+800, +808, +870, +881-883, +979).
NON_GEOGRAPHIC = "001"


def describe_phone(raw: str | None, *, declared_country: str | None, ip_country: Any) -> dict[str, Any]:
    """Parse a number (E.164, or national form in the declared country, else the IP's) into signals."""
    if raw is None:
        return {"provided": False}
    region_hint, hint_source = None, None
    if is_country(declared_country):
        region_hint, hint_source = declared_country, "declared_country"
    elif is_country(ip_country):
        region_hint, hint_source = ip_country, "ip_country"
    signals: dict[str, Any] = {
        "provided": True,
        "declared_country": declared_country,
        "region_hint": region_hint,
        "region_hint_source": hint_source,
        "type_source": TYPE_SOURCE,
    }
    try:
        number = parse_phone(raw, region=region_hint)  # the one parser phone keys are made by
    except phonenumbers.NumberParseException as error:
        message = getattr(error, "_msg", None) or str(error)
        if error.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE and region_hint is None:
            message = "not in E.164 form (+ and country code) and no country was declared or found for the IP"
        return {**signals, "parsed": False, "valid": False, "possible": False, "type": "unknown", "error": message}
    valid = phonenumbers.is_valid_number(number)
    region = phonenumbers.region_code_for_number(number) if valid else None
    name = carrier.name_for_number(number, "en") if valid else ""
    return {
        **signals,
        "parsed": True,
        "e164": phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        "country_code": number.country_code,
        "valid": valid,
        "possible": phonenumbers.is_possible_number(number),
        "type": TYPE_NAMES.get(phonenumbers.number_type(number), "unknown"),
        "country": region if region and region != NON_GEOGRAPHIC else None,
        "non_geographic": region == NON_GEOGRAPHIC,
        "carrier": name or None,
    }


# -- checks over signals["phone"] ----------------------------------------------------------

def _phone(signals: Signals) -> dict[str, Any]:
    phone = signals.get("phone") or {}
    return phone if phone.get("provided") else {}


def check_invalid(signals: Signals, _policy: object) -> Iterator[Finding]:
    phone = _phone(signals)
    if not phone or phone.get("valid"):
        return
    if not phone.get("parsed"):
        yield Finding("phone.invalid", f"the phone number cannot be parsed: {phone.get('error') or 'unknown error'}")
    elif phone.get("possible"):
        yield Finding("phone.invalid", f"{phone['e164']} has a plausible length but is in no allocated number range")
    else:
        yield Finding("phone.invalid", f"{phone['e164']} is not a possible number (wrong length for its country code)")


def check_voip(signals: Signals, _policy: object) -> Iterator[Finding]:
    phone = _phone(signals)
    if phone.get("valid") and phone.get("type") == "voip":
        yield Finding("phone.voip", f"{phone['e164']} is in a VoIP number range")


def check_premium_or_special(signals: Signals, _policy: object) -> Iterator[Finding]:
    phone = _phone(signals)
    kind = phone.get("type")
    if phone.get("valid") and kind in SPECIAL_TYPES:
        yield Finding("phone.premium_or_special", f"{phone['e164']} is a {kind.replace('_', '-')} number")


def check_country_mismatch(signals: Signals, _policy: object) -> Iterator[Finding]:
    # Both other countries must be known: a traveller's home number differs from the IP's
    # country, an expat's from the declared one; only a number foreign to both stands out.
    phone = _phone(signals)
    ip = signals.get("ip") or {}
    country, ip_country, declared = phone.get("country"), ip.get("country"), phone.get("declared_country")
    if is_country(country) and is_country(ip_country) and is_country(declared) and country not in (ip_country, declared):
        yield Finding(
            "phone.country_mismatch",
            f"the phone number is from {country}, the IP is in {ip_country} and the user declared {declared}",
        )


CHECKS = (
    check_invalid,
    check_voip,
    check_premium_or_special,
    check_country_mismatch,
)
