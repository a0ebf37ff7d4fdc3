"""What an email address says on its own: syntax, typos, role names, randomness; and its checks."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email
from rapidfuzz.distance import OSA

from verify.engine.confusables import homograph_of
from verify.engine.models import Finding, Signals

VOWELS = set("aeiouy")
HEX_RUN = re.compile(r"^[0-9a-f]{16,}$")


@dataclass(frozen=True)
class ParsedEmail:
    address: str  # normalised: Unicode NFC, domain lower case
    local: str
    domain: str  # Unicode form, lower case
    ascii_domain: str  # IDNA form, what DNS and lists use


class EmailInvalid(ValueError):
    """The text is not a usable email address; the message is written for people."""


def parse_email(raw: str) -> ParsedEmail:
    """Check syntax only (no DNS) and normalise, internationalised addresses included."""
    try:
        # strict: also enforce the 64-octet local-part limit of RFC 5321.
        result = validate_email(raw, check_deliverability=False, strict=True)
    except EmailNotValidError as error:
        raise EmailInvalid(str(error)) from None
    return ParsedEmail(
        address=result.normalized,
        local=result.local_part,
        domain=result.domain.lower(),
        ascii_domain=(result.ascii_domain or result.domain).lower(),
    )


def mailbox_name(local: str) -> str:
    """The local part without a +tag, lower case: what role and randomness checks read."""
    return local.split("+", 1)[0].lower()


def is_role_account(local: str, role_names: frozenset[str]) -> bool:
    name = mailbox_name(local)
    return name in role_names or name.replace(".", "").replace("_", "-") in role_names


def typo_suggestion(domain: str, popular: Iterable[str], *, known: frozenset[str]) -> str | None:
    """The big provider this domain is probably a typo of, or None.

    Real domains a distance away from a big one (mail.com, ymail.com) are in `known`
    and never count as typos. Longer names tolerate two edits, short ones one. A homograph
    (`gmаil.com` with a Cyrillic а, in IDNA or Unicode form) is a typo of what it imitates,
    whatever the edit distance of its xn-- form.
    """
    if domain in known:
        return None
    imitated = homograph_of(domain, known, popular)
    if imitated:
        return imitated
    best: tuple[int, str] | None = None
    for target in popular:
        allowed = 2 if len(target) >= 10 else 1
        distance = OSA.distance(domain, target, score_cutoff=allowed)
        if 0 < distance <= allowed and (best is None or distance < best[0]):
            best = (distance, target)
    return best[1] if best else None


def looks_random(local: str) -> bool:
    """A machine-made local part: long consonant runs, few vowels, letters and digits interleaved, or hex."""
    name = re.sub(r"[._\-]", "", mailbox_name(local))
    if len(name) < 8 or not name.isascii():
        return False
    if HEX_RUN.match(name) and any(c.isdigit() for c in name) and any(c.isalpha() for c in name):
        return True
    letters = [c for c in name if c.isalpha()]
    switches = sum(1 for a, b in zip(name, name[1:]) if a.isdigit() != b.isdigit())
    if switches >= 4:
        return True
    if len(letters) >= 10 and sum(c in VOWELS for c in letters) / len(letters) < 0.15:
        return True
    run = longest = 0
    for c in name:
        run = run + 1 if c.isalpha() and c not in VOWELS else 0
        longest = max(longest, run)
    return longest >= 6


# -- checks over signals["email"] -------------------------------------------------------

def check_invalid(signals: Signals, _policy: object) -> Iterator[Finding]:
    email = signals["email"]
    if not email.get("valid"):
        yield Finding("email.invalid", email.get("error") or "not a valid email address")


def check_typo_domain(signals: Signals, _policy: object) -> Iterator[Finding]:
    email = signals["email"]
    if email.get("valid") and email.get("typo_suggestion"):
        yield Finding("email.typo_domain", f"{email['domain']} looks like a typo; did you mean {email['typo_suggestion']}?")


def check_confusable_domain(signals: Signals, _policy: object) -> Iterator[Finding]:
    # Read from the signals alone: the suggestion is what the domain imitates when the
    # domain's look-alike characters fold onto it.
    email = signals["email"]
    suggestion = email.get("typo_suggestion")
    if email.get("valid") and suggestion and homograph_of(email["domain"], (suggestion,)):
        yield Finding("email.confusable_domain", f"{email['domain']} imitates {suggestion} with look-alike characters")


def check_disposable(signals: Signals, _policy: object) -> Iterator[Finding]:
    # A mistyped big provider often sits on disposable lists too: the typo explains it,
    # and the person should get the suggestion and a challenge, not a deny.
    email = signals["email"]
    if email.get("valid") and email.get("disposable") and not email.get("typo_suggestion"):
        yield Finding("email.disposable", f"{email['domain']} is a disposable email provider")


def check_relay(signals: Signals, _policy: object) -> Iterator[Finding]:
    email = signals["email"]
    if email.get("valid") and email.get("relay"):
        yield Finding("email.relay", f"{email['domain']} is a privacy relay or forwarding alias")


def check_undeliverable(signals: Signals, _policy: object) -> Iterator[Finding]:
    email = signals["email"]
    mx = email.get("mx")
    if email.get("valid") and mx in ("null_mx", "no_mail_host") and not email.get("typo_suggestion"):
        why = "publishes a null MX (RFC 7505)" if mx == "null_mx" else "has neither MX nor A records"
        yield Finding("email.undeliverable", f"{email['domain']} {why}")


def check_role_account(signals: Signals, _policy: object) -> Iterator[Finding]:
    email = signals["email"]
    if email.get("valid") and email.get("role_account"):
        yield Finding("email.role_account", f"{email['local']} is a role mailbox, not a person")


def check_random_local_part(signals: Signals, _policy: object) -> Iterator[Finding]:
    # Relays make up random aliases themselves: the randomness says nothing of the person.
    email = signals["email"]
    if email.get("valid") and email.get("random_local_part") and not email.get("relay"):
        yield Finding("email.random_local_part", f"{email['local']} looks machine-generated")


CHECKS = (
    check_invalid,
    check_typo_domain,
    check_confusable_domain,
    check_disposable,
    check_relay,
    check_undeliverable,
    check_role_account,
    check_random_local_part,
)
