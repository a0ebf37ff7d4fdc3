"""The hot keys' counts from memory (store/recent.py) are the SQL scans' counts (store/history.py).

Stored signups share a few values of every key, some dated in the past; the index loads every
key, more signups arrive through its tail, and every history name of every probe is counted both
ways. Where memory cannot tell, it must say so (None), never guess.
"""

from __future__ import annotations

import random
import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from psycopg._queries import MAX_CACHED_STATEMENT_LENGTH, MAX_CACHED_STATEMENT_PARAMS

from verify.store import history as stored
from verify.store import recent
from verify.store.assessments import INSERT_ASSESSMENT, NewAssessment
from verify.store.driver import _pyformat, pooled_driver
from verify.store.recent import HOT_AT, RecentIndex, window_of
from verify.store.stamps import ASSESSMENTS_STAMP, READ_STAMPS

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
WINDOWS = {"short": 3600, "medium": 86400, "long": 30 * 86400}
CAP = 40


def signup_keys(rng: random.Random) -> dict:
    def maybe(values):
        return rng.choice(values) if rng.random() < 0.9 else None

    mailbox = rng.choice([f"m{n}@farm.test" for n in range(6)])
    return {
        "email": rng.choice([mailbox, mailbox.upper().replace("FARM.TEST", "farm.test")]),
        "email_canonical": mailbox,
        "email_domain": "farm.test",
        "local_template": maybe(["a9", "a99"]),
        "phone_e164": maybe([f"+1415555000{n}" for n in range(5)]),
        "phone_block": maybe(["+1415555", "+1415556"]),
        "ip": maybe(["45.61.160.1", "45.61.160.2"]),
        "ip_network": maybe(["45.61.160.0/24"]),
        "asn": maybe([64500, 64501]),
        "device_id": maybe(["emu-1", "emu-2", "emu-3"]),
        "payment_fingerprint": maybe(["card-1", "card-2"]),
    }


def stored_row(rng: random.Random, at: datetime) -> dict:
    keys = signup_keys(rng)
    row = NewAssessment(
        id=str(uuid.uuid4()), created_at=at, occurred_at=at, verdict="allow", score=0, policy_version=1, api_key_id=None,
        idempotency_key=None, request_hash=None, phone=keys["phone_e164"], country=None, user_agent=None, external_id=None,
        metadata_=None, reasons=[], signals={}, **keys,
    )
    return row.values()


def moments(rng: random.Random, count: int) -> list[datetime]:
    # Most in the last day, some weeks back, a few at the same microsecond.
    found = []
    for _ in range(count):
        back = rng.choice([rng.uniform(0, 3600), rng.uniform(0, 86400), rng.uniform(0, 40 * 86400)])
        found.append(NOW - timedelta(seconds=round(back, 3)))
    return found + found[:5]


def sql_counts(driver, keys: dict, end: datetime) -> dict:
    [rows] = driver.read([(stored.COUNTS, stored.counts_params(keys, email=keys["email"], windows=WINDOWS, end=end, cap=CAP))])
    return stored.read_counts(rows, stored.counted_names(keys))


FEEDBACK = ("INSERT INTO feedback (assessment_id, label, source, note, actor, created_at) "
            "VALUES (:assessment_id, :label, 'challenge', NULL, 'test', :created_at)")


def label_some(driver, rng: random.Random, rows: list[dict]) -> None:
    """Feedback on a third of the rows, some of it given after the probes' ends, some twice."""
    given = []
    for row in rows:
        if rng.random() < 0.33:
            for _ in range(rng.choice([1, 1, 2])):
                later = row["occurred_at"] + timedelta(minutes=rng.choice([1, 90, 3000]))
                given.append({"assessment_id": row["id"], "label": rng.choice(["fraud", "legitimate"]), "created_at": later})
    driver.write([(FEEDBACK, given)])


def sql_samples(driver, keys: dict, end: datetime) -> dict:
    [rows] = driver.read([(stored.REPUTATION, stored.reputation_params(keys, end=end, sample=SAMPLE))])
    return stored.read_reputation(rows, stored.REPUTATION_COLUMNS, driver)


SAMPLE = 12


def round_trip(index: RecentIndex, driver, keys: dict) -> None:
    batch, plan = index.statements(keys, cap=CAP)
    stamps = dict(driver.read([(READ_STAMPS, {})])[0])
    index.absorb(driver.read(batch) if batch else [], plan, cap=CAP, moment=driver.moment, stamp=stamps.get(ASSESSMENTS_STAMP, 0))


def test_memory_counts_are_the_sql_counts(services):
    rng = random.Random(7)
    with pooled_driver(services.database.hot_engine) as driver:
        first = [stored_row(rng, at) for at in moments(rng, 300)]
        driver.write([(INSERT_ASSESSMENT, first)])
        label_some(driver, rng, [{**row, "occurred_at": driver.moment(row["occurred_at"])} for row in first])
        driver.commit()
        index = RecentIndex()
        probes = [signup_keys(rng) for _ in range(40)]
        for keys in probes:  # every key wanted, then loaded at the next round trip that names it
            index.wanted.update(key for key in index._signup_entries(keys))
            round_trip(index, driver, keys)
            round_trip(index, driver, keys)
        assert len(index.entries) > 20
        # More signups arrive after the loads: the tail brings them.
        more = [stored_row(rng, at) for at in moments(rng, 200)]
        driver.write([(INSERT_ASSESSMENT, more)])
        label_some(driver, rng, [{**row, "occurred_at": driver.moment(row["occurred_at"])} for row in first + more])
        driver.commit()
        answered = sampled = 0
        for keys in probes:
            round_trip(index, driver, keys)
            for end in (NOW + timedelta(seconds=1), NOW - timedelta(hours=2), NOW - timedelta(days=20)):
                expected = sql_counts(driver, keys, end)
                window = window_of(stored.window_starts(WINDOWS, end), end, CAP)
                for name in index.kept(keys, ())[0]:
                    found = index.counts(name, keys, window, email=keys["email"])
                    if found is not None:
                        answered += 1
                        assert found == expected[name], (name, end, keys)
                samples = sql_samples(driver, keys, end)
                for column in index.kept(keys, stored.REPUTATION_COLUMNS)[1]:
                    found = index.reputation(column, keys, end=end, sample=SAMPLE)
                    if found is not None:
                        sampled += 1
                        assert found == samples[column], (column, end, keys)
        assert answered > 300 and sampled > 60


def test_a_key_dated_before_its_kept_rows_is_left_to_sql(services):
    rng = random.Random(3)
    keys = signup_keys(rng) | {"ip": "198.51.100.7"}
    rows = []
    for n in range(3 * CAP):  # more than the index keeps (2 × cap) of one key
        row = stored_row(rng, NOW - timedelta(minutes=n))
        row["ip"] = "198.51.100.7"
        rows.append(row)
    with pooled_driver(services.database.hot_engine) as driver:
        driver.write([(INSERT_ASSESSMENT, rows)])
        driver.commit()
        index = RecentIndex()
        index.wanted.add(("ip", "198.51.100.7"))
        round_trip(index, driver, keys)
        round_trip(index, driver, keys)
        assert ("ip", "198.51.100.7") in index.entries
        recent_end = NOW + timedelta(seconds=1)
        recent = index.counts("ip", keys, window_of(stored.window_starts(WINDOWS, recent_end), recent_end, CAP), email="")
        assert recent == sql_counts(driver, keys, recent_end)["ip"] == {"short": 40, "medium": 40, "long": 40}
        old_end = NOW - timedelta(minutes=2 * CAP + 30)  # only rows older than those kept count then
        assert index.counts("ip", keys, window_of(stored.window_starts(WINDOWS, old_end), old_end, CAP), email="") is None


def test_erasure_drops_what_the_index_keeps(client, services, admin_headers, assess_headers):
    body = {"email": "erase.me@farm-mail.test", "ip": "203.0.113.9"}
    for n in range(3):
        assert client.post("/v1/assessments", json={**body, "email": f"e{n}@farm-mail.test"}, headers=assess_headers).status_code == 201
    recent = services.assessor.recent
    recent.wanted.add(("ip", "203.0.113.9"))
    assert client.post("/v1/assessments", json=body, headers=assess_headers).status_code == 201
    assert ("ip", "203.0.113.9") in recent.entries
    assert client.post("/v1/erasure", json={"email": "e0@farm-mail.test"}, headers=admin_headers).status_code == 200
    answer = client.post("/v1/assessments", json={**body, "email": "after@farm-mail.test"}, headers=assess_headers).get_json()
    assert answer["signals"]["history"]["counts"]["ip"]["long"] == 3  # four stored, one erased


def test_a_key_the_scans_find_busy_is_wanted_and_a_quiet_one_is_not():
    index = RecentIndex()
    keys = {"ip_network": "45.61.160.0/24", "email_domain": "farm.test", "local_template": "a9", "phone_e164": "+14155550001"}
    index.notice({"ip_network": {"short": 3, "medium": 90, "long": HOT_AT},
                  "local_template": {"short": 0, "medium": 0, "long": HOT_AT - 1},
                  "phone": {"short": 1, "medium": 1, "long": 1}}, keys)
    assert index.wanted == {("ip_network", "45.61.160.0/24")}


def test_a_row_that_comes_again_is_kept_once_and_rows_of_one_moment_stay_in_arrival_order():
    # A load and a tail read under different snapshots (PostgreSQL's pipeline) can both bring a row.
    entry = recent.Entry(keep=10)
    for seq, at in [(5, 100), (7, 100), (6, 100), (3, 90), (7, 100), (9, 120), (5, 100), (3, 90)]:
        entry.add(seq, at, f"id-{seq}", "".join(["de", "ny"]), f"v{seq}")
    assert list(entry.seqs) == [3, 5, 6, 7, 9]
    assert list(entry.times) == [90, 100, 100, 100, 120]
    assert entry.ids == ["id-3", "id-5", "id-6", "id-7", "id-9"] and entry.values == ["v3", "v5", "v6", "v7", "v9"]
    assert all(verdict is entry.verdicts[0] for verdict in entry.verdicts)  # one shared string, not one per row


def test_rows_of_year_1_and_year_9999_fit_the_kept_integers():
    first, last = datetime(1, 1, 1, tzinfo=timezone.utc), datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)
    entry = recent.Entry(keep=10)
    entry.add(2, recent.epoch(last), "id-2", "allow", None)
    entry.add(1, recent.epoch(first), "id-1", "deny", None)
    assert [recent.EPOCH + at * recent.MICROSECOND for at in entry.times] == [first, last]
    assert entry.verdicts == ["deny", "allow"]


def test_trimming_keeps_the_newest_rows_and_says_below_which_moment_they_are_incomplete():
    entry = recent.Entry(keep=4)
    for seq in range(1, 6):
        entry.add(seq, seq * 10, f"id-{seq}", "allow", None)
    assert len(entry.times) == 5  # a quarter over `keep` before trimming
    entry.add(6, 60, "id-6", "allow", None)
    assert list(entry.seqs) == [3, 4, 5, 6] and entry.floor == 21
    entry.add(2, 20, "id-2", "allow", None)  # a late row below the floor is kept, but the floor stays
    assert list(entry.seqs) == [2, 3, 4, 5, 6] and entry.floor == 21


def test_a_full_budget_takes_a_new_key_only_in_place_of_an_idle_one(monkeypatch):
    monkeypatch.setattr(recent, "MAX_ROWS", 20)  # two keys of up to 10 rows (KEEP_FACTOR x cap 5)
    index = RecentIndex()
    index.entries[("ip", "192.0.2.1")] = recent.Entry(keep=10)
    index.entries[("ip", "192.0.2.2")] = recent.Entry(keep=10)
    index.rows = 11  # kept rows count, not keys: one more key of up to 10 rows does not fit
    index.assessments.watermark = index.feedback.watermark = 0
    newcomer = {"ip": "192.0.2.3"}
    index.wanted.add(("ip", "192.0.2.3"))
    assert index.statements(newcomer, cap=5)[1].loads == []  # both in use: the newcomer stays in SQL
    index.entries[("ip", "192.0.2.1")].used -= recent.IDLE_SECONDS + 1
    assert index.statements(newcomer, cap=5)[1].loads == [("ip", "192.0.2.3")]
    index.rows = 10
    assert index.statements(newcomer, cap=5)[1].loads == [("ip", "192.0.2.3")]  # room for it at its most


def test_the_kept_rows_stay_within_the_budget_the_least_recently_used_keys_going_first(services, monkeypatch):
    monkeypatch.setattr(recent, "MAX_ROWS", 3 * recent.KEEP_FACTOR * CAP)
    rng = random.Random(11)
    with pooled_driver(services.database.hot_engine) as driver:
        rows = [stored_row(rng, at) for at in moments(rng, 400)]
        driver.write([(INSERT_ASSESSMENT, rows)])
        driver.commit()
        index = RecentIndex()
        probes = [signup_keys(rng) for _ in range(30)]
        for keys in probes:
            index.wanted.update(index._signup_entries(keys))
            round_trip(index, driver, keys)
            round_trip(index, driver, keys)
            assert index.rows == sum(len(entry.times) for entry in index.entries.values()) <= recent.MAX_ROWS
        assert len(index.entries) >= 3
        # Rows arriving through the tail are counted too, and trimming gives their places back.
        more = [stored_row(rng, NOW + timedelta(seconds=n)) for n in range(300)]
        driver.write([(INSERT_ASSESSMENT, more)])
        driver.commit()
        kept_before = set(index.entries)
        round_trip(index, driver, probes[0])
        assert index.rows == sum(len(entry.times) for entry in index.entries.values()) <= recent.MAX_ROWS
        assert set(index.entries) < kept_before  # the tail's rows outgrew the budget: a key was dropped
        index.clear(index.stamp)
        assert (index.rows, len(index.entries)) == (0, 0)


HOT_PATH_STATEMENTS = {"counts": stored.COUNTS, "reputation": stored.REPUTATION, "first seen": stored.FIRST_SEEN,
                       "insert": INSERT_ASSESSMENT, "stamps": READ_STAMPS,
                       **{f"load {column}": recent.LOADS[column] for column in recent.LOADS},
                       **{f"labels {column}": recent.LOAD_LABELS[column] for column in recent.LOADS}}


@pytest.mark.parametrize("name", sorted(HOT_PATH_STATEMENTS))
def test_hot_path_statements_stay_cacheable_by_psycopg(name):
    # psycopg splits a statement over 4,096 bytes (as sent, `%(name)s` placeholders) or with
    # more than 50 parameters again on every call, instead of once per process.
    sent = _pyformat(HOT_PATH_STATEMENTS[name]).encode()
    assert len(sent) <= MAX_CACHED_STATEMENT_LENGTH
    assert len(set(re.findall(rb"%\((\w+)\)s", sent))) <= MAX_CACHED_STATEMENT_PARAMS


def test_the_counts_parameters_stay_cacheable_by_psycopg():
    keys = {column: "x" for column in stored.KEY_COLUMNS}
    params = stored.counts_params(keys, email="x", windows={"short": 1, "medium": 2, "long": 3},
                                  end=datetime.now(timezone.utc), cap=5)
    assert len(params) <= MAX_CACHED_STATEMENT_PARAMS
