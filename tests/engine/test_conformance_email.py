"""Syntax against an independent corpus: Dominic Sayers' is_email tests (../shared/conformance/email).

Our policy for signups, by is_email category:
- ERR and RFC5322 (invalid, or valid only under the broad RFC 5322 grammar): rejected.
- VALID_CATEGORY and DNSWARN: accepted, except a domain with no dot (`test@io`): a TLD
  alone is no mailbox anyone signs up with.
- RFC5321 (quoted local parts, address literals), CFWS (comments, folding white space) and
  DEPREC (obsolete syntax): rejected. They are legal mail syntax, but real signups do not
  use them and they are a favourite way to slip past list matching.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from verify.engine.email import EmailInvalid, parse_email

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "email" / "isemail" / "tests.xml"
ACCEPTED = {"ISEMAIL_VALID_CATEGORY", "ISEMAIL_DNSWARN"}


def decode(text: str | None) -> str:
    """Control characters are stored as Unicode control pictures (U+2400 + code)."""
    return "".join(chr(ord(c) - 0x2400) if 0x2400 <= ord(c) <= 0x241F else c for c in text or "")


def cases() -> list:
    if not CORPUS.exists():
        return [pytest.param(None, None, marks=pytest.mark.skip(reason=f"conformance corpus absent: {CORPUS}"))]
    found = []
    for test in ElementTree.parse(CORPUS).getroot().iter("test"):
        address = decode(test.findtext("address"))
        category = test.findtext("category")
        expected = category in ACCEPTED and "." in address.rpartition("@")[2]
        found.append(pytest.param(address, expected, id=f"{test.get('id')}-{category}"))
    return found


@pytest.mark.parametrize("address, accepted", cases())
def test_isemail_corpus(address, accepted):
    try:
        parse_email(address)
        outcome = True
    except EmailInvalid:
        outcome = False
    assert outcome is accepted, address
