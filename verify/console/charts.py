"""Charts drawn as SVG on the server: they need no script and no network."""

from __future__ import annotations

from dataclasses import dataclass

WIDTH, HEIGHT = 720, 180
SERIES = ("allow", "challenge", "deny")


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: str
    title: str


def stacked_bars(buckets: list[dict], *, label: str = "start") -> list[Bar]:
    """One stacked bar per bucket (allow at the bottom, deny on top), scaled to the busiest bucket."""
    if not buckets:
        return []
    peak = max(sum(bucket[name] for name in SERIES) for bucket in buckets) or 1
    slot = WIDTH / len(buckets)
    bars = []
    for index, bucket in enumerate(buckets):
        bottom = float(HEIGHT)
        for name in SERIES:
            height = HEIGHT * bucket[name] / peak
            if height:
                bottom -= height
                title = f"{bucket[label]}: {bucket[name]} {name}"
                bars.append(Bar(index * slot + 1, bottom, max(slot - 2, 1), height, name, title))
    return bars


def transition_bars(transitions: dict[str, int]) -> list[tuple[str, int, float]]:
    """Simulation transitions as (name, count, width in percent of the largest)."""
    peak = max(transitions.values(), default=0) or 1
    return [(name, count, round(100 * count / peak, 1)) for name, count in sorted(transitions.items(), key=lambda i: -i[1])]
