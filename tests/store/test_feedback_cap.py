"""Feedback per assessment is capped, and reputation reads only the latest label of each signup."""

from __future__ import annotations

from verify.store.assessments import FEEDBACK_PER_ASSESSMENT


def test_feedback_beyond_the_cap_is_a_conflict(client, assess_headers):
    created = client.post("/v1/assessments", json={"email": "pat.lee@gmail.com"}, headers=assess_headers)
    assert created.status_code == 201
    url = f"/v1/assessments/{created.get_json()['id']}/feedback"
    for _ in range(FEEDBACK_PER_ASSESSMENT):
        response = client.post(url, json={"label": "legitimate", "source": "review", "note": "x" * 1000}, headers=assess_headers)
        assert response.status_code == 201, response.get_json()
    refused = client.post(url, json={"label": "fraud", "source": "review"}, headers=assess_headers)
    assert refused.status_code == 409
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert str(FEEDBACK_PER_ASSESSMENT) in refused.get_json()["detail"]
    stored = client.get(f"/v1/assessments/{created.get_json()['id']}", headers=assess_headers).get_json()
    assert len(stored["feedback"]) == FEEDBACK_PER_ASSESSMENT
    assert {item["label"] for item in stored["feedback"]} == {"legitimate"}


def test_reputation_reads_the_latest_label_of_each_earlier_signup(client, assess_headers):
    email = "farm.member@example-mail.com"
    earlier = []
    for i in range(3):
        response = client.post("/v1/assessments", json={"email": f"farm{i}@example-mail.com", "device_id": "dev-1"}, headers=assess_headers)
        earlier.append(response.get_json()["id"])
    for assessment_id in earlier:
        for label in ("legitimate", "fraud", "legitimate", "fraud"):
            assert client.post(f"/v1/assessments/{assessment_id}/feedback", json={"label": label, "source": "review"}, headers=assess_headers).status_code == 201
    judged = client.post("/v1/assessments", json={"email": email, "device_id": "dev-1"}, headers=assess_headers).get_json()
    device = judged["signals"]["history"]["reputation"]["device"]
    assert device["fraud"] > 0 and device["legitimate"] == 0, device
