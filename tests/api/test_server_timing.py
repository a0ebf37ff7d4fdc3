"""VERIFY_SERVER_TIMING: the assessment names the time of each stage, so a regression points at its stage."""

from __future__ import annotations

import re

from tests.support.contract import contract_app

STAGES = ("auth", "validation", "gather", "lists", "history", "judge", "record", "commit")


def test_each_stage_is_timed_when_asked(settings, assess_headers):
    with contract_app(settings.with_overrides(server_timing=True)) as app:
        answer = app.test_client().post("/v1/assessments", json={"email": "timed@example-mail.com"}, headers=assess_headers)
    assert answer.status_code == 201
    timed = dict(re.fullmatch(r"(\w+);dur=(\d+\.\d{3})", part).groups() for part in answer.headers["Server-Timing"].split(", "))
    assert tuple(timed) == STAGES and all(float(ms) >= 0 for ms in timed.values())


def test_no_header_by_default(client, assess_headers):
    answer = client.post("/v1/assessments", json={"email": "untimed@example-mail.com"}, headers=assess_headers)
    assert answer.status_code == 201 and "Server-Timing" not in answer.headers
