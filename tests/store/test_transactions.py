"""The store owns every commit: a write that loses a unique-key race is rerun once, then reported
as 409; an idempotent signup that loses its race answers with the winner's assessment."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest
from sqlalchemy.exc import IntegrityError

from verify.errors import Conflict
from verify.store.assessments import assess_once, save_assessment
from verify.store.models import Assessment
from verify.store.transactions import committed


def collision() -> IntegrityError:
    return IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))


def test_a_collision_is_retried_once(services):
    attempts = []

    def work():
        attempts.append(1)
        if len(attempts) == 1:
            raise collision()
        return "done"

    with services.database.session() as session:
        assert committed(work, session=session, conflict="busy") == "done"
    assert len(attempts) == 2


def test_a_second_collision_is_a_conflict(services):
    def work():
        raise collision()

    with services.database.session() as session, pytest.raises(Conflict, match="busy"):
        committed(work, session=session, conflict="busy")


def assessment(assessment_id: str, *, key: str, digest: str) -> Assessment:
    now = datetime.now(timezone.utc)
    return Assessment(
        id=assessment_id, created_at=now, occurred_at=now, verdict="allow", score=0, policy_version=1,
        api_key_id=1, idempotency_key=key, request_hash=digest, email="race@example.com",
    )


def test_an_idempotent_write_that_loses_the_race_answers_with_the_winner(services):
    database = services.database
    made = []

    def make() -> Assessment:
        made.append(1)
        # The winner commits between the loser's look-up and its insert: the race, made certain.
        with database.session() as winner:
            save_assessment(assessment("winner", key="k", digest="d"), session=winner)
            winner.commit()
        return save_assessment(assessment("loser", key="k", digest="d"), session=loser)

    with database.session() as loser:
        row, created = assess_once(make, api_key_id=1, idempotency_key="k", request_hash="d", session=loser)
    assert (row.id, created, len(made)) == ("winner", False, 1)


def test_the_loser_of_a_race_with_another_body_is_a_conflict(services):
    database = services.database

    def make() -> Assessment:
        with database.session() as winner:
            save_assessment(assessment("winner", key="k", digest="other body"), session=winner)
            winner.commit()
        return save_assessment(assessment("loser", key="k", digest="d"), session=loser)

    with database.session() as loser, pytest.raises(Conflict, match="different body"):
        assess_once(make, api_key_id=1, idempotency_key="k", request_hash="d", session=loser)


def test_concurrent_retries_of_one_signup_store_one_assessment(app, services, assess_headers):
    start = threading.Barrier(4)
    answers: list[tuple[int, str]] = []

    def post() -> None:
        client = app.test_client()
        start.wait()
        response = client.post(
            "/v1/assessments", json={"email": "race@example-mail.com"}, headers={**assess_headers, "Idempotency-Key": "once"}
        )
        answers.append((response.status_code, response.get_json()["id"]))

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(status for status, _ in answers) == [200, 200, 200, 201]
    assert len({assessment_id for _, assessment_id in answers}) == 1
    with services.database.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM assessments").scalar() == 1
