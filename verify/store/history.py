"""History: capped counts of earlier signups per key and window, first sightings, and reputation.

Each key is read by one backward scan of its `(key, occurred_at)` index: the most recent
`cap` signups of the long window, newest first, counted per window with `FILTER`. The newest
`cap` rows hold the newest `cap` of every shorter window, so each window's count is the
capped count it would be alone. The distinct counts (a phone's other mailboxes, a block's
other numbers) read their second column from the same index, never from the table.

The statements are plain SQL for the driver (store/driver.py): every key always appears, a
key the signup lacks is bound to NULL and matches nothing, so one statement text (under 4 KB
and 50 parameters) serves every signup and is prepared once per connection.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from verify.store.driver import Driver

WINDOW_NAMES = ("short", "medium", "long")

# name -> (the columns its scan is keyed by, in its index's order; the column counted distinct
# or None; the parameters it needs)
HISTORY_KEYS: dict[str, tuple[str, str | None, tuple[str, ...]]] = {
    "email_canonical": ("email_canonical", None, ("email_canonical",)),
    # Case is how people type, not how farms alias: only another spelling counts as a variant.
    # `email` is stored normalised (identity.email_key), so plain inequality agrees on both databases.
    "email_variants": ("email_canonical", None, ("email_canonical",)),
    "email_domain": ("email_domain", None, ("email_domain",)),
    "local_template": ("local_template, email_domain", None, ("local_template", "email_domain")),
    # A phone, device or card is counted by the other mailboxes it signed up, a block by its other numbers.
    "phone": ("phone_e164", "email_canonical", ("phone_e164",)),
    "phone_block": ("phone_block", "phone_e164", ("phone_block",)),
    "ip": ("ip", None, ("ip",)),
    "ip_network": ("ip_network", None, ("ip_network",)),
    "asn": ("asn", None, ("asn",)),
    "device": ("device_id", "email_canonical", ("device_id",)),
    "payment": ("payment_fingerprint", "email_canonical", ("payment_fingerprint",)),
}
# The parameters each scan's key is bound to, in its index's order.
KEY_PARAMS = {"email_canonical": ":email_canonical", "email_variants": ":email_canonical", "email_domain": ":email_domain",
              "local_template": ":local_template, :template_domain", "phone": ":phone_e164", "phone_block": ":phone_block",
              "ip": ":ip", "ip_network": ":ip_network", "asn": ":asn", "device": ":device_id", "payment": ":payment_fingerprint"}
# What a scan leaves out: another spelling only, other mailboxes, other numbers.
SCAN_FILTER = {"email_variants": "email <> :email", "phone": "coalesce(email_canonical, '') <> :mailbox",
               "phone_block": "coalesce(phone_e164, '') <> :number",
               "device": "coalesce(email_canonical, '') <> :mailbox",
               "payment": "coalesce(email_canonical, '') <> :mailbox"}
KEY_COLUMNS = ("email_canonical", "email_domain", "local_template", "phone_e164", "phone_block", "ip", "ip_network", "asn",
               "device_id", "payment_fingerprint")


def _scan(name: str) -> str:
    # The key and the window as one row-value range over the key's (key, occurred_at) index:
    # no other index can serve it, not even the plain `occurred_at` one, which a generic plan
    # made while the table was empty had walked for the `ip` scan.
    key, distinct, _ = HISTORY_KEYS[name]
    params = KEY_PARAMS[name]
    counted = "DISTINCT v" if distinct else "*"
    if name == "email_variants":  # shown for the long window only
        windows = "NULL,NULL,count(*)"
    else:
        windows = f"count({counted}) FILTER(WHERE t>=:short),count({counted}) FILTER(WHERE t>=:medium),count({counted})"
    # (Separators without spaces: eleven scans of this shape must stay under 4 KB, see COUNTS.)
    where = f"({key},occurred_at) >= ({params},:long) AND ({key},occurred_at) < ({params},:end)"
    if name in SCAN_FILTER:
        where += f" AND {SCAN_FILTER[name]}"
    order = ",".join(f"{column.strip()} DESC" for column in key.split(","))
    # Each row names its scan by position (SCANNED): names spelled out took the statement past 4 KB.
    selected = f"occurred_at AS t, {distinct} AS v" if distinct else "occurred_at AS t"
    return (f"SELECT {SCANNED.index(name)}, {windows} FROM (SELECT {selected} FROM assessments "
            f"WHERE {where} ORDER BY {order}, occurred_at DESC LIMIT :cap) r")


SCANNED = tuple(HISTORY_KEYS)
# Under 4 KB and 50 parameters as psycopg receives it (`%(name)s`): psycopg splits a statement
# beyond either again on every call, instead of once per process (tests/store/test_recent.py).
COUNTS = "\nUNION ALL ".join(_scan(name) for name in HISTORY_KEYS)

# The same row-value ranges, from the first moment a column can hold (FIRST_MOMENT).
FIRST_SEEN = ("SELECT occurred_at FROM assessments WHERE (email_domain, occurred_at) >= (:email_domain, :first) "
              "AND (email_domain, occurred_at) < (:email_domain, :end) ORDER BY email_domain, occurred_at LIMIT 1")
FIRST_MOMENT = datetime(1, 1, 1, tzinfo=timezone.utc)


def _recent(column: str) -> str:
    # seq breaks ties in arrival order, so both databases sample the same signups.
    return (f"SELECT * FROM (SELECT '{column}' AS k, id, occurred_at, verdict FROM assessments "
            f"WHERE ({column}, occurred_at) >= (:{column}, :first) AND ({column}, occurred_at) < (:{column}, :end) "
            f"ORDER BY {column} DESC, occurred_at DESC, seq DESC LIMIT :sample) AS r_{column}")


REPUTATION_COLUMNS = ("email_domain", "ip_network", "asn", "device_id")
# Only the latest label given by `end` is read, one index seek per sampled signup, so the cost
# does not grow with the feedback an assessment has (3,000 notes on one assessment once made
# its neighbours' assessments 12 times slower).
REPUTATION = (
    "SELECT recent.k, recent.occurred_at, recent.verdict, (SELECT label FROM feedback WHERE assessment_id = recent.id "
    "AND created_at <= :end ORDER BY created_at DESC, id DESC LIMIT 1) FROM ("
    + " UNION ALL ".join(_recent(column) for column in REPUTATION_COLUMNS)
    + ") AS recent"
)


def counted_names(keys: Mapping[str, Any]) -> tuple[str, ...]:
    """The history keys this signup has (`keys` by Assessment column name)."""
    return tuple(name for name, (_, _, needs) in HISTORY_KEYS.items() if all(keys.get(need) is not None for need in needs))


# The column each scan is keyed by first (its parameter has the same name): bound to NULL, it
# leaves the scan empty (the counts come from memory), and the hot keys are kept by it (store/recent.py).
KEY_COLUMN = {name: key.split(",")[0] for name, (key, _, _) in HISTORY_KEYS.items()}


def counts_params(keys: Mapping[str, Any], *, email: str, windows: Mapping[str, int], end: datetime, cap: int,
                  skip: set[str] = frozenset()) -> dict[str, Any]:
    """The COUNTS parameters; the names in `skip` are not scanned (their counts are known otherwise)."""
    params: dict[str, Any] = {column: keys.get(column) for column in KEY_COLUMNS}
    params["template_domain"] = keys.get("email_domain")
    for name in skip:
        params[KEY_COLUMN[name]] = None
    params.update(
        email=email,
        mailbox=keys.get("email_canonical") or "",
        number=keys.get("phone_e164") or "",
        end=end,
        cap=cap,
        **window_starts(windows, end),
    )
    return params


def window_starts(windows: Mapping[str, int], end: datetime) -> dict[str, datetime]:
    return {window: end - timedelta(seconds=windows[window]) for window in WINDOW_NAMES}


def read_counts(rows: list[tuple], names: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """Counts per key and window, for the keys the signup has."""
    counts: dict[str, dict[str, int]] = {}
    for scanned, short, medium, long in rows:
        name = SCANNED[scanned]
        if name in names:
            counts[name] = {"long": int(long)} if name == "email_variants" else {"short": int(short), "medium": int(medium), "long": int(long)}
    return {name: counts[name] for name in names}


def reputation_params(values: Mapping[str, Any], *, end: datetime, sample: int, skip: set[str] = frozenset()) -> dict[str, Any]:
    """The REPUTATION parameters; the key columns in `skip` are not sampled (their sample is known otherwise)."""
    return {**{column: None if column in skip else values.get(column) for column in REPUTATION_COLUMNS}, "end": end,
            "first": FIRST_MOMENT, "sample": sample}


def read_reputation(rows: list[tuple], columns: tuple[str, ...], driver: Driver) -> dict[str, list[tuple[datetime, str, str | None]]]:
    """Per key column: (occurred_at, verdict, latest feedback label by `end`) of its most recent earlier signups."""
    evidence: dict[str, list[tuple[datetime, str, str | None]]] = {column: [] for column in columns}
    for column, occurred_at, verdict, label in rows:
        if column in evidence:
            evidence[column].append((driver.moment(occurred_at), verdict, label))
    return evidence
