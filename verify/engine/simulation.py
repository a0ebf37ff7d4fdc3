"""Re-judge stored signals under a proposed policy: what would change, with examples."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from verify.engine.decide import judge
from verify.engine.models import Signals
from verify.engine.policy import Policy
from verify.engine.revisions import rejudge_with_reasons

EXAMPLES_PER_TRANSITION = 5


@dataclass(frozen=True)
class StoredJudgement:
    """What was decided for one stored assessment, and the signals it was decided on."""

    id: str
    email: str
    verdict: str
    score: int
    signals: Signals


def simulate(
    stored: Iterable[StoredJudgement], policy: Policy, *, examples_per_transition: int = EXAMPLES_PER_TRANSITION
) -> dict[str, Any]:
    """Compare each stored verdict with the verdict `policy` gives the same signals."""
    evaluated = 0
    transitions: Counter[str] = Counter()
    examples: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in stored:
        evaluated += 1
        decision = judge(row.signals, policy)
        if decision.verdict == row.verdict:
            continue
        transition = f"{row.verdict}->{decision.verdict}"
        transitions[transition] += 1
        if len(examples[transition]) < examples_per_transition:
            examples[transition].append({
                "id": row.id,
                "email": row.email,
                "from": row.verdict,
                "to": decision.verdict,
                "score_before": row.score,
                "score_after": decision.score,
            })
    return {
        "evaluated": evaluated,
        "changed": sum(transitions.values()),
        "transitions": dict(sorted(transitions.items())),
        "examples": [example for name in sorted(examples) for example in examples[name]],
    }


@dataclass(frozen=True)
class StoredRevision:
    """A recorded revision and the signals of the assessment it revised."""

    verdict: str
    reasons: list[dict[str, Any]]
    signals: Signals


def simulate_revisions(stored: Iterable[StoredRevision], policy: Policy) -> dict[str, Any]:
    """Compare each recorded revision's verdict with the one `policy` gives its signals and evidence."""
    evaluated = 0
    transitions: Counter[str] = Counter()
    for row in stored:
        evaluated += 1
        verdict = rejudge_with_reasons(row.signals, row.reasons, policy)
        if verdict != row.verdict:
            transitions[f"{row.verdict}->{verdict}"] += 1
    return {"evaluated": evaluated, "changed": sum(transitions.values()), "transitions": dict(sorted(transitions.items()))}
