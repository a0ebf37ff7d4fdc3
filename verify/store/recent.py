"""Recent rows of the hot history keys, kept per process and fed by the tail of the table.

In SQL a key that thousands of signups share (a farm's phone block, network or domain) costs a
walk of up to `count_cap` index entries on every request, and its reputation sample 50 rows
and their feedback: campaign traffic ran at half the rate of honest traffic. Once a scan
finds a key that busy, this process loads the key's most recent rows (and their feedback)
once and keeps them current from the tails of the assessments and feedback tables
(store/tail.py), read in the same round trip as the rest of the history; its counts are then
bisections and slices, its reputation sample a slice.

What it promises: the counts and samples are the ones the SQL statements give
(store/history.py; a differential test holds the two together). Where the kept rows cannot
tell (a signup dated before them, feedback given after it), it says so and SQL answers.
Other workers and instances are seen at this worker's next request, as in SQL: the tails read
what they committed. Erasure and retention delete rows: they move the `assessments` stamp,
and everything kept is dropped.
"""

from __future__ import annotations

import bisect
import sys
import threading
import time
from array import array
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from verify.store.history import KEY_COLUMN
from verify.store.tail import Tail

HOT_AT = 256  # a key with this many signups in the long window is kept in memory (a shorter walk costs SQL little)
# Rows kept per process over all hot keys, least recently used keys dropped first: 120 to 200
# MiB at most (README, "The hot path"). A budget of rows, not of keys: traffic with hundreds of
# middle-sized ASNs or networks has that many keys above HOT_AT, each with far fewer rows than
# a farm's phone block; with a fixed 256 places the rest were walked in SQL on every signup.
MAX_ROWS = 1_000_000
# Once the rows are all taken, a new key comes only in place of one unused this long: with more
# busy keys than room the rest stay in SQL, instead of every request loading one and dropping another.
IDLE_SECONDS = 60.0
KEEP_FACTOR = 2  # rows kept per key: this many times the count cap
MAX_LABELS = 200_000  # feedback labels kept; more and everything kept starts over

# The column an entry's values hold (the second column of its distinct counts or filter).
VALUE_COLUMN = {"email_canonical": "email", "phone_e164": "email_canonical", "phone_block": "phone_e164",
                "device_id": "email_canonical", "payment_fingerprint": "email_canonical"}
TAIL_COLUMNS = ("seq", "occurred_at", "id", "verdict", "email", "email_canonical", "email_domain", "local_template",
                "phone_e164", "phone_block", "ip", "ip_network", "asn", "device_id", "payment_fingerprint")
FEEDBACK_COLUMNS = ("id", "assessment_id", "created_at", "label")


def _where(column: str) -> str:
    return f"{column} = :value" + (" AND email_domain = :domain" if column == "local_template" else "")


def _newest(column: str, selected: str) -> str:
    # The reputation sample's order: newest first, ties in arrival order.
    return f"SELECT {selected} FROM assessments WHERE {_where(column)} ORDER BY occurred_at DESC, seq DESC LIMIT :keep"


COLUMNS = tuple(dict.fromkeys(KEY_COLUMN.values()))  # the columns hot keys are kept by
LOADS = {column: _newest(column, f"seq, occurred_at, id, verdict, {VALUE_COLUMN.get(column, 'NULL')}") for column in COLUMNS}
LOAD_LABELS = {
    column: ("SELECT id, assessment_id, created_at, label FROM feedback WHERE assessment_id IN "
             f"({_newest(column, 'id')})")
    for column in COLUMNS
}


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


def _integers() -> array:
    return array("q")  # 8 bytes an item, where a list of ints takes 36 to 40


@dataclass
class Entry:
    """One key's rows, oldest first (ties in `seq` order); complete for every time above `floor`.

    Times and sequence numbers are machine integers and verdicts shared strings, so that a row
    costs its id, its counted value and about 40 bytes (README, "The hot path").
    """

    keep: int
    times: array = field(default_factory=_integers)
    seqs: array = field(default_factory=_integers)
    values: list[Any] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)
    floor: int = COMPLETE
    used: float = field(default_factory=time.monotonic)  # when a count or sample last came from it

    def add(self, seq: int, at: int, assessment_id: str, verdict: str, value: Any) -> int:
        """Keep one row; how many more rows the entry holds after it (trimming gives a negative)."""
        # The rows of one moment are in `seq` order: the place after the last one with a smaller
        # or equal `seq` (at once for the tail's rows, which come in that order). A row that comes
        # twice (a load and a tail read under different snapshots) is the one just before it.
        first = bisect.bisect_left(self.times, at)
        index = bisect.bisect_right(self.times, at, lo=first)
        while index > first and self.seqs[index - 1] > seq:
            index -= 1
        if index > first and self.seqs[index - 1] == seq:
            return 0
        self.times.insert(index, at)
        self.seqs.insert(index, seq)
        self.values.insert(index, value)
        self.ids.insert(index, assessment_id)
        self.verdicts.insert(index, sys.intern(verdict))
        if len(self.times) > self.keep + self.keep // 4:
            return 1 - self.trim()
        return 1

    def trim(self) -> int:
        """Keep the newest `keep` rows: times at or below the newest dropped one are no longer
        complete. How many rows were dropped."""
        extra = len(self.times) - self.keep
        if extra <= 0:
            return 0
        self.floor = max(self.floor, self.times[extra - 1] + 1)
        del self.times[:extra], self.seqs[:extra], self.values[:extra], self.ids[:extra], self.verdicts[:extra]
        return extra

    def complete_below(self, hi: int, wanted: int) -> bool:
        """Whether the `wanted` newest rows before position `hi` are all kept."""
        return self.floor == COMPLETE or hi - bisect.bisect_left(self.times, self.floor) >= wanted


@dataclass(frozen=True)
class Window:
    starts: Mapping[str, int]  # window name -> start (epoch microseconds)
    end: int
    cap: int


@dataclass(frozen=True)
class Plan:
    """What a round trip asked of the index: the watermarks its tails started from (None: they
    asked for the latest key instead, or were not read), and the keys it loads."""

    tailing: bool
    after_seq: int | None
    after_feedback: int | None
    loads: list[tuple]


class RecentIndex:
    def __init__(self) -> None:
        self._lock = threading.Lock()  # workers are processes; threads share an index only in tests and dev servers
        self.entries: OrderedDict[tuple, Entry] = OrderedDict()
        self.rows = 0  # rows kept over all entries, held under MAX_ROWS
        self.wanted: set[tuple] = set()
        self.assessments = Tail("assessments", "seq", TAIL_COLUMNS)
        self.feedback = Tail("feedback", "id", FEEDBACK_COLUMNS)
        # assessment id -> its feedback as (created_at in epoch microseconds, feedback id, label), oldest first
        self.labels: dict[str, list[tuple[int, int, str]]] = {}
        self.stamp: int | None = None  # the `assessments` stamp the kept rows are as of

    # -- the round trip ------------------------------------------------------------------

    def statements(self, counted: Mapping[str, Any], *, cap: int) -> tuple[list[tuple[str, dict]], Plan]:
        """The tails (once anything is kept) and the loads of wanted keys this signup names."""
        with self._lock:
            loads = [key for key in self._signup_entries(counted) if key in self.wanted and key not in self.entries]
            loads = loads[:self._places(KEEP_FACTOR * cap)]
            tailing = bool(self.entries or loads)
            batch = [self.assessments.statement(), self.feedback.statement()] if tailing else []
            for key in loads:
                params = {"value": key[1], "keep": KEEP_FACTOR * cap}
                if key[0] == "local_template":
                    params["domain"] = key[2]
                batch += [(LOADS[key[0]], params), (LOAD_LABELS[key[0]], params)]
            return batch, Plan(tailing, self.assessments.watermark, self.feedback.watermark, loads)

    def _places(self, most: int) -> int:
        """How many keys of up to `most` rows may be loaded now: as many as the free rows hold at
        their most, or one in place of the least recently used entry once it has been idle."""
        free = (MAX_ROWS - self.rows) // most
        if free > 0:
            return free
        least_recent = next(iter(self.entries.values()), None)
        return 1 if least_recent is not None and time.monotonic() - least_recent.used > IDLE_SECONDS else 0

    def absorb(self, results: list[list[tuple]], plan: Plan, *, cap: int, moment: Any, stamp: int) -> None:
        """Apply what the round trip brought: the tails, then the loaded keys."""
        with self._lock:
            self._absorb(results, plan, cap=cap, moment=moment, stamp=stamp)

    def _absorb(self, results: list[list[tuple]], plan: Plan, *, cap: int, moment: Any, stamp: int) -> None:
        if self.stamp is None:
            self.stamp = stamp
        elif self.stamp != stamp:  # rows were erased or purged since: what is kept may count them
            self.clear(stamp)
            return
        if not plan.tailing:
            return
        new_rows = self.assessments.take(results[0], asked_after=plan.after_seq)
        new_feedback = self.feedback.take(results[1], asked_after=plan.after_feedback)
        if new_rows is None or new_feedback is None:
            self.clear(stamp)
            return
        for row in new_rows:
            self._add_row(dict(zip(TAIL_COLUMNS, row)), moment)
        self._add_labels(new_feedback, moment)
        loaded = results[2:]
        for position, key in enumerate(plan.loads):
            rows, labels = loaded[2 * position], loaded[2 * position + 1]
            entry = Entry(keep=KEEP_FACTOR * cap)
            for seq, occurred_at, assessment_id, verdict, value in reversed(rows):  # oldest first: appended, not inserted
                self.rows += entry.add(seq, epoch(moment(occurred_at)), assessment_id, verdict, value)
            if len(rows) >= entry.keep:  # not the whole history of the key: complete above its oldest
                entry.floor = entry.times[0] + 1
            self._add_labels(labels, moment)
            self.entries[key] = entry
            self.wanted.discard(key)
        while self.rows > MAX_ROWS and self.entries:
            _, dropped = self.entries.popitem(last=False)
            self.rows -= len(dropped.times)
        if len(self.labels) > MAX_LABELS:
            self.clear(stamp)

    def _add_row(self, row: dict[str, Any], moment: Any) -> None:
        at = None
        for column in COLUMNS:
            key = entry_key(column, row)
            entry = self.entries.get(key) if key is not None else None
            if entry is not None:
                at = at if at is not None else epoch(moment(row["occurred_at"]))
                self.rows += entry.add(row["seq"], at, row["id"], row["verdict"], row.get(VALUE_COLUMN.get(column, ""), None))

    def _add_labels(self, rows: list[tuple], moment: Any) -> None:
        for feedback_id, assessment_id, created_at, label in rows:
            given = (epoch(moment(created_at)), feedback_id, label)
            held = self.labels.setdefault(assessment_id, [])
            if given not in held:
                bisect.insort(held, given)  # by (created_at, id): the SQL sample's order for the latest

    def clear(self, stamp: int | None) -> None:
        self.entries.clear()
        self.rows = 0
        self.wanted.clear()
        self.assessments.reset()
        self.feedback.reset()
        self.labels.clear()
        self.stamp = stamp

    # -- counting ----------------------------------------------------------------------

    def kept(self, counted: Mapping[str, Any], columns: tuple[str, ...]) -> tuple[set[str], set[str]]:
        """The history names whose counts, and of these key columns those whose reputation sample,
        this signup can have from memory."""
        with self._lock:
            held = {column for column in COLUMNS if (key := entry_key(column, counted)) is not None and key in self.entries}
        return {name for name, column in KEY_COLUMN.items() if column in held}, held & set(columns)

    def counts(self, name: str, counted: Mapping[str, Any], window: Window, *, email: str) -> dict[str, int] | None:
        """The capped counts per window of one history name, or None when the kept rows cannot tell."""
        with self._lock:
            return self._counts(name, counted, window, email=email)

    def _counts(self, name: str, counted: Mapping[str, Any], window: Window, *, email: str) -> dict[str, int] | None:
        column = KEY_COLUMN[name]
        key = entry_key(column, counted)
        entry = self.entries.get(key)
        if entry is None:
            return None
        self.entries.move_to_end(key)
        entry.used = time.monotonic()
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
        if not distinct:
            first = max(lo, bisect.bisect_left(times, long_start))
            return {"long": hi - first - values[first:hi].count(own)}
        # The windows nest (short within medium within long, all ending at `hi`): one set, grown
        # from the shortest window outwards, is hashed over the long window's rows once.
        found: set[Any] = set()
        reached = hi
        for window_name, start in sorted(window.starts.items(), key=lambda item: -item[1]):
            first = min(reached, max(lo, bisect.bisect_left(times, start)))
            found.update(values[first:reached])
            reached = first
            counts[window_name] = len(found) - (None in found) - (own in found)
        return {window_name: counts[window_name] for window_name in window.starts}

    def reputation(self, column: str, counted: Mapping[str, Any], *, end: datetime, sample: int) -> list[tuple] | None:
        """(occurred_at, verdict, latest label by `end`) of the key's `sample` newest signups before
        `end`, newest first, as the SQL sample reads them; None when the kept rows cannot tell."""
        with self._lock:
            entry = self.entries.get(entry_key(column, counted))
            if entry is None:
                return None
            until = epoch(end)
            hi = bisect.bisect_left(entry.times, until)
            if not entry.complete_below(hi, sample):
                return None
            entry.used = time.monotonic()
            evidence = []
            for index in range(hi - 1, max(hi - sample, 0) - 1, -1):
                moment = EPOCH + entry.times[index] * MICROSECOND
                evidence.append((moment, entry.verdicts[index], self._label_by(entry.ids[index], until)))
            return evidence

    def _label_by(self, assessment_id: str, until: int) -> str | None:
        """The latest label given to the assessment by `until` (feedback counts once it was given)."""
        for created, _, label in reversed(self.labels.get(assessment_id, ())):
            if created <= until:
                return label
        return None

    def notice(self, counts: Mapping[str, Mapping[str, int]], counted: Mapping[str, Any]) -> None:
        """Keys the SQL scans found busy are loaded at their next signup."""
        with self._lock:
            for name, by_window in counts.items():
                if by_window.get("long", 0) >= HOT_AT:
                    key = entry_key(KEY_COLUMN[name], counted)
                    if key is not None and key not in self.entries:
                        self.wanted.add(key)

    @staticmethod
    def _signup_entries(counted: Mapping[str, Any]) -> list[tuple]:
        keys = (entry_key(column, counted) for column in LOADS)
        return [key for key in dict.fromkeys(keys) if key is not None]


def window_of(starts: Mapping[str, datetime], end: datetime, cap: int) -> Window:
    return Window({name: epoch(moment) for name, moment in starts.items()}, epoch(end), cap)

