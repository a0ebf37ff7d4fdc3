"""Plain values the engine works on: findings, reasons, decisions."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

Verdict = Literal["allow", "challenge", "deny"]
VERDICTS: tuple[Verdict, ...] = ("allow", "challenge", "deny")

# Signals are plain JSON-ready dicts: {"email": {...}, "phone": {...}, "ip": {...},
# "history": {...}, "lists": [...]}. They are stored with each assessment, so that a
# proposed policy can re-judge them later without any outside lookup.
Signals = dict[str, Any]


@dataclass(frozen=True)
class Finding:
    """A check's observation, before the policy gives it points."""

    code: str
    detail: str


@dataclass(frozen=True)
class Reason:
    """A finding with the points the policy gives it."""

    code: str
    points: int
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "points": self.points, "detail": self.detail}


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    score: int
    reasons: tuple[Reason, ...]


Check = Callable[[Signals, Any], Iterable[Finding]]
