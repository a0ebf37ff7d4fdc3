"""The tail of a table: its rows above a watermark of its serial key, none skipped.

On PostgreSQL a key is allocated when a row is inserted but seen only when its transaction
commits, so a larger key can be seen before a smaller one. A key missing below the watermark
is asked for again for GAP_SECONDS (a hot-path insert commits within its 5 s statement
timeout; a rolled-back insert never fills its gap) and then given up. SQLite commits one
writer at a time, in key order: there a gap is a deleted or rolled-back row.
"""

from __future__ import annotations

import time

GAP_SECONDS = 10.0
GAP_SLOTS = 16  # missing keys asked for again, at most; more and the tail starts over
TAIL_LIMIT = 2000  # a reader further behind than this starts over rather than catch up


class Tail:
    def __init__(self, table: str, key: str, columns: tuple[str, ...]) -> None:
        self.key = key
        select = f"SELECT {', '.join(columns)} FROM {table} WHERE "
        # Two seeks of the key's index (an OR of the two made SQLite scan the table): the rows
        # above the watermark, and the missing ones below it asked for again.
        self.sql = (f"SELECT * FROM ({select}{key} > :after ORDER BY {key} LIMIT {TAIL_LIMIT}) AS above UNION ALL "
                    f"{select}{key} IN ({', '.join(f':gap{slot}' for slot in range(GAP_SLOTS))})")
        self.latest_sql = f"SELECT coalesce(max({key}), 0) FROM {table}"
        self.watermark: int | None = None
        self.gaps: dict[int, float] = {}

    def statement(self) -> tuple[str, dict]:
        """The read that brings the tail; before the first, the latest key, to start from."""
        if self.watermark is None:
            return self.latest_sql, {}
        gaps = sorted(self.gaps)[:GAP_SLOTS]
        return self.sql, {"after": self.watermark, **{f"gap{slot}": gaps[slot] if slot < len(gaps) else None
                                                       for slot in range(GAP_SLOTS)}}

    def take(self, rows: list[tuple], *, asked_after: int | None) -> list[tuple] | None:
        """The rows to apply, from a read made with the watermark `asked_after`; None when the
        tail cannot vouch for them (too far behind, too many gaps, or another thread moved it)."""
        if (asked_after is None) != (self.watermark is None):
            return None
        now = time.monotonic()
        if asked_after is None:
            # Keys just below the latest may still be uncommitted (PostgreSQL): ask for them again a while.
            latest = rows[0][0]
            self.watermark = latest
            self.gaps = {key: now for key in range(max(1, latest - GAP_SLOTS // 2 + 1), latest + 1)}
            return []
        if len(rows) >= TAIL_LIMIT:
            return None
        for key in [key for key, noticed in self.gaps.items() if now - noticed > GAP_SECONDS]:
            del self.gaps[key]
        expected = self.watermark + 1
        for row in rows:
            key = row[0]
            self.gaps.pop(key, None)
            if key > self.watermark:
                for missing in range(expected, key):
                    self.gaps[missing] = now
                expected = key + 1
                self.watermark = key
        return rows if len(self.gaps) <= GAP_SLOTS else None

    def reset(self) -> None:
        self.watermark = None
        self.gaps.clear()
