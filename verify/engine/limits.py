"""History limits that the policy may tune: how many earlier signups per key are normal."""

from __future__ import annotations

# name -> default; every limit is a count of earlier signups in a window ending at occurred_at.
DEFAULT_LIMITS: dict[str, int] = {}

# name -> (lowest, highest) value a policy may set.
LIMIT_RANGES: dict[str, tuple[int, int]] = {}
