"""The payment fingerprint: a history key like the phone; a card number is refused and never kept."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from verify.store.models import Assessment

CARD = "4111111111111111"  # the classic Visa test number: passes the Luhn check


def assess(client, headers, email: str, **fields) -> dict:
    response = client.post("/v1/assessments", json={"email": email, **fields}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def codes(assessment: dict) -> set[str]:
    return {reason["code"] for reason in assessment["reasons"]}


def stored_count(services) -> int:
    with services.database.transaction() as session:
        return session.execute(sa.select(sa.func.count()).select_from(Assessment)).scalar_one()


@pytest.mark.parametrize("number", [CARD, "4111 1111 1111 1111", "4111-1111-1111-1111", "378282246310005", "6011111111111117"])
def test_a_card_number_is_refused_and_neither_stored_nor_logged(client, assess_headers, services, caplog, number):
    caplog.set_level(logging.DEBUG)
    response = client.post("/v1/assessments", json={"email": "ana@gmail.com", "payment_fingerprint": number}, headers=assess_headers)
    assert response.status_code == 422
    problem = response.get_json()
    assert [error["field"] for error in problem["errors"]] == ["payment_fingerprint"]
    assert stored_count(services) == 0
    digits = number.replace(" ", "").replace("-", "")
    assert digits not in response.get_data(as_text=True)
    for record in caplog.records:
        assert digits not in record.getMessage() and digits not in repr(record.__dict__)


@pytest.mark.parametrize("token", ["fp_1Hx9aBc7QeL2", "4111111111111112", "123456789012"])
def test_a_processor_fingerprint_is_kept_as_given(client, assess_headers, token):
    # Digits that fail the Luhn check or are too short are no card number: an opaque token.
    body = assess(client, assess_headers, "ana@gmail.com", payment_fingerprint=f" {token} ")
    assert body["request"]["payment_fingerprint"] == token


def test_one_card_behind_several_mailboxes_fires_payment_reuse(client, assess_headers):
    card = "fp_farm_card_1"
    first = assess(client, assess_headers, "ana.ruiz@gmail.com", payment_fingerprint=card)
    again = assess(client, assess_headers, "a.n.a.ruiz@gmail.com", payment_fingerprint=card)  # the same mailbox
    partner = assess(client, assess_headers, "luis.ruiz@gmail.com", payment_fingerprint=card)  # a couple shares a card
    third = assess(client, assess_headers, "mo.diaz@gmail.com", payment_fingerprint=card)
    assert "payment.reuse" not in codes(first) | codes(again) | codes(partner)
    assert "payment.reuse" in codes(third)
    assert third["signals"]["history"]["counts"]["payment"]["long"] == 2


def test_search_related_and_erasure_by_the_payment_key(client, assess_headers, admin_headers):
    card = "fp_shared_2"
    ids = [assess(client, assess_headers, f"user{n}.x@gmail.com", payment_fingerprint=card)["id"] for n in range(3)]
    assess(client, assess_headers, "other@gmail.com", payment_fingerprint="fp_other")
    found = client.get("/v1/assessments", query_string={"payment_fingerprint": card}, headers=admin_headers).get_json()
    assert sorted(item["id"] for item in found["items"]) == sorted(ids)
    related = client.get(f"/v1/assessments/{ids[0]}/related", headers=admin_headers).get_json()
    group = next(group for group in related["groups"] if group["shared"] == "payment_fingerprint")
    assert group["count"] == 2 and group["value"] == card
    refused = client.get("/v1/assessments", query_string={"payment_fingerprint": CARD}, headers=admin_headers)
    assert refused.status_code == 422 and CARD not in refused.get_data(as_text=True)
    erased = client.post("/v1/erasure", json={"email": "user0.x@gmail.com"}, headers=admin_headers).get_json()
    assert erased == {"erased": 1}
    found = client.get("/v1/assessments", query_string={"payment_fingerprint": card}, headers=admin_headers).get_json()
    assert sorted(item["id"] for item in found["items"]) == sorted(ids[1:])
