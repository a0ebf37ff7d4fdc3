"""The store owns every commit: a write that loses a unique-key race is rerun once, then reported
as 409; an idempotent signup that loses its race answers with the winner's assessment."""

from __future__ import annotations

import threading
from dataclasses import asdict

import pytest
from sqlalchemy.exc import IntegrityError

from verify.errors import Conflict
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


def winner_commits_first(services, monkeypatch, *, digest: str) -> list[int]:
    """The winner commits between the loser's read round trip and its write: the race, made certain."""
    assessor = services.assessor
    record = assessor.record
    writes = []

    def record_after_the_winner(judged, **kwargs):
        writes.append(1)
        if len(writes) == 1:
            first = {**asdict(judged.row), "id": "winner"}
            if digest != "same":
                first["request_hash"] = digest
            with services.database.transaction() as winner:
                winner.add(Assessment(**first))
        return record(judged, **kwargs)

    monkeypatch.setattr(assessor, "record", record_after_the_winner)
    return writes


def test_an_idempotent_write_that_loses_the_race_answers_with_the_winner(client, services, assess_headers, monkeypatch):
    writes = winner_commits_first(services, monkeypatch, digest="same")
    response = client.post("/v1/assessments", json={"email": "race@example-mail.com"},
                           headers={**assess_headers, "Idempotency-Key": "k"})
    assert (response.status_code, response.get_json()["id"], len(writes)) == (200, "winner", 1)
    with services.database.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM assessments").scalar() == 1


def test_the_loser_of_a_race_with_another_body_is_a_conflict(client, services, assess_headers, monkeypatch):
    winner_commits_first(services, monkeypatch, digest="other body")
    response = client.post("/v1/assessments", json={"email": "race@example-mail.com"},
                           headers={**assess_headers, "Idempotency-Key": "k"})
    assert response.status_code == 409 and "different body" in response.get_json()["detail"]


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
