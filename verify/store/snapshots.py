"""Per-process copies of the policy, the list index and the API keys, revalidated against
stamps in the database.

Each request reads the small `stamps` table once; only when a stamp moved (an admin changed a
list, the policy or a key, on any worker or instance) is the copy renewed. The list index is
brought up to date in place from the list-change log (store/list_changes.py), and rebuilt
whole only when the log cannot say what changed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from sqlmodel import Session

from verify import metrics
from verify.engine.lists import ListIndex
from verify.engine.policy import Policy, parse_policy
from verify.errors import Unavailable
from verify.store.keys import live_api_keys, secret_lookup, secret_matches
from verify.store.list_changes import list_changes_after
from verify.store.lists import load_list_entries
from verify.store.policy import current_policy
from verify.store.stamps import KEYS_STAMP, LISTS_STAMP, POLICY_STAMP, read_stamps
from verify.store.models import ApiKey

log = logging.getLogger(__name__)


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
        self._keys: tuple[int, dict[str, ApiKey]] | None = None

    def stamps(self, *, session: Session) -> dict[str, int]:
        """The stamps, read once per session (a session serves one request or one command)."""
        if "stamps" not in session.info:
            session.info["stamps"] = read_stamps(session=session)
        return session.info["stamps"]

    def current(self, *, session: Session) -> Snapshot:
        stamps = self.stamps(session=session)
        return Snapshot(policy=self._current_policy(stamps, session), lists=self._current_lists(stamps, session))

    def api_key(self, secret: str, *, session: Session) -> ApiKey | None:
        """The live key whose secret this is, from a copy of the keys reloaded when one changes."""
        lookup = secret_lookup(secret)
        if lookup is None:
            return None
        stamp = self.stamps(session=session).get(KEYS_STAMP, 0)
        cached = self._keys
        if cached is None or cached[0] != stamp:
            cached = self._keys = (stamp, live_api_keys(session=session))
        key = cached[1].get(lookup)
        return key if key is not None and secret_matches(key, secret) else None

    def _current_policy(self, stamps: dict[str, int], session: Session) -> Policy:
        stamp = stamps.get(POLICY_STAMP, 0)
        cached = self._policy
        if cached is not None and cached[0] == stamp:
            return cached[1]
        row = current_policy(session=session)
        if row is None:
            raise Unavailable("the database holds no policy yet; run `verify db upgrade`")
        policy = parse_policy(row.body, version=row.version, base_points=self._base_points)
        self._policy = (stamp, policy)
        return policy

    def _current_lists(self, stamps: dict[str, int], session: Session) -> ListIndex:
        stamp = stamps.get(LISTS_STAMP, 0)
        cached = self._lists
        if cached is not None and cached[0] == stamp:
            return cached[1]
        with self._lock:  # one thread renews; the others wait for its result
            cached = self._lists
            if cached is not None and cached[0] == stamp:
                return cached[1]
            changes = None if cached is None else list_changes_after(cached[0], until=stamp, session=session)
            if changes is not None:
                index = cached[1]
                skipped = index.apply(changes)
            else:
                index = ListIndex(load_list_entries(session=session))
                skipped = index.skipped
            for entry in skipped:
                log.warning("list %s: skipped the stored value %r, which cannot be read as a %s", entry.list_name, entry.value, entry.kind)
            metrics.set_list_sizes(index.sizes)
            self._lists = (stamp, index)
            return index
