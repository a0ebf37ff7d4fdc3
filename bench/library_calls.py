"""The library calls an assessment makes, and nothing around them: email-validator, the
phonenumbers calls the engine makes for one number, and a lookup in each GeoIP database.
bench/engine_bench.py times the engine against them; bench/floor_app.py serves them."""

from __future__ import annotations

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from phonenumbers import carrier


def library_calls(readers: list, *, email: str, phone: str, country: str | None, ip: str) -> tuple[str | None, str]:
    """The normalised mailbox (None if invalid) and the number in E.164 form."""
    try:
        mailbox = validate_email(email, check_deliverability=False, strict=True).normalized
    except EmailNotValidError:
        mailbox = None
    number = phonenumbers.parse(phone, country)
    if phonenumbers.is_valid_number(number):
        phonenumbers.region_code_for_number(number)
        carrier.name_for_number(number, "en")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    phonenumbers.is_possible_number(number)
    phonenumbers.number_type(number)
    for reader in readers:
        reader.get(ip)
    return mailbox, e164
