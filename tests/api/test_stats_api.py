"""/v1/stats over HTTP, on both databases: verdicts per bucket, top reasons, the keys behind denies."""

from __future__ import annotations

import pytest

from tests.conftest import bearer
from verify.store.keys import create_api_key


def assess(client, headers, **body) -> dict:
    response = client.post("/v1/assessments", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@pytest.fixture
def review_headers(services) -> dict[str, str]:
    with services.database.transaction() as session:
        return bearer(create_api_key("rita-review", ["review"], session=session))


def test_stats_count_verdicts_per_bucket_with_reasons_and_keys(client, assess_headers, review_headers):
    assess(client, assess_headers, email="carol@example-mail.com", occurred_at="2026-01-31T10:05:00Z")
    assess(client, assess_headers, email="x1@mailinator.com", device_id="dev-1", occurred_at="2026-01-31T10:40:00Z")
    assess(client, assess_headers, email="x2@mailinator.com", device_id="dev-1", occurred_at="2026-01-31T12:10:00+01:00")
    assess(client, assess_headers, email="late@mailinator.com", occurred_at="2026-01-31T13:00:00Z")  # outside

    response = client.get("/v1/stats", query_string={"since": "2026-01-31T10:00:00Z", "until": "2026-01-31T13:00:00Z"},
                          headers=review_headers)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert [(b["start"], b["allow"], b["challenge"], b["deny"]) for b in body["buckets"]] == [
        ("2026-01-31T10:00:00.000Z", 1, 0, 1),
        ("2026-01-31T11:00:00.000Z", 0, 0, 1),
        ("2026-01-31T12:00:00.000Z", 0, 0, 0),
    ]
    assert {"code": "email.disposable", "count": 2} in body["top_reasons"]
    assert body["top_keys"][:2] == [
        {"key": "device_id", "value": "dev-1", "challenge": 0, "deny": 2},
        {"key": "email_domain", "value": "mailinator.com", "challenge": 0, "deny": 2},
    ]
    daily = client.get("/v1/stats?bucket=day&since=2026-01-30T00:00:00Z&until=2026-02-01T00:00:00Z", headers=review_headers)
    assert [(b["allow"], b["deny"]) for b in daily.get_json()["buckets"]] == [(0, 0), (1, 3)]


@pytest.mark.parametrize("query", [
    "since=2026-01-31T10:00:00Z&until=2026-01-31T09:00:00Z",
    "since=2000-01-01T00:00:00Z&until=2026-01-01T00:00:00Z",
    "bucket=week",
    "since=noon",
    "colour=red",
])
def test_bad_stats_queries_get_422(client, admin_headers, query):
    assert client.get(f"/v1/stats?{query}", headers=admin_headers).status_code == 422


@pytest.mark.parametrize("bucket", ["hour", "day"])
def test_windows_at_the_ends_of_the_calendar_are_answered_not_overflowed(client, admin_headers, bucket):
    # Found by schemathesis: the default `since` (30 days before `until`) fell before year 1.
    early = client.get(f"/v1/stats?bucket={bucket}&until=0001-01-03T14:11:05%2B01:00", headers=admin_headers)
    assert early.status_code == 200, early.get_json()
    since = "0001-01-02T13:11:05.000Z" if bucket == "hour" else "0001-01-01T00:00:00.000Z"  # 24 h, or 30 days cut at year 1
    assert early.get_json()["since"] == since
    assert early.get_json()["buckets"][0]["start"] == since.replace("13:11:05", "13:00:00")
    # The last bucket of year 9999 has no next one to step to.
    late = client.get(f"/v1/stats?bucket={bucket}&since=9999-12-31T20:30:00Z&until=9999-12-31T23:59:59.999999Z",
                      headers=admin_headers)
    assert late.status_code == 200, late.get_json()
    starts = [b["start"] for b in late.get_json()["buckets"]]
    assert starts[-1] == ("9999-12-31T23:00:00.000Z" if bucket == "hour" else "9999-12-31T00:00:00.000Z")
    assert len(starts) == (4 if bucket == "hour" else 1)


def test_the_review_scope_reads_and_labels_but_changes_nothing_else(client, assess_headers, review_headers):
    assessment = assess(client, assess_headers, email="x1@mailinator.com")
    assert client.get("/v1/stats", headers=review_headers).status_code == 200
    assert client.get("/v1/stats", headers=assess_headers).status_code == 403
    assert client.get(f"/v1/assessments/{assessment['id']}", headers=review_headers).status_code == 200
    assert client.get(f"/v1/assessments/{assessment['id']}/related", headers=review_headers).status_code == 200
    assert client.get("/v1/assessments", headers=review_headers).status_code == 200
    feedback = client.post(f"/v1/assessments/{assessment['id']}/feedback", json={"label": "fraud", "source": "review"},
                           headers=review_headers)
    assert feedback.status_code == 201
    assert client.post("/v1/lists/blocked-domains/entries", json={"values": ["a.example"]}, headers=review_headers).status_code == 403
    assert client.get("/v1/policy", headers=review_headers).status_code == 403
    assert client.get("/v1/audit", headers=review_headers).status_code == 403
