"""History over HTTP on both databases: each reason, earlier-only counting, caps, reputation from feedback."""

from __future__ import annotations

import pytest

from tests.support.history_traffic import add_mail_domains, codes, person, post, pretend_geoip
from verify.store.policy import add_policy_version, current_policy


@pytest.fixture(autouse=True)
def mail_domains(dns_server):
    add_mail_domains(dns_server)


def test_gmail_dot_and_plus_variants_are_one_mailbox(client, assess_headers):
    first = post(client, assess_headers, "john.smith@gmail.com", 0)
    assert "email.canonical_reuse" not in codes(first)
    again = post(client, assess_headers, "j.o.h.n.smith+promo@googlemail.com", 30)
    assert "email.canonical_reuse" in codes(again)
    assert again["signals"]["history"]["counts"]["email_variants"]["long"] == 1
    assert again["signals"]["email"]["canonical"] == "johnsmith@gmail.com"


def test_the_same_spelling_again_is_not_a_variant(client, assess_headers):
    post(client, assess_headers, "Kate.Moss@gmail.com", 0)
    retry = post(client, assess_headers, "kate.moss@gmail.com", 5)
    assert "email.canonical_reuse" not in codes(retry)
    assert retry["signals"]["history"]["counts"]["email_canonical"]["short"] == 1


def test_domain_burst_from_a_new_domain(client, assess_headers):
    names = ["ann.lee", "bob.ray", "cat.kim", "dan.fox", "eve.low", "fay.orr", "gus.hay", "hal.ito", "ian.poe", "jon.yee", "kim.sun"]
    results = [post(client, assess_headers, f"{name}@northwind.example", minute * 3) for minute, name in enumerate(names)]
    assert all("email.domain_burst" not in codes(r) for r in results[:10])
    assert "email.domain_burst" in codes(results[10])
    assert "email.pattern_burst" not in codes(results[10])  # first.last is how staff are named
    assert results[10]["verdict"] == "allow" or results[10]["verdict"] == "challenge"


def test_pattern_burst_of_generated_local_parts(client, assess_headers):
    names = ["james.wilson8812", "mary.brown1907", "liam.clark5521", "emma.scott3310", "noah.young7265", "olga.adams4419"]
    results = [post(client, assess_headers, f"{name}@fresh-deals.shop", minute * 90) for minute, name in enumerate(names)]
    assert all("email.pattern_burst" not in codes(r) for r in results[:5])
    assert "email.pattern_burst" in codes(results[5])
    assert results[5]["signals"]["history"]["keys"]["local_template"] == "a.a9999"


def test_phone_reuse_across_mailboxes(client, assess_headers):
    post(client, assess_headers, "tom@example-mail.com", 0, phone="+14155550123")
    same_person = post(client, assess_headers, "tom@example-mail.com", 10, phone="+14155550123")
    other = post(client, assess_headers, "tina@example-mail.com", 20, phone="+1 415 555 0123")
    assert "phone.reuse" not in codes(same_person)
    assert "phone.reuse" in codes(other)


def test_phone_range_burst_of_sequential_numbers(client, assess_headers):
    results = [
        post(client, assess_headers, f"{person(n)}@example-mail.com", n * 5, phone=f"+1415555{n:04d}") for n in range(101, 105)
    ]
    assert all("phone.range_burst" not in codes(r) for r in results[:3])
    assert "phone.range_burst" in codes(results[3])
    assert results[3]["signals"]["history"]["keys"]["phone_block"] == "+14155550"


def test_ip_velocity(client, assess_headers):
    results = [post(client, assess_headers, f"{person(n)}@example-mail.com", n, ip="81.2.70.50") for n in range(11)]
    assert "ip.velocity" not in codes(results[9])
    assert "ip.velocity" in codes(results[10])


def test_network_velocity(client, assess_headers):
    results = [post(client, assess_headers, f"{person(n)}@example-mail.com", n, ip=f"198.51.100.{n + 1}") for n in range(21)]
    assert "ip.network_velocity" not in codes(results[19])
    assert "ip.network_velocity" in codes(results[20])
    assert results[20]["signals"]["history"]["counts"]["ip_network"]["short"] == 20


def test_asn_velocity(client, assess_headers, services):
    pretend_geoip(services, {"172.56.0.0/16": {"asn": 64512, "is_hosting_provider": False}})
    results = [post(client, assess_headers, f"{person(n)}@gmail.com", n, ip=f"172.56.{n % 60}.{1 + n // 60}") for n in range(51)]
    assert "ip.asn_velocity" not in codes(results[49])
    assert "ip.asn_velocity" in codes(results[50])
    assert results[50]["verdict"] == "allow", results[50]["reasons"]  # 20 points alone: volume on a clean network


def test_device_reuse_by_other_mailboxes(client, assess_headers):
    first = post(client, assess_headers, "d1@example-mail.com", 0, device_id="dev-abc")
    retry = post(client, assess_headers, "d1@example-mail.com", 1, device_id="dev-abc")
    second = post(client, assess_headers, "d2@example-mail.com", 2, device_id="dev-abc")
    third = post(client, assess_headers, "d3@example-mail.com", 3, device_id="dev-abc")
    fourth = post(client, assess_headers, "d4@example-mail.com", 4, device_id="dev-abc")
    assert not {"device.reuse"} & (codes(first) | codes(retry) | codes(second) | codes(third))
    assert "device.reuse" in codes(fourth)


def test_only_earlier_signups_count(client, assess_headers):
    later = post(client, assess_headers, "x1@example-mail.com", 60, device_id="dev-t", ip="192.0.2.44")
    same_moment = post(client, assess_headers, "x2@example-mail.com", 60, device_id="dev-t", ip="192.0.2.44")
    backfill = post(client, assess_headers, "x3@example-mail.com", 30, device_id="dev-t", ip="192.0.2.44")
    assert later["signals"]["history"]["counts"]["ip"] == {"short": 0, "medium": 0, "long": 0}
    assert same_moment["signals"]["history"]["counts"]["ip"]["short"] == 0
    assert backfill["signals"]["history"]["counts"]["ip"] == {"short": 0, "medium": 0, "long": 0}
    after = post(client, assess_headers, "x4@example-mail.com", 61, device_id="dev-t", ip="192.0.2.44")
    assert after["signals"]["history"]["counts"]["ip"]["short"] == 3
    assert after["signals"]["history"]["counts"]["device"]["long"] == 3


def test_counts_stop_at_the_cap_and_say_so(client, assess_headers, services):
    with services.database.transaction() as session:
        body = current_policy(session=session).body
        add_policy_version({**body, "limits": {**body["limits"], "count_cap": 10}}, actor="test", session=session)
    results = [post(client, assess_headers, f"{person(n)}@example-mail.com", n, ip="192.0.2.99") for n in range(13)]
    history = results[12]["signals"]["history"]
    assert history["cap"] == 10 and history["counts"]["ip"]["short"] == 10
    assert "ip.short" in history["capped"]
    assert "10+" in next(r["detail"] for r in results[12]["reasons"] if r["code"] == "ip.velocity")


def test_history_windows_come_from_the_policy(client, assess_headers, services):
    with services.database.transaction() as session:
        body = current_policy(session=session).body
        add_policy_version({**body, "limits": {**body["limits"], "window_short_seconds": 600}}, actor="test", session=session)
    post(client, assess_headers, "w1@example-mail.com", 0, ip="192.0.2.77")
    later = post(client, assess_headers, "w2@example-mail.com", 15, ip="192.0.2.77")
    assert later["signals"]["history"]["windows"]["short"] == 600
    assert later["signals"]["history"]["counts"]["ip"]["short"] == 0
    assert later["signals"]["history"]["counts"]["ip"]["medium"] == 1


# -- reputation from feedback --------------------------------------------------------------

def feedback(client, headers, assessment_id: str, label: str = "fraud", source: str = "review"):
    return client.post(f"/v1/assessments/{assessment_id}/feedback", json={"label": label, "source": source}, headers=headers)


@pytest.mark.parametrize(
    "fields, code",
    [
        ({"ip": "81.2.70.5"}, "ip.network_reputation"),
        ({"device_id": "dev-bad"}, "device.reputation"),
        ({}, "email.domain_reputation"),
    ],
    ids=["network", "device", "domain"],
)
def test_fraud_feedback_builds_reputation(client, assess_headers, fields, code):
    bad = post(client, assess_headers, "zed@tinyco.example", **fields)
    assert feedback(client, assess_headers, bad["id"]).status_code == 201
    following = post(client, assess_headers, "yan@tinyco.example", **{k: v.replace(".5", ".6") for k, v in fields.items()})
    assert code in codes(following)
    assert following["signals"]["history"]["reputation"]


def test_legitimate_feedback_clears_a_record(client, assess_headers):
    first = post(client, assess_headers, "q1@tinyco.example", ip="81.2.70.8")
    feedback(client, assess_headers, first["id"], "fraud")
    second = post(client, assess_headers, "q2@tinyco.example", ip="81.2.70.9")
    assert "ip.network_reputation" in codes(second)
    for row in (first, second):
        feedback(client, assess_headers, row["id"], "legitimate", "challenge")
    third = post(client, assess_headers, "q3@tinyco.example", ip="81.2.70.10")
    assert "ip.network_reputation" not in codes(third)


def test_asn_reputation(client, assess_headers, services):
    pretend_geoip(services, {"172.56.0.0/16": {"asn": 64999}})
    bad = post(client, assess_headers, "r1@example-mail.com", ip="172.56.1.1")
    feedback(client, assess_headers, bad["id"])
    assert "ip.asn_reputation" in codes(post(client, assess_headers, "r2@example-mail.com", ip="172.56.2.2"))


def test_feedback_given_after_a_signup_does_not_change_its_replay(client, assess_headers):
    bad = post(client, assess_headers, "s1@tinyco.example", ip="81.2.70.20")
    feedback(client, assess_headers, bad["id"])
    # A backfilled signup that happened before the feedback was given does not see it.
    backfill = post(client, assess_headers, "s2@tinyco.example", 28_000, ip="81.2.70.21")
    assert "ip.network_reputation" not in codes(backfill)
