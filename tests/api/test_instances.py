"""Several instances (or workers) on one database count each other's signups from the moment
they commit: the next assessment on any of them reads them, by SQL scan or by the tail that
keeps its hot keys (store/recent.py)."""

from __future__ import annotations

import pytest

from tests.support.contract import contract_app


@pytest.fixture
def other(settings):
    """A second instance on the same database."""
    with contract_app(settings) as app:
        yield app


def ip_count(answer: dict) -> int:
    return answer["signals"]["history"]["counts"]["ip"]["long"]


def test_an_instance_counts_the_signups_another_just_stored(app, other, assess_headers):
    first, second = app.test_client(), other.test_client()
    signup = {"ip": "198.51.100.20"}
    for n in range(3):
        assert first.post("/v1/assessments", json={**signup, "email": f"a{n}@corp-one.test"}, headers=assess_headers).status_code == 201
    answer = second.post("/v1/assessments", json={**signup, "email": "b0@corp-one.test"}, headers=assess_headers).get_json()
    assert ip_count(answer) == 3
    answer = first.post("/v1/assessments", json={**signup, "email": "a9@corp-one.test"}, headers=assess_headers).get_json()
    assert ip_count(answer) == 4


def test_a_hot_key_kept_in_memory_sees_the_other_instances_signups(app, other, assess_headers):
    first, second = app.test_client(), other.test_client()
    signup = {"ip": "198.51.100.21"}
    for n in range(5):
        assert first.post("/v1/assessments", json={**signup, "email": f"c{n}@corp-two.test"}, headers=assess_headers).status_code == 201
    kept = other.extensions["verify"].assessor.recent
    kept.wanted.add(("ip", "198.51.100.21"))  # as if its scans had found the key busy
    answer = second.post("/v1/assessments", json={**signup, "email": "d0@corp-two.test"}, headers=assess_headers).get_json()
    assert ("ip", "198.51.100.21") in kept.entries and ip_count(answer) == 5
    for n in range(5, 8):
        assert first.post("/v1/assessments", json={**signup, "email": f"c{n}@corp-two.test"}, headers=assess_headers).status_code == 201
    answer = second.post("/v1/assessments", json={**signup, "email": "d1@corp-two.test"}, headers=assess_headers).get_json()
    assert ip_count(answer) == 9  # 8 from the first instance, 1 of its own, counted from memory
    assert ip_count(first.post("/v1/assessments", json={**signup, "email": "c9@corp-two.test"}, headers=assess_headers).get_json()) == 10
