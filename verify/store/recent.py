"""Recent rows of the hot history keys, kept per process and fed by the tail of the table.

In SQL a key that thousands of signups share (a farm's phone block, network or domain) costs a
walk of up to `count_cap` index entries on every request: campaign traffic ran at half the
rate of honest traffic. Once a scan finds a key that busy, this process loads the key's most
recent rows once and keeps them current from the table's tail (rows above its watermark of
`seq`), read in the same round trip as the rest of the history; its counts are then
bisections, or a walk of Python values for the distinct counts.

What it promises: the counts are the ones the SQL scans give (store/history.py; a
differential test holds the two together). Where the kept rows cannot tell (a signup dated
before them), it says so and the SQL scan answers. Other workers and instances are seen at
this worker's next request, as in SQL: the tail reads what they committed. On PostgreSQL a
`seq` can commit after a larger one; a missing `seq` is asked for again for GAP_SECONDS (a
hot-path insert commits within its 5 s statement timeout) and then given up. Erasure and
retention delete rows: they move the `assessments` stamp, and the kept rows are dropped.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

HOT_AT = 64  # a key with this many signups in the long window is kept in memory
MAX_KEYS = 256  # hot keys kept per process, least recently used dropped first
KEEP_FACTOR = 2  # rows kept per key: this many times the count cap
GAP_SECONDS = 10.0
GAP_SLOTS = 16  # missing seqs asked for again, at most; more and the kept rows are dropped
TAIL_LIMIT = 2000  # a worker further behind than this drops its kept rows rather than catch up

# history name -> (the column its entry is kept by, the column its distinct count or filter reads)
KINDS: dict[str, tuple[str, str | None]] = {
    "email_canonical": ("email_canonical", None),
    "email_variants": ("email_canonical", "email"),
    "email_domain": ("email_domain", None),
    "local_template": ("local_template", None),
    "phone": ("phone_e164", "email_canonical"),
    "phone_block": ("phone_block", "phone_e164"),
    "ip": ("ip", None),
    "ip_network": ("ip_network", None),
    "asn": ("asn", None),
    "device": ("device_id", "email_canonical"),
    "payment": ("payment_fingerprint", "email_canonical"),
}
# The column an entry's values hold (the second column of its distinct counts or filter).
VALUE_COLUMN = {"email_canonical": "email", "phone_e164": "email_canonical", "phone_block": "phone_e164",
                "device_id": "email_canonical", "payment_fingerprint": "email_canonical"}
TAIL_COLUMNS = ("seq", "occurred_at", "email", "email_canonical", "email_domain", "local_template", "phone_e164",
                "phone_block", "ip", "ip_network", "asn", "device_id", "payment_fingerprint")
# Two seeks of the primary key (an OR of the two made SQLite scan the table): the rows above
# the watermark, and the missing ones below it asked for again.
_TAIL_SELECT = f"SELECT {', '.join(TAIL_COLUMNS)} FROM assessments WHERE "
TAIL = (f"SELECT * FROM ({_TAIL_SELECT}seq > :after ORDER BY seq LIMIT {TAIL_LIMIT}) AS above UNION ALL "
        f"{_TAIL_SELECT}seq IN ({', '.join(f':gap{slot}' for slot in range(GAP_SLOTS))})")
LATEST_SEQ = "SELECT coalesce(max(seq), 0) FROM assessments"


def _load(column: str) -> str:
    value = VALUE_COLUMN.get(column)
    where = f"{column} = :value" + (" AND email_domain = :domain" if column == "local_template" else "")
    return (f"SELECT seq, occurred_at, {value or 'NULL'} FROM assessments WHERE {where} "
            f"ORDER BY occurred_at DESC, seq DESC LIMIT :keep")


LOADS = {column: _load(column) for column in {column for column, _ in KINDS.values()}}


def entry_key(column: str, keys: Mapping[str, Any]) -> tuple | None:
    """The entry a signup's (or a stored row's) keys name for this column; None when it has none."""
    value = keys.get(column)
    if value is None:
        return None
    if column == "local_template":
        return (column, value, keys.get("email_domain")) if keys.get("email_domain") is not None else None
    return (column, value)


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MICROSECOND = timedelta(microseconds=1)
COMPLETE = -(1 << 62)  # an entry's floor when it holds the key's whole history


def epoch(moment: datetime) -> int:
    """Microseconds since 1970: exact for every stored moment (floats lose microseconds past year 2200)."""
    return (moment - EPOCH) // MICROSECOND


@dataclass
class Entry:
    """One key's rows, oldest first; complete for every time above `floor`."""

    keep: int
    times: list[int] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)
    floor: int = COMPLETE

    def add(self, seq: int, at: int, value: Any) -> None:
        if seq in self.seen:
            return
        self.seen.add(seq)
        index = bisect.bisect_right(self.times, at)
        self.times.insert(index, at)
        self.values.insert(index, value)
        self.seqs.insert(index, seq)
        if len(self.times) > self.keep + self.keep // 4:
            self.trim()

    def trim(self) -> None:
        """Keep the newest `keep` rows: times at or below the newest dropped one are no longer complete."""
        extra = len(self.times) - self.keep
        if extra > 0:
            self.floor = max(self.floor, self.times[extra - 1] + 1)
            self.seen.difference_update(self.seqs[:extra])
            del self.times[:extra], self.values[:extra], self.seqs[:extra]


@dataclass(frozen=True)
class Window:
    starts: Mapping[str, int]  # window name -> start (epoch microseconds)
    end: int
    cap: int


@dataclass(frozen=True)
class Plan:
    """What a round trip asked of the index: the watermark its tail started from (None: it asked
    for the latest seq instead), and the keys it loads."""

    after: int | None
    loads: list[tuple]


class RecentIndex:
    def __init__(self) -> None:
        self._lock = threading.Lock()  # workers are processes; threads share an index only in tests and dev servers
        self.entries: OrderedDict[tuple, Entry] = OrderedDict()
        self.wanted: set[tuple] = set()
        self.watermark: int | None = None
        self.gaps: dict[int, float] = {}
        self.stamp: int | None = None  # the `assessments` stamp the kept rows are as of

    # -- the round trip ------------------------------------------------------------------

    def statements(self, counted: Mapping[str, Any], *, cap: int) -> tuple[list[tuple[str, dict]], Plan]:
        """The tail (once anything is kept) and the loads of wanted keys this signup names."""
        with self._lock:
            loads = [key for key in self._signup_entries(counted) if key in self.wanted and key not in self.entries]
            batch: list[tuple[str, dict]] = []
            if self.entries or loads:
                if self.watermark is None:
                    batch.append((LATEST_SEQ, {}))
                else:
                    gaps = sorted(self.gaps)[:GAP_SLOTS]
                    params = {f"gap{slot}": gaps[slot] if slot < len(gaps) else None for slot in range(GAP_SLOTS)}
                    batch.append((TAIL, {"after": self.watermark, **params}))
            for key in loads:
                params = {"value": key[1], "keep": KEEP_FACTOR * cap}
                if key[0] == "local_template":
                    params["domain"] = key[2]
                batch.append((LOADS[key[0]], params))
            return batch, Plan(after=self.watermark, loads=loads)

    def absorb(self, results: list[list[tuple]], plan: Plan, *, cap: int, moment: Any, stamp: int) -> None:
        """Apply what the round trip brought: the tail, then the loaded keys."""
        with self._lock:
            self._absorb(results, plan, cap=cap, moment=moment, stamp=stamp)

    def _absorb(self, results: list[list[tuple]], plan: Plan, *, cap: int, moment: Any, stamp: int) -> None:
        loads = plan.loads
        if self.stamp is None:
            self.stamp = stamp
        elif self.stamp != stamp:  # rows were erased or purged since: what is kept may count them
            self.clear(stamp)
            return
        asked_latest = plan.after is None
        if not results or asked_latest != (self.watermark is None):
            return  # another thread started or dropped the tail meanwhile: this round trip's rows do not fit
        tail, loaded = results[0], results[1:]
        if self.watermark is None:
            # Seqs just below the latest may still be uncommitted (PostgreSQL): ask for them again a while.
            latest = tail[0][0]
            now = time.monotonic()
            self.watermark = latest
            self.gaps = {seq: now for seq in range(max(1, latest - GAP_SLOTS // 2 + 1), latest + 1)}
        else:
            if len(tail) >= TAIL_LIMIT or not self._apply_tail(tail, moment):
                self.clear(stamp)
                return
        for key, rows in zip(loads, loaded):
            entry = Entry(keep=KEEP_FACTOR * cap)
            for seq, occurred_at, value in rows:
                entry.add(seq, epoch(moment(occurred_at)), value)
            if len(rows) >= entry.keep:  # not the whole history of the key: complete above its oldest
                entry.floor = entry.times[0] + 1
            self.entries[key] = entry
            self.wanted.discard(key)
        while len(self.entries) > MAX_KEYS:
            self.entries.popitem(last=False)

    def _apply_tail(self, rows: list[tuple], moment: Any) -> bool:
        now = time.monotonic()
        for seq in [seq for seq, noticed in self.gaps.items() if now - noticed > GAP_SECONDS]:
            del self.gaps[seq]
        expected = self.watermark + 1
        for row in rows:
            seq = row[0]
            self.gaps.pop(seq, None)
            if seq > self.watermark:
                for missing in range(expected, seq):
                    self.gaps[missing] = now
                expected = seq + 1
                self.watermark = seq
            self._add_row(dict(zip(TAIL_COLUMNS, row)), moment)
        return len(self.gaps) <= GAP_SLOTS

    def _add_row(self, row: dict[str, Any], moment: Any) -> None:
        at = None
        for column in LOADS:
            key = entry_key(column, row)
            entry = self.entries.get(key) if key is not None else None
            if entry is not None:
                at = at if at is not None else epoch(moment(row["occurred_at"]))
                entry.add(row["seq"], at, row.get(VALUE_COLUMN.get(column, ""), None))

    def clear(self, stamp: int | None) -> None:
        self.entries.clear()
        self.wanted.clear()
        self.watermark = None
        self.gaps.clear()
        self.stamp = stamp

    # -- counting ----------------------------------------------------------------------

    def kept(self, counted: Mapping[str, Any]) -> set[str]:
        """The history names this signup's counts can come from memory for."""
        with self._lock:
            return self._kept(counted)

    def _kept(self, counted: Mapping[str, Any]) -> set[str]:
        names = set()
        for name, (column, _) in KINDS.items():
            key = entry_key(column, counted)
            if key is not None and key in self.entries:
                names.add(name)
        return names

    def counts(self, name: str, counted: Mapping[str, Any], window: Window, *, email: str) -> dict[str, int] | None:
        """The capped counts per window of one history name, or None when the kept rows cannot tell."""
        with self._lock:
            return self._counts(name, counted, window, email=email)

    def _counts(self, name: str, counted: Mapping[str, Any], window: Window, *, email: str) -> dict[str, int] | None:
        column, _ = KINDS[name]
        key = entry_key(column, counted)
        entry = self.entries.get(key)
        if entry is None:
            return None
        self.entries.move_to_end(key)
        times, end, cap = entry.times, window.end, window.cap
        hi = bisect.bisect_left(times, end)
        if name in ("phone", "phone_block", "device", "payment", "email_variants"):
            return self._filtered(name, entry, hi, counted, window, email=email)
        counts = {}
        for window_name, start in window.starts.items():
            n = hi - bisect.bisect_left(times, max(start, entry.floor))
            if n < cap and start < entry.floor:
                return None
            counts[window_name] = min(n, cap)
        return counts

    def _filtered(self, name: str, entry: Entry, hi: int, counted: Mapping[str, Any], window: Window, *,
                  email: str) -> dict[str, int] | None:
        # The SQL scan: the newest `cap` rows of the long window that pass the filter (not the
        # signup's own mailbox, number or spelling), then per window the distinct values among
        # them (variants: how many). Slices, counts and sets: a hot key's thousand rows are
        # walked in C, not in a Python loop.
        if name == "email_variants":
            own, distinct = email, False
        else:
            own, distinct = (counted.get("phone_e164") if name == "phone_block" else counted.get("email_canonical")) or "", True
        times, values, cap = entry.times, entry.values, window.cap
        long_start = window.starts["long"]
        floor_index = bisect.bisect_left(times, max(long_start, entry.floor))

        def dropped(lo: int) -> int:  # rows of [lo, hi) the filter leaves out
            part = values[lo:hi]
            return part.count(own) + (part.count(None) if distinct and own == "" else 0)

        lo = max(floor_index, hi - cap)
        while True:  # widen the slice by the rows left out until it holds `cap` that pass, or all there are
            wider = max(floor_index, hi - cap - dropped(lo))
            if wider == lo:
                break
            lo = wider
        picked = hi - lo - dropped(lo)
        if picked < cap and long_start < entry.floor:
            return None
        counts = {}
        for window_name, start in window.starts.items():
            first = max(lo, bisect.bisect_left(times, start))
            if distinct:
                found = set(values[first:hi])
                found.discard(None)
                found.discard(own)
                counts[window_name] = len(found)
            else:
                counts[window_name] = hi - first - values[first:hi].count(own)
        return {"long": counts["long"]} if name == "email_variants" else counts

    def notice(self, counts: Mapping[str, Mapping[str, int]], counted: Mapping[str, Any]) -> None:
        """Keys the SQL scans found busy are loaded at their next signup."""
        with self._lock:
            for name, by_window in counts.items():
                if by_window.get("long", 0) >= HOT_AT:
                    key = entry_key(KINDS[name][0], counted)
                    if key is not None and key not in self.entries:
                        self.wanted.add(key)

    @staticmethod
    def _signup_entries(counted: Mapping[str, Any]) -> list[tuple]:
        keys = (entry_key(column, counted) for column in LOADS)
        return [key for key in dict.fromkeys(keys) if key is not None]


def window_of(starts: Mapping[str, datetime], end: datetime, cap: int) -> Window:
    return Window({name: epoch(moment) for name, moment in starts.items()}, epoch(end), cap)

