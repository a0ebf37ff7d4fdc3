"""Who drains the revision jobs: `verify worker` in its loop (`verify serve`'s own child: tests/deploy/test_serve.py)."""

from __future__ import annotations

import pytest

from tests.support.history_traffic import post
from verify import cli
from verify.store.revisions import revisions_after


@pytest.fixture
def run(app):
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(cli.main, list(args), catch_exceptions=False)


def revised(services) -> list[str]:
    with services.database.transaction() as session:
        return [row.assessment_id for row in revisions_after(0, limit=100, session=session)]


def queue_a_revision(client, assess_headers, admin_headers) -> list[str]:
    first = post(client, assess_headers, "sven.sato@gmail.com", 0, device_id="dev-w")
    second = post(client, assess_headers, "tara.tanaka@gmail.com", 1, device_id="dev-w")
    response = client.post(f"/v1/assessments/{first['id']}/feedback", json={"label": "fraud"}, headers=admin_headers)
    assert response.status_code == 201
    return [first["id"], second["id"]]


def test_the_worker_records_queued_revisions(run, services, client, assess_headers, admin_headers):
    ids = queue_a_revision(client, assess_headers, admin_headers)
    assert revised(services) == []  # the label only queued the work
    result = run("worker", "--once")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "revisions: 2 recorded"
    assert sorted(revised(services)) == sorted(ids)
    assert run("worker", "--once").stdout == ""
