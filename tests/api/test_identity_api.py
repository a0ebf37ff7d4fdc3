"""One identity, one key: signups, lists, search and erasure over HTTP, on both databases,
all driven by the one table of cases (tests/support/identity_cases.py)."""

from __future__ import annotations

import pytest

from tests.support.identity_cases import Case, cases, partner, spellings
from verify.store.assessments import get_assessment

# A typed address per domain key, in another spelling than the table's domain cases.
ADDRESS_AT = {"example.com": " Someone@EXAMPLE.com\n", "xn--bcher-kva.de": "someone@BÜCHER.de"}
# A phone per country key: blocked-countries match the phone's country.
PHONE_IN = {"GB": "+44 7400 123456", "DE": "+49 30 901820"}


def assess(client, headers, **body) -> dict:
    body.setdefault("email", "person@example.com")
    response = client.post("/v1/assessments", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def stored(services, assessment_id: str):
    with services.database.transaction() as session:
        return get_assessment(assessment_id, session=session)


def codes(assessment: dict) -> set[str]:
    return {reason["code"] for reason in assessment["reasons"]}


def signup_of(case: Case) -> dict:
    """A signup that carries this spelling of the identity."""
    field = {"email": "email", "email_address": "email", "phone": "phone", "ip": "ip", "country": "country", "device": "device_id"}
    if case.kind == "email_domain":
        return {"email": ADDRESS_AT[case.expected]}
    if case.kind == "asn":
        raise ValueError("a signup carries no ASN of its own")
    return {field[case.kind]: case.raw}


# -- signups: the stored key is the expected key ---------------------------------------------

COLUMN = {"email": "email_canonical", "email_address": "email", "phone": "phone_e164", "ip": "ip", "country": "country", "device": "device_id"}


@pytest.mark.parametrize("case", cases(*COLUMN), ids=lambda case: case.id)
def test_a_signup_stores_the_expected_key(client, assess_headers, services, case):
    body = {"email": "person@example.com", **signup_of(case)}
    response = client.post("/v1/assessments", json=body, headers=assess_headers)
    if case.expected is None and case.kind in ("ip", "country"):
        assert response.status_code == 422, response.get_json()
        assert {error["field"] for error in response.get_json()["errors"]} == {COLUMN[case.kind]}
        return
    assert response.status_code == 201, response.get_json()
    row = stored(services, response.get_json()["id"])
    value = getattr(row, COLUMN[case.kind])
    if case.kind == "email_address" or case.expected is not None:
        assert value == case.expected
    else:  # an email or phone that is no identity is assessed, and has no key
        assert value is None
        assert {"email.invalid", "phone.invalid"} & codes(response.get_json())


def test_surrounding_white_space_and_zero_width_characters_do_not_make_an_address_invalid(client, assess_headers):
    for raw in (" a@example-mail.com", "a@example-mail.com\n", "\ta@example-mail.com", "\u200ba@example-mail.com\ufeff", "\u2060a@example-mail.com\u200c"):
        assessment = assess(client, assess_headers, email=raw)
        assert "email.invalid" not in codes(assessment), raw
        assert assessment["signals"]["email"]["canonical"] == "a@example-mail.com"


def test_an_address_in_unicode_and_in_punycode_is_one_mailbox(client, assess_headers):
    assess(client, assess_headers, email="user@bücher.de", occurred_at="2026-01-01T10:00:00Z")
    same = assess(client, assess_headers, email="User@xn--bcher-kva.de", occurred_at="2026-01-01T10:01:00Z")
    assert "email.canonical_reuse" not in codes(same)
    assert same["signals"]["history"]["counts"]["email_canonical"]["long"] == 1
    tagged = assess(client, assess_headers, email="user+x@bücher.de", occurred_at="2026-01-01T10:02:00Z")
    assert "email.canonical_reuse" in codes(tagged)  # another spelling of the mailbox does count


def test_a_mapped_ipv6_address_is_counted_as_its_ipv4_address(client, assess_headers):
    assess(client, assess_headers, email="a@example-mail.com", ip="81.2.69.160", occurred_at="2026-01-01T10:00:00Z")
    second = assess(client, assess_headers, email="b@example-mail.com", ip="::ffff:81.2.69.160", occurred_at="2026-01-01T10:01:00Z")
    assert second["signals"]["ip"]["address"] == "81.2.69.160"
    assert second["signals"]["history"]["counts"]["ip"]["long"] == 1


# -- lists: an entry made from one spelling matches a signup made from another ---------------

LIST_OF = {"email": "blocked-emails", "email_domain": "blocked-domains", "ip": "blocked-ips", "country": "blocked-countries", "device": "blocked-devices", "asn": "blocked-asns", "phone_prefix": "blocked-phone-prefixes"}


@pytest.mark.parametrize("case", cases(*LIST_OF), ids=lambda case: case.id)
def test_a_list_entry_matches_the_signups_it_was_written_for(client, admin_headers, assess_headers, case):
    name = LIST_OF[case.kind]
    response = client.post(f"/v1/lists/{name}/entries", json={"values": [case.raw]}, headers=admin_headers)
    if case.expected is None:
        assert response.status_code == 422, response.get_json()
        return
    assert response.status_code in (200, 201), response.get_json()
    listed = client.get(f"/v1/lists/{name}/entries", headers=admin_headers).get_json()["items"]
    assert case.expected in {item["value"] for item in listed}
    if case.kind == "asn":
        return  # a signup's ASN comes from GeoIP (tests/api/test_network_api.py)
    if case.kind == "country":
        body = {"phone": PHONE_IN[case.expected]}
    elif case.kind == "phone_prefix":
        body = {"phone": "+４４ 7400 123456"}
    else:
        body = signup_of(partner(case))
    assessment = assess(client, assess_headers, **body)
    assert name in {match["list"] for match in assessment["signals"]["lists"]}, assessment["signals"]["lists"]


# -- search: a filter takes what a list takes --------------------------------------------------

SEARCH_PARAM = {"email": "email", "email_domain": "email_domain", "ip": "ip", "phone": "phone", "device": "device_id"}


@pytest.mark.parametrize("case", cases(*SEARCH_PARAM), ids=lambda case: case.id)
def test_search_finds_every_spelling(client, admin_headers, assess_headers, case):
    if case.expected is None:
        response = client.get("/v1/assessments", query_string={SEARCH_PARAM[case.kind]: case.raw}, headers=admin_headers)
        assert response.status_code == 422, response.get_json()
        return
    made = assess(client, assess_headers, **signup_of(partner(case)))
    response = client.get("/v1/assessments", query_string={SEARCH_PARAM[case.kind]: case.raw}, headers=admin_headers)
    assert response.status_code == 200, response.get_json()
    assert [item["id"] for item in response.get_json()["items"]] == [made["id"]]


# -- erasure: every stored spelling of a person goes -------------------------------------------

ERASABLE = [case for case in cases("email", "phone", valid=True) if spellings(case)[0] is case and len(spellings(case)) > 1]


@pytest.mark.parametrize("case", {c.expected: c for c in ERASABLE}.values(), ids=lambda case: case.id)
def test_erasure_finds_every_stored_spelling(client, admin_headers, assess_headers, case):
    every = spellings(case)
    made = [assess(client, assess_headers, **signup_of(spelling))["id"] for spelling in every]
    field = "email" if case.kind == "email" else "phone"
    response = client.post("/v1/erasure", json={field: every[-1].raw}, headers=admin_headers)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["erased"] == len(made)
    for assessment_id in made:
        assert client.get(f"/v1/assessments/{assessment_id}", headers=admin_headers).status_code == 404


def test_erasure_finds_an_invalid_address_typed_with_other_white_space(client, admin_headers, assess_headers):
    made = assess(client, assess_headers, email=" not an address\n")
    assert client.post("/v1/erasure", json={"email": "not an address"}, headers=admin_headers).get_json()["erased"] == 1
    assert client.get(f"/v1/assessments/{made['id']}", headers=admin_headers).status_code == 404


# -- DNS: a listed domain costs no lookup ---------------------------------------------------------

@pytest.mark.parametrize("name", ["blocked-domains", "allowed-domains"])
def test_a_listed_domain_costs_no_dns_lookup(client, admin_headers, assess_headers, dns_server, name, database_url):
    domain = f"listed-{name}-{abs(hash(database_url)) % 10**8}.example"
    assert client.post(f"/v1/lists/{name}/entries", json={"values": [domain]}, headers=admin_headers).status_code in (200, 201)
    before = len(dns_server.resolver.queries)
    assessment = assess(client, assess_headers, email=f"someone@{domain}")
    asked = [qname for qname, _ in dns_server.resolver.queries[before:] if domain in qname]
    assert asked == []
    assert assessment["signals"]["email"]["mx"] == "skipped"
    unlisted = f"unlisted-{abs(hash(database_url)) % 10**8}.example"
    assess(client, assess_headers, email=f"someone@{unlisted}")
    assert any(unlisted in qname for qname, _ in dns_server.resolver.queries[before:])  # the counter does count
