"""Look-alike characters: homograph domains of the big providers, and local parts folded to ASCII."""

from __future__ import annotations

import pytest

from verify.engine.confusables import ascii_skeleton, homograph_of
from verify.engine.decide import judge
from verify.engine.email import typo_suggestion
from verify.engine.policy import parse_policy
from verify.engine.reasons import default_points
from verify.intel.providers import Providers
from verify.settings import Settings

PROVIDERS = Providers.load(Settings().data_dir)
POLICY = parse_policy({"thresholds": {"challenge": 40, "deny": 80}}, version=1, base_points=default_points())


@pytest.mark.parametrize(
    "text, skeleton",
    [
        ("j\u043ehn", "john"),  # Cyrillic о
        ("\uff4a\uff4f\uff48\uff4e", "john"),  # fullwidth
        ("g\u0440\u0430il", "gpail"),  # Cyrillic р and а: each to its Latin twin
        ("\u0261mail", "gmail"),  # Latin script small g
        ("p\u0430ypal", "paypal"),
        ("JOHN", "JOHN"),  # case is the caller's business
        ("grnail", "grnail"),  # ASCII stays as typed: rn/m, 1/l are typos, not homographs
        ("m\u00fcller", "m\u00fcller"),  # a real letter with no ASCII twin
        ("\u4f8b\u3048", "\u4f8b\u3048"),
        ("\u0436\u0443\u043a", "\u0436y\u043a"),  # only у has a Latin twin; ж and к keep theirs
    ],
    ids=["cyrillic-o", "fullwidth", "two-cyrillic", "script-g", "paypal", "upper", "ascii-rn", "umlaut", "cjk", "cyrillic-word"],
)
def test_ascii_skeleton(text, skeleton):
    assert ascii_skeleton(text) == skeleton


@pytest.mark.parametrize(
    "domain, target",
    [
        ("xn--gmil-63d.com", "gmail.com"),  # gmаil.com, Cyrillic а, as IDNA
        ("gm\u0430il.com", "gmail.com"),
        ("\u0261mail.com", "gmail.com"),
        ("\u043eutl\u043e\u043ek.com", "outlook.com"),
        ("y\u0430h\u043e\u043e.com", "yahoo.com"),
        ("pm.m\u0435", "pm.me"),  # a provider domain from data/email_providers.json
        ("gmail.com", None),
        ("grnail.com", None),
        ("xn--bcher-kva.de", None),  # bücher.de
        ("xn--r8jz45g.jp", None),  # 例え.jp
        ("gm\u00e4il.com", None),  # ä is a letter of its own, not a look-alike: left to the typo check
        ("xn--broken--.com", None),
    ],
    ids=["idna", "unicode", "script-g", "outlook", "yahoo", "provider-rule-domain", "itself", "ascii-typo",
         "buecher", "japanese", "umlaut", "undecodable"],
)
def test_homograph_of(domain, target):
    assert homograph_of(domain, PROVIDERS.popular, PROVIDERS.real_domains) == target


@pytest.mark.parametrize(
    "domain, suggestion",
    [
        ("xn--gmil-63d.com", "gmail.com"),
        ("gm\u0430il.com", "gmail.com"),
        ("xn--bcher-kva.de", None),
        ("xn--r8jz45g.jp", None),
        ("gmx.de", None),
        ("gmial.com", "gmail.com"),
    ],
    ids=["idna-homograph", "unicode-homograph", "buecher", "japanese", "provider", "plain-typo"],
)
def test_typo_suggestion_names_the_provider_a_homograph_imitates(domain, suggestion):
    assert typo_suggestion(domain, PROVIDERS.popular, known=PROVIDERS.real_domains) == suggestion


def signals(domain, suggestion):
    email = {
        "valid": True, "local": "john", "domain": domain, "free": False, "relay": False, "role_account": False,
        "random_local_part": False, "typo_suggestion": suggestion, "mx": "ok", "disposable": False,
    }
    return {"email": email, "phone": {}, "ip": {}, "history": {}, "lists": []}


@pytest.mark.parametrize(
    "domain, suggestion, codes, verdict",
    [
        ("xn--gmil-63d.com", "gmail.com", {"email.typo_domain", "email.confusable_domain"}, "deny"),
        ("gmial.com", "gmail.com", {"email.typo_domain"}, "challenge"),
        ("xn--bcher-kva.de", None, set(), "allow"),
    ],
    ids=["homograph", "typo", "honest-idn"],
)
def test_confusable_domain_check(domain, suggestion, codes, verdict):
    decision = judge(signals(domain, suggestion), POLICY)
    assert {reason.code for reason in decision.reasons} == codes
    assert decision.verdict == verdict


@pytest.mark.parametrize(
    "local, domain, canonical",
    [
        ("j\u043ehn", "gmail.com", "john@gmail.com"),
        ("\uff4a\uff4f\uff48\uff4e", "gmail.com", "john@gmail.com"),
        ("J\u043eh.n+x", "googlemail.com", "john@gmail.com"),
        ("j\u043ehn", "outlook.com", "john@outlook.com"),
        ("m\u00fcller", "gmx.de", "m\u00fcller@gmx.de"),
        ("j\u043ehn", "example.org", "j\u043ehn@example.org"),  # elsewhere a Unicode mailbox may be real and distinct
    ],
    ids=["cyrillic-o", "fullwidth", "with-dots-and-tag", "outlook", "umlaut-at-gmx", "generic-domain"],
)
def test_canonical_mailbox_folds_look_alikes_at_known_providers(local, domain, canonical):
    assert PROVIDERS.canonical_email(local, domain) == canonical
