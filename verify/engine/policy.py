"""The scoring policy: points per reason code, thresholds and history limits, validated."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from verify.engine.limits import DEFAULT_LIMITS, LIMIT_RANGES
from verify.engine.reasons import CATALOGUE


class PolicyInvalid(ValueError):
    """A proposed policy breaks the rules; `errors` says where."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class Policy:
    version: int
    challenge: int
    deny: int
    points: Mapping[str, int]
    limits: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_LIMITS))

    def points_for(self, code: str) -> int:
        return self.points.get(code, CATALOGUE[code].points if code in CATALOGUE else 0)

    def to_document(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "thresholds": {"challenge": self.challenge, "deny": self.deny},
            "points": dict(sorted(self.points.items())),
            "limits": dict(sorted(self.limits.items())),
        }


def _whole_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_policy(document: Any, *, version: int, base_points: Mapping[str, int]) -> Policy:
    """Validate a policy document; codes it leaves out keep their points from `base_points`."""
    errors: list[dict[str, str]] = []

    def bad(where: str, message: str) -> None:
        errors.append({"field": where, "message": message})

    if not isinstance(document, Mapping):
        raise PolicyInvalid([{"field": "", "message": "the policy must be a JSON object"}])
    unknown = set(document) - {"version", "thresholds", "points", "limits", "created_at", "created_by"}
    for name in sorted(unknown):
        bad(name, "unknown field")

    thresholds = document.get("thresholds")
    challenge = deny = 0
    if not isinstance(thresholds, Mapping):
        bad("thresholds", "an object with `challenge` and `deny` is required")
    else:
        for name in sorted(set(thresholds) - {"challenge", "deny"}):
            bad(f"thresholds.{name}", "unknown threshold")
        for name in ("challenge", "deny"):
            value = thresholds.get(name)
            if not _whole_number(value) or not 0 <= value <= 100:
                bad(f"thresholds.{name}", "must be a whole number from 0 to 100")
        challenge, deny = thresholds.get("challenge"), thresholds.get("deny")
        if _whole_number(challenge) and _whole_number(deny) and challenge > deny:
            bad("thresholds", "challenge must not be greater than deny")

    points = dict(base_points)
    given_points = document.get("points", {})
    if not isinstance(given_points, Mapping):
        bad("points", "must be an object of reason code to points")
    else:
        for code, value in given_points.items():
            if code not in CATALOGUE:
                bad(f"points.{code}", "unknown reason code")
            elif not _whole_number(value) or not -100 <= value <= 100:
                bad(f"points.{code}", "must be a whole number from -100 to 100")
            else:
                points[code] = value

    limits = dict(DEFAULT_LIMITS)
    given_limits = document.get("limits", {})
    if not isinstance(given_limits, Mapping):
        bad("limits", "must be an object of limit name to a whole number")
    else:
        for name, value in given_limits.items():
            if name not in LIMIT_RANGES:
                bad(f"limits.{name}", "unknown limit")
                continue
            low, high = LIMIT_RANGES[name]
            if not _whole_number(value) or not low <= value <= high:
                bad(f"limits.{name}", f"must be a whole number from {low} to {high}")
            else:
                limits[name] = value

    if errors:
        raise PolicyInvalid(errors)
    return Policy(version=version, challenge=challenge, deny=deny, points=points, limits=limits)
