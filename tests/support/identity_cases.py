"""ONE table of identities as people type them and the key each must become.

Every caller of the normalisers is tested from it: the engine (tests/engine/test_normalisers.py)
and the API's signups, lists, search and erasure (tests/api/test_identity_api.py). `expected`
None means the value is refused. Kinds:

- `email`: the canonical mailbox (what lists of kind email and erasure match);
- `email_address`: the one stored spelling of the address (what variants are told apart by);
- `email_domain`, `phone` (E.164), `phone_prefix`, `ip`, `country`, `asn`, `device`.
"""

from __future__ import annotations

from dataclasses import dataclass

NFD_JOSE = "jose\u0301"  # e + combining acute: NFC makes it é


@dataclass(frozen=True)
class Case:
    raw: str
    kind: str
    expected: str | None

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.raw.encode('unicode_escape').decode()}"


CASES: tuple[Case, ...] = (
    # -- email: the canonical mailbox --------------------------------------------------------
    Case("alice@example.com", "email", "alice@example.com"),
    Case(" Alice@Example.com\n", "email", "alice@example.com"),
    Case("\talice+news@EXAMPLE.com ", "email", "alice@example.com"),
    Case("\u200balice@example.com\ufeff", "email", "alice@example.com"),
    Case("\u2060alice@example.com\u200c\u200d", "email", "alice@example.com"),
    Case("J.Smith+promo@GoogleMail.com", "email", "jsmith@gmail.com"),
    Case("\u200b j.s.m.i.t.h@gmail.com \r\n", "email", "jsmith@gmail.com"),
    Case("user@bücher.de", "email", "user@xn--bcher-kva.de"),
    Case("user@xn--bcher-kva.de", "email", "user@xn--bcher-kva.de"),
    Case("USER@BÜCHER.DE", "email", "user@xn--bcher-kva.de"),
    Case(f"{NFD_JOSE}@example.com", "email", "josé@example.com"),
    Case("José@example.com", "email", "josé@example.com"),
    Case("not an address", "email", None),
    Case("two@@example.com", "email", None),
    # -- email: the stored spelling ----------------------------------------------------------
    Case(" Alice+news@Example.com\n", "email_address", "alice+news@example.com"),
    Case("\u200balice+news@example.com", "email_address", "alice+news@example.com"),
    Case("user@bücher.de", "email_address", "user@xn--bcher-kva.de"),
    Case("User@xn--bcher-kva.de", "email_address", "user@xn--bcher-kva.de"),
    Case(f"{NFD_JOSE}@example.com", "email_address", "josé@example.com"),
    Case("J.Smith@gmail.com", "email_address", "j.smith@gmail.com"),
    # -- domains -----------------------------------------------------------------------------
    Case("example.com", "email_domain", "example.com"),
    Case("Example.COM.", "email_domain", "example.com"),
    Case(" example.com \n", "email_domain", "example.com"),
    Case("\u200bexample.com", "email_domain", "example.com"),
    Case("bücher.de", "email_domain", "xn--bcher-kva.de"),
    Case("BÜCHER.de.", "email_domain", "xn--bcher-kva.de"),
    Case("xn--bcher-kva.de", "email_domain", "xn--bcher-kva.de"),
    Case("http://example.com", "email_domain", None),
    Case("*.example.com", "email_domain", None),
    Case(".", "email_domain", None),
    # -- phones: E.164 -----------------------------------------------------------------------
    Case("+447700900123", "phone", "+447700900123"),
    Case("+44 7700 900123", "phone", "+447700900123"),
    Case(" +44-7700-900-123\n", "phone", "+447700900123"),
    Case("\u200b+447700900123\ufeff", "phone", "+447700900123"),
    Case("+４４７７００９００１２３", "phone", "+447700900123"),  # fullwidth digits
    Case("＋44 7700 900123", "phone", "+447700900123"),  # fullwidth plus
    Case("+1 (415) 555-0123", "phone", "+14155550123"),
    Case("+1 415 555 0123\t", "phone", "+14155550123"),
    Case("+44 12", "phone", None),
    Case("call me", "phone", None),
    # -- phone prefixes (lists only) ---------------------------------------------------------
    Case("+44 7400", "phone_prefix", "447400"),
    Case("＋４４ ７４００", "phone_prefix", "447400"),
    Case("\u200b447400\n", "phone_prefix", "447400"),
    Case("0044 7400", "phone_prefix", None),
    # -- IP addresses ------------------------------------------------------------------------
    Case("81.2.69.160", "ip", "81.2.69.160"),
    Case(" 81.2.69.160\n", "ip", "81.2.69.160"),
    Case("::ffff:81.2.69.160", "ip", "81.2.69.160"),
    Case("::FFFF:5102:45a0", "ip", "81.2.69.160"),
    Case("\u200b::ffff:81.2.69.160", "ip", "81.2.69.160"),
    Case("2a02:DB8:0:0::1", "ip", "2a02:db8::1"),
    Case("2a02:db8::1", "ip", "2a02:db8::1"),
    Case("fe80::1%eth0", "ip", None),
    Case("fe80::1%1", "ip", None),
    Case("010.1.1.1", "ip", None),
    Case("81.2.69.0160", "ip", None),
    Case("81.2.69", "ip", None),
    # -- countries: assigned ISO 3166-1 alpha-2 ----------------------------------------------
    Case("GB", "country", "GB"),
    Case("gb", "country", "GB"),
    Case("de", "country", "DE"),  # the contract holds a declared country to two letters
    Case("ZZ", "country", None),
    Case("UK", "country", None),
    Case("EU", "country", None),
    Case("G1", "country", None),
    # -- AS numbers --------------------------------------------------------------------------
    Case("13335", "asn", "13335"),
    Case("AS13335", "asn", "13335"),
    Case(" as13335\n", "asn", "13335"),
    Case("AS0", "asn", None),
    # -- device ids --------------------------------------------------------------------------
    Case("dev-1", "device", "dev-1"),
    Case(" dev-1\n", "device", "dev-1"),
    Case("\u200bdev-1\ufeff", "device", "dev-1"),
    Case("Dev-1", "device", "Dev-1"),  # opaque: case kept
)


def cases(*kinds: str, valid: bool | None = None) -> list[Case]:
    """The cases of these kinds; only the accepted (valid=True) or refused (False) ones if asked."""
    return [
        case for case in CASES
        if case.kind in kinds and (valid is None or (case.expected is not None) == valid)
    ]


def spellings(case: Case) -> list[Case]:
    """Every accepted case of the same kind and key, this one first."""
    others = [c for c in CASES if c.kind == case.kind and c.expected == case.expected and c is not case]
    return [case, *others]


def partner(case: Case) -> Case:
    """Another spelling of the same key (the case itself when it has none)."""
    same = spellings(case)
    return same[1] if len(same) > 1 else case
