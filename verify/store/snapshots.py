"""Per-process copies of the policy, the list index and the API keys, revalidated against
stamps in the database.

Each request reads the small `stamps` table once (the assessment hot path folds that read into
its one round trip); only when a stamp moved (an admin changed a list, the policy, a key or a
webhook endpoint, on any worker or instance) is the copy renewed. The list index is
brought up to date in place from the list-change log (store/list_changes.py), and rebuilt
whole only when the log cannot say what changed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
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
from verify.store.stamps import KEYS_STAMP, LISTS_STAMP, POLICY_STAMP, WEBHOOKS_STAMP, read_stamps
from verify.store.webhooks import subscriptions
from verify.store.models import ApiKey

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    policy: Policy
    lists: ListIndex
    # (endpoint id, event types) of the enabled webhook endpoints
    subscriptions: tuple[tuple[str, tuple[str, ...]], ...] = ()


class Snapshots:
    def __init__(self, *, base_points: Mapping[str, int]) -> None:
        self._base_points = dict(base_points)
        self._lock = threading.Lock()
        self._policy: tuple[int, Policy] | None = None
        self._lists: tuple[int, ListIndex] | None = None
        self._keys: tuple[int, dict[str, ApiKey]] | None = None
        self._subscriptions: tuple[int, tuple[tuple[str, tuple[str, ...]], ...]] | None = None
        # The stamps the hot path last read: where its next request starts (None before the first).
        self.seen_stamps: dict[str, int] | None = None

    def stamps(self, *, session: Session) -> dict[str, int]:
        """The stamps, read once per session (a session serves one request or one command)."""
        if "stamps" not in session.info:
            session.info["stamps"] = read_stamps(session=session)
        return session.info["stamps"]

    def current(self, *, session: Session) -> Snapshot:
        return self.at(self.stamps(session=session), lambda: session)

    def api_key(self, secret: str, *, session: Session) -> ApiKey | None:
        """The live key whose secret this is, from a copy of the keys reloaded when one changes."""
        return self.api_key_at(secret, self.stamps(session=session), lambda: session)

    # -- at given stamps: the hot path read them itself, and opens a session only to renew ----

    def fresh(self, stamps: Mapping[str, int]) -> bool:
        """Every copy held is as of these stamps: nothing to renew (a copy not made yet, such as
        the keys in the CLI, is made when first asked for)."""
        held = (self._policy, self._lists, self._keys, self._subscriptions)
        names = (POLICY_STAMP, LISTS_STAMP, KEYS_STAMP, WEBHOOKS_STAMP)
        return all(copy is None or copy[0] == stamps.get(name, 0) for copy, name in zip(held, names))

    def at(self, stamps: Mapping[str, int], session: Callable[[], Session]) -> Snapshot:
        """The policy, lists and subscriptions as of these stamps; `session` is called only to renew a copy."""
        return Snapshot(
            policy=self._current_policy(stamps, session),
            lists=self._current_lists(stamps, session),
            subscriptions=self._current_subscriptions(stamps, session),
        )

    def api_key_at(self, secret: str, stamps: Mapping[str, int], session: Callable[[], Session]) -> ApiKey | None:
        lookup = secret_lookup(secret)
        if lookup is None:
            return None
        stamp = stamps.get(KEYS_STAMP, 0)
        cached = self._keys
        if cached is None or cached[0] != stamp:
            cached = self._keys = (stamp, live_api_keys(session=session()))
        key = cached[1].get(lookup)
        return key if key is not None and secret_matches(key, secret) else None

    def cached_api_key(self, secret: str) -> ApiKey | None:
        """The key as the last copy knew it, without asking the database (the hot path checks the stamp after)."""
        lookup = secret_lookup(secret)
        cached = self._keys
        key = cached[1].get(lookup) if cached is not None and lookup is not None else None
        return key if key is not None and secret_matches(key, secret) else None

    def _current_subscriptions(self, stamps: Mapping[str, int], session: Callable[[], Session]) -> tuple:
        stamp = stamps.get(WEBHOOKS_STAMP, 0)
        cached = self._subscriptions
        if cached is None or cached[0] != stamp:
            cached = self._subscriptions = (stamp, subscriptions(session=session()))
        return cached[1]

    def _current_policy(self, stamps: Mapping[str, int], session: Callable[[], Session]) -> Policy:
        stamp = stamps.get(POLICY_STAMP, 0)
        cached = self._policy
        if cached is not None and cached[0] == stamp:
            return cached[1]
        row = current_policy(session=session())
        if row is None:
            raise Unavailable("the database holds no policy yet; run `verify db upgrade`")
        policy = parse_policy(row.body, version=row.version, base_points=self._base_points)
        self._policy = (stamp, policy)
        return policy

    def _current_lists(self, stamps: Mapping[str, int], session: Callable[[], Session]) -> ListIndex:
        stamp = stamps.get(LISTS_STAMP, 0)
        cached = self._lists
        if cached is not None and cached[0] == stamp:
            return cached[1]
        with self._lock:  # one thread renews; the others wait for its result
            cached = self._lists
            if cached is not None and cached[0] == stamp:
                return cached[1]
            changes = None if cached is None else list_changes_after(cached[0], until=stamp, session=session())
            if changes is not None:
                index = cached[1]
                skipped = index.apply(changes)
            else:
                index = ListIndex(load_list_entries(session=session()))
                skipped = index.skipped
            for entry in skipped:
                log.warning("list %s: skipped the stored value %r, which cannot be read as a %s", entry.list_name, entry.value, entry.kind)
            metrics.set_list_sizes(index.sizes)
            self._lists = (stamp, index)
            return index
