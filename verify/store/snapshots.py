"""Per-process copies of the policy and the list index, revalidated against stamps in the database.

Each assessment reads the small `stamps` table; only when a stamp moved (an admin changed a
list or the policy, on any worker or instance) is the policy or the index rebuilt.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from sqlmodel import Session

from verify import metrics
from verify.engine.lists import ListIndex
from verify.engine.policy import Policy, parse_policy
from verify.errors import Unavailable
from verify.store import queries


@dataclass(frozen=True)
class Snapshot:
    policy: Policy
    lists: ListIndex


class Snapshots:
    def __init__(self, *, base_points: Mapping[str, int]) -> None:
        self._base_points = dict(base_points)
        self._lock = threading.Lock()
        self._policy: tuple[int, Policy] | None = None
        self._lists: tuple[int, ListIndex] | None = None

    def current(self, *, session: Session) -> Snapshot:
        stamps = queries.read_stamps(session=session)
        return Snapshot(policy=self._current_policy(stamps, session), lists=self._current_lists(stamps, session))

    def _current_policy(self, stamps: dict[str, int], session: Session) -> Policy:
        stamp = stamps.get(queries.POLICY_STAMP, 0)
        cached = self._policy
        if cached is not None and cached[0] == stamp:
            return cached[1]
        row = queries.current_policy(session=session)
        if row is None:
            raise Unavailable("the database holds no policy yet; run `verify db upgrade`")
        policy = parse_policy(row.body, version=row.version, base_points=self._base_points)
        self._policy = (stamp, policy)
        return policy

    def _current_lists(self, stamps: dict[str, int], session: Session) -> ListIndex:
        stamp = stamps.get(queries.LISTS_STAMP, 0)
        cached = self._lists
        if cached is not None and cached[0] == stamp:
            return cached[1]
        with self._lock:  # one thread rebuilds; the others wait for its result
            cached = self._lists
            if cached is not None and cached[0] == stamp:
                return cached[1]
            entries = queries.load_list_entries(session=session)
            index = ListIndex(entries)
            metrics.set_list_sizes(Counter(entry.list_name for entry in entries))
            self._lists = (stamp, index)
            return index
