"""VERIFY_SERVER_TIMING: the assessment names the time of each stage, so a regression points at its stage."""

from __future__ import annotations

import logging
import re
import time

from tests.support.contract import contract_app

STAGES = ("auth", "validation", "gather", "lists", "history", "judge", "record", "commit", "respond", "logging")


def timings(answer) -> dict[str, float]:
    parts = answer.headers["Server-Timing"].split(", ")
    return {name: float(ms) for name, ms in (re.fullmatch(r"(\w+);dur=(\d+\.\d{3})", part).groups() for part in parts)}


def test_each_stage_is_timed_when_asked(settings, assess_headers):
    with contract_app(settings.with_overrides(server_timing=True)) as app:
        answer = app.test_client().post("/v1/assessments", json={"email": "timed@example-mail.com"}, headers=assess_headers)
    assert answer.status_code == 201
    timed = timings(answer)
    assert tuple(timed) == STAGES and all(ms >= 0 for ms in timed.values())


class SlowHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "verify.requests":
            time.sleep(0.05)


def test_the_access_log_line_is_timed_as_logging(settings, assess_headers):
    """The log line is written after the view returns: its time is in `logging`, not lost."""
    slow = SlowHandler()
    with contract_app(settings.with_overrides(server_timing=True)) as app:
        app.test_client().post("/v1/assessments", json={"email": "first@example-mail.com"}, headers=assess_headers)  # warm
        logging.getLogger("verify.requests").addHandler(slow)
        try:
            answer = app.test_client().post("/v1/assessments", json={"email": "logged@example-mail.com"}, headers=assess_headers)
        finally:
            logging.getLogger("verify.requests").removeHandler(slow)
    timed = timings(answer)
    assert timed["logging"] >= 50 and all(ms < 50 for name, ms in timed.items() if name != "logging")


def test_no_header_by_default(client, assess_headers):
    answer = client.post("/v1/assessments", json={"email": "untimed@example-mail.com"}, headers=assess_headers)
    assert answer.status_code == 201 and "Server-Timing" not in answer.headers


def test_no_header_on_other_answers(settings, assess_headers):
    with contract_app(settings.with_overrides(server_timing=True)) as app:
        client = app.test_client()
        assert "Server-Timing" not in client.get("/healthz").headers
        refused = client.post("/v1/assessments", json={"email": 5}, headers=assess_headers)
    assert refused.status_code == 422 and "Server-Timing" not in refused.headers
