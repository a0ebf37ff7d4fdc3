"""Retention (`verify purge --older-than`) and erasure (POST /v1/erasure), both audited without the data."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from sqlmodel import select

from verify.cli import main
from verify.store.models import Assessment, AuditEvent, Feedback


def assess(client, headers, **body) -> str:
    response = client.post("/v1/assessments", json=body, headers=headers)
    assert response.status_code == 201
    return response.get_json()["id"]


def add_feedback(services, assessment_id: str) -> None:
    with services.database.transaction() as session:
        session.add(Feedback(assessment_id=assessment_id, label="fraud", source="review", created_at=datetime.now(timezone.utc)))


def stored_ids(services) -> set[str]:
    with services.database.transaction() as session:
        return set(session.exec(select(Assessment.id)))


def feedback_ids(services) -> set[str]:
    with services.database.transaction() as session:
        return set(session.exec(select(Feedback.assessment_id)))


def audit(services, action: str) -> list[AuditEvent]:
    with services.database.transaction() as session:
        return list(session.exec(select(AuditEvent).where(AuditEvent.action == action)))


def erase(client, headers, **body):
    return client.post("/v1/erasure", json=body, headers=headers)


def test_erasure_by_email_matches_every_alias_of_the_mailbox(client, assess_headers, admin_headers, services):
    mine = [
        assess(client, assess_headers, email=address)
        for address in ("Jane.Doe+promo@gmail.com", "janedoe@gmail.com", "JANE.DOE@googlemail.com")
    ]
    other = assess(client, assess_headers, email="jane.doe@example-mail.com")
    add_feedback(services, mine[0])
    add_feedback(services, other)

    response = erase(client, admin_headers, email="j.a.n.e.d.o.e+gdpr@gmail.com")
    assert response.status_code == 200 and response.get_json() == {"erased": 3}
    assert stored_ids(services) & set(mine) == set()
    assert other in stored_ids(services) and feedback_ids(services) == {other}
    events = audit(services, "assessments.erase")
    assert [(e.actor, e.target, e.detail) for e in events] == [("alice-admin", "email", {"assessments": 3, "feedback": 1})]
    assert "jane" not in str(events[0].detail).lower()
    # Erasing again finds nothing and says so.
    assert erase(client, admin_headers, email="janedoe@gmail.com").get_json() == {"erased": 0}


def test_erasure_of_an_invalid_address_matches_it_as_typed(client, assess_headers, admin_headers, services):
    kept = assess(client, assess_headers, email="not an address")
    gone = assess(client, assess_headers, email="not-an-address")
    assert erase(client, admin_headers, email="not-an-address").get_json() == {"erased": 1}
    assert gone not in stored_ids(services) and kept in stored_ids(services)


def test_erasure_by_phone_matches_on_e164(client, assess_headers, admin_headers, services):
    typed = assess(client, assess_headers, email="p1@example-mail.com", phone="+14155550123")
    national = assess(client, assess_headers, email="p2@example-mail.com", phone="(415) 555-0123", country="US")
    with services.database.transaction() as session:  # what the phone check stores for a parsed number
        row = session.exec(select(Assessment).where(Assessment.id == national)).one()
        row.phone_e164 = "+14155550123"
        session.add(row)
    stranger = assess(client, assess_headers, email="p3@example-mail.com", phone="+14155550199")
    assert erase(client, admin_headers, phone="+1 (415) 555-0123").get_json() == {"erased": 2}
    assert stored_ids(services) & {typed, national, stranger} == {stranger}


def test_erasure_of_an_unparsable_phone_matches_it_as_typed(client, assess_headers, admin_headers, services):
    gone = assess(client, assess_headers, email="p4@example-mail.com", phone="call me maybe")
    assert erase(client, admin_headers, phone="call me maybe").get_json() == {"erased": 1}
    assert gone not in stored_ids(services)


def test_erasure_by_external_id(client, assess_headers, admin_headers, services):
    gone = [assess(client, assess_headers, email=f"e{i}@example-mail.com", external_id="acct-9") for i in range(2)]
    kept = assess(client, assess_headers, email="e9@example-mail.com", external_id="acct-10")
    assert erase(client, admin_headers, external_id="acct-9").get_json() == {"erased": 2}
    assert stored_ids(services) & {*gone, kept} == {kept}


@pytest.mark.parametrize(
    "body",
    [{}, {"email": "a@b.co", "phone": "+14155550123"}, {"email": None}, {"email": ""}, {"name": "x"}, {"external_id": 7}],
    ids=["none", "two", "null", "empty", "unknown", "not-string"],
)
def test_erasure_needs_exactly_one_identifier(client, admin_headers, body):
    response = erase(client, admin_headers, **body)
    assert response.status_code == 422 and response.get_json()["errors"]


def test_erasure_needs_the_admin_scope(client, assess_headers):
    assert erase(client, assess_headers, email="a@b.co").status_code == 403


# -- purge ------------------------------------------------------------------------------

def run_purge(database_url: str, *args: str):
    env = {"VERIFY_DATABASE_URL": database_url, "VERIFY_MX_CHECK": "off"}
    return CliRunner().invoke(main, ["purge", *args], env=env, catch_exceptions=False)


def test_purge_deletes_what_is_older_than_the_age_with_its_feedback(client, assess_headers, services, database_url):
    now = datetime.now(timezone.utc)
    at = {age: (now - age).isoformat() for age in (timedelta(days=120), timedelta(days=91), timedelta(days=89), timedelta(hours=2))}
    ids = {age: assess(client, assess_headers, email=f"old{n}@example-mail.com", occurred_at=moment) for n, (age, moment) in enumerate(at.items())}
    add_feedback(services, ids[timedelta(days=120)])
    add_feedback(services, ids[timedelta(days=89)])

    result = run_purge(database_url, "--older-than", "90d")
    assert result.exit_code == 0 and result.stdout.startswith("purged 2 assessments (1 feedback)")
    assert stored_ids(services) == {ids[timedelta(days=89)], ids[timedelta(hours=2)]}
    assert feedback_ids(services) == {ids[timedelta(days=89)]}
    [event] = audit(services, "assessments.purge")
    assert (event.actor, event.detail["assessments"], event.detail["feedback"]) == ("cli", 2, 1)

    assert run_purge(database_url, "--older-than", "1h").stdout.startswith("purged 2 assessments")
    assert stored_ids(services) == set()


def test_purge_works_in_batches(client, assess_headers, services, database_url, monkeypatch):
    monkeypatch.setattr("verify.cli.PURGE_BATCH", 2)
    old = (datetime.now(timezone.utc) - timedelta(hours=50)).isoformat()
    for n in range(5):
        assess(client, assess_headers, email=f"batch{n}@example-mail.com", occurred_at=old)
    assert run_purge(database_url, "--older-than", "48h").stdout.startswith("purged 5 assessments")
    assert stored_ids(services) == set()


@pytest.mark.parametrize("age", ["90", "90m", "0d", "-1d", "d", "1.5d"])
def test_purge_refuses_an_age_it_cannot_read(database_url, age):
    result = CliRunner().invoke(main, ["purge", "--older-than", age], env={"VERIFY_DATABASE_URL": database_url})
    assert result.exit_code == 2 and "90d" in result.output
