"""The shipped default policy agrees with the reason catalogue and validates."""

from __future__ import annotations

import json

import pytest

from verify.engine.policy import PolicyInvalid, parse_policy
from verify.engine.reasons import CATALOGUE, default_points
from verify.settings import Settings


def shipped() -> dict:
    return json.loads((Settings().data_dir / "default_policy.json").read_text())


def test_default_policy_has_every_code_with_catalogue_points():
    assert shipped()["points"] == default_points()


def test_default_policy_validates():
    policy = parse_policy(shipped(), version=1, base_points=default_points())
    assert policy.challenge < policy.deny


def test_every_reason_code_is_documented_in_openapi():
    spec = (Settings().data_dir.parent / "openapi.yaml").read_text()
    for code in CATALOGUE:
        assert f"- {code}\n" in spec, code


@pytest.mark.parametrize(
    "document, field",
    [
        ({"thresholds": {"challenge": 90, "deny": 80}}, "thresholds"),
        ({"thresholds": {"challenge": 40, "deny": 101}}, "thresholds.deny"),
        ({"thresholds": {"challenge": 40, "deny": 80}, "points": {"email.nope": 5}}, "points.email.nope"),
        ({"thresholds": {"challenge": 40, "deny": 80}, "points": {"email.relay": 500}}, "points.email.relay"),
        ({"thresholds": {"challenge": 40, "deny": 80}, "points": {"email.relay": True}}, "points.email.relay"),
        ({"points": {}}, "thresholds"),
        ([], ""),
    ],
    ids=["challenge-above-deny", "deny-over-100", "unknown-code", "points-out-of-range", "boolean-points", "no-thresholds", "not-an-object"],
)
def test_bad_policies_are_rejected(document, field):
    with pytest.raises(PolicyInvalid) as caught:
        parse_policy(document, version=2, base_points=default_points())
    assert field in {error["field"] for error in caught.value.errors}
