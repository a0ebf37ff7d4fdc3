"""Homographs over HTTP: a look-alike of a big provider is named, a look-alike mailbox is the same mailbox."""

from __future__ import annotations

import pytest

from tests.api.test_assessments_api import codes, post


def test_homograph_of_gmail_gets_a_suggestion_and_its_own_reason(client, assess_headers):
    response = post(client, assess_headers, {"email": "john@gm\u0430il.com"})  # Cyrillic а
    body = response.get_json()
    assert {"email.typo_domain", "email.confusable_domain"} <= codes(response)
    assert body["signals"]["email"]["typo_suggestion"] == "gmail.com"
    assert body["verdict"] == "deny"


@pytest.mark.parametrize("look_alike", ["j\u043ehn@gmail.com", "\uff4a\uff4f\uff48\uff4e@gmail.com"], ids=["cyrillic-o", "fullwidth"])
def test_look_alike_local_part_is_the_same_mailbox(client, assess_headers, look_alike):
    first = post(client, assess_headers, {"email": "john@gmail.com"})
    assert "email.canonical_reuse" not in codes(first)
    again = post(client, assess_headers, {"email": look_alike})
    assert again.get_json()["signals"]["email"]["canonical"] == "john@gmail.com"
    assert "email.canonical_reuse" in codes(again)


@pytest.mark.parametrize("email", ["info.b\u00fccher@b\u00fccher.de", "taro@\u4f8b\u3048.jp", "m\u00fcller@gmx.de"], ids=["buecher", "japanese", "mueller"])
def test_honest_internationalised_addresses_get_nothing_of_it(client, assess_headers, email):
    response = post(client, assess_headers, {"email": email})
    assert not {"email.typo_domain", "email.confusable_domain", "email.canonical_reuse"} & codes(response)
    assert response.get_json()["signals"]["email"]["typo_suggestion"] is None
