"""Revisions over HTTP: later evidence re-judges earlier signups; the feed tells the backend, in order."""

from __future__ import annotations

import pytest

from tests.support.history_traffic import codes, post, pretend_geoip
from verify.revising import run_due

OFFICE, CARRIER_NAT, HOME = "38.100.20.5", "172.56.16.10", "73.50.1.1"
NETWORKS = {
    "38.100.20.0/24": {"asn": 174, "country": "US", "connection_type": "Corporate"},
    "172.56.16.0/24": {"asn": 21928, "country": "US", "connection_type": "Cellular"},
    "73.0.0.0/8": {"asn": 7922, "country": "US"},
}


@pytest.fixture(autouse=True)
def networks(services):
    pretend_geoip(services, NETWORKS)


def label(client, headers, assessment_id: str, value: str = "fraud", source: str = "review") -> None:
    response = client.post(f"/v1/assessments/{assessment_id}/feedback", json={"label": value, "source": source}, headers=headers)
    assert response.status_code == 201, response.get_json()


def read(client, headers, assessment_id: str) -> dict:
    response = client.get(f"/v1/assessments/{assessment_id}", headers=headers)
    assert response.status_code == 200
    return response.get_json()


def follow_feed(client, headers, *, limit: int = 2, cursor: str | None = None) -> tuple[list[dict], str | None]:
    """Every revision after `cursor`, page by page, as a poller sees them."""
    seen = []
    while True:
        query = {"limit": limit, **({"after": cursor} if cursor else {})}
        page = client.get("/v1/revisions", query_string=query, headers=headers).get_json()
        seen += page["items"]
        if not page["items"]:
            return seen, cursor
        cursor = page["next_cursor"]


def test_a_fraud_label_revises_the_campaign_and_no_honest_neighbour(client, assess_headers, admin_headers, services):
    signup = lambda email, minutes, **fields: post(client, assess_headers, email, minutes, **fields)  # noqa: E731
    campaign = {
        "c1": signup("farm.a1@gmail.com", 0, ip=OFFICE, device_id="farm-dev", payment_fingerprint="fp_farm", external_id="acct-c1"),
        "c2": signup("farm.b2@gmail.com", 10, ip=CARRIER_NAT, device_id="farm-dev"),
        "c3": signup("farm.c3@gmail.com", 20, ip="73.1.2.3", device_id="farm-dev-2", payment_fingerprint="fp_farm"),
        "c4": signup("f.a.r.m.a1@gmail.com", 30, ip="73.1.2.4", device_id="farm-dev-3"),
        "c5": signup("farm.d4@gmail.com", 40, ip="73.1.2.5", device_id="farm-dev"),
    }
    honest = {
        "office colleague": signup("alice.adams@gmail.com", 5, ip=OFFICE),
        "office colleague 2": signup("bob.baker@gmail.com", 15, ip=OFFICE),
        "carrier NAT": signup("carla.chen@gmail.com", 12, ip=CARRIER_NAT, phone="+14155550123"),
        "family laptop": signup("dev.diaz@gmail.com", 8, ip=HOME, device_id="family-laptop"),
        "family laptop 2": signup("elena.diaz@gmail.com", 28, ip=HOME, device_id="family-laptop"),
    }
    assert [campaign[name]["verdict"] for name in ("c1", "c2", "c3", "c5")] == ["allow"] * 4  # they looked clean
    assert all(item["verdict"] == "allow" for item in honest.values()), {k: v["reasons"] for k, v in honest.items()}

    label(client, admin_headers, campaign["c2"]["id"])
    label(client, admin_headers, campaign["c1"]["id"], source="chargeback")
    assert run_due(services.database) == 5

    feed, _ = follow_feed(client, assess_headers)
    by_id = {item["assessment_id"]: item for item in feed}
    assert set(by_id) == {item["id"] for item in campaign.values()}
    assert [item["sequence"] for item in feed] == sorted(item["sequence"] for item in feed)
    assert len({item["sequence"] for item in feed}) == len(feed)
    for item in feed:
        assert item["verdict"] == "deny" and item["previous_verdict"] in ("allow", "challenge")
        assert item["cause"]["kind"] == "feedback"
        assert "cluster.fraud_label" in codes(item)
    # c1 was revised by the label on c2 (one device), before its own label: once, not twice.
    assert by_id[campaign["c1"]["id"]]["cause"]["ref"] == campaign["c2"]["id"]
    assert by_id[campaign["c1"]["id"]]["external_id"] == "acct-c1"
    assert by_id[campaign["c3"]["id"]]["cause"]["ref"] == campaign["c1"]["id"]  # the payment card

    shown = read(client, assess_headers, campaign["c1"]["id"])
    assert (shown["verdict"], shown["current_verdict"]) == ("allow", "deny")  # the stored verdict stays as judged
    assert [revision["id"] for revision in shown["revisions"]] == [by_id[campaign["c1"]["id"]]["id"]]
    for item in honest.values():
        shown = read(client, assess_headers, item["id"])
        assert shown["current_verdict"] == "allow" and shown["revisions"] == []


def test_a_weak_link_revises_only_an_identity_that_corroborates(client, assess_headers, admin_headers, services):
    # One block of numbers: the farm's numbers are sequential (phone.range_burst); a neighbour's is not.
    farm = [post(client, assess_headers, f"seq{n}.x@gmail.com", n, phone=f"+1415555{1000 + n:04d}", ip=f"73.9.9.{n + 1}")
            for n in range(6)]
    neighbour = post(client, assess_headers, "nils.novak@gmail.com", 7, phone="+14155551999", ip="73.9.8.1")
    assert "phone.range_burst" in codes(farm[5]) and "phone.range_burst" in codes(neighbour)
    honest_neighbour = post(client, assess_headers, "ines.ito@gmail.com", 1, phone="+14155551500", ip="73.9.7.1")
    label(client, admin_headers, farm[5]["id"])
    run_due(services.database)
    feed, _ = follow_feed(client, assess_headers, limit=50)
    revised = {item["assessment_id"] for item in feed}
    assert honest_neighbour["id"] not in revised  # shares only the block, and nothing of its own says fraud
    assert {farm[n]["id"] for n in (3, 4, 5)} <= revised


def test_only_a_legitimate_label_lowers_a_verdict_and_only_its_own(client, assess_headers, admin_headers, services):
    challenged = post(client, assess_headers, "hiro.ito@gmail.com", 0, device_id="shared-dev")
    for n in range(4):
        post(client, assess_headers, f"family{n}.ito@gmail.com", 10 + n, device_id="shared-dev")
    fourth = post(client, assess_headers, "family9.ito@gmail.com", 20, device_id="shared-dev")
    assert fourth["verdict"] == "challenge" and "device.reuse" in codes(fourth)
    label(client, assess_headers, fourth["id"], "legitimate", source="challenge")
    assert run_due(services.database) == 1
    feed, cursor = follow_feed(client, assess_headers)
    assert [(item["assessment_id"], item["previous_verdict"], item["verdict"], item["reasons"]) for item in feed] == [
        (fourth["id"], "challenge", "allow", [])
    ]
    # A fraud label on a device-mate later: the vouched-for one is not raised again.
    label(client, admin_headers, challenged["id"])
    run_due(services.database)
    later, _ = follow_feed(client, assess_headers, cursor=cursor)
    assert fourth["id"] not in {item["assessment_id"] for item in later}
    assert all(item["verdict"] != "allow" for item in later)


def test_a_new_deny_list_entry_revises_the_stored_assessments_it_matches(client, assess_headers, admin_headers, services):
    hit = post(client, assess_headers, "kofi.khan@gmail.com", 0, device_id="bad-dev-7")
    miss = post(client, assess_headers, "lena.lopez@gmail.com", 1, device_id="good-dev-8")
    network = post(client, assess_headers, "marta.moreau@gmail.com", 2, ip="73.20.30.40")
    response = client.post("/v1/lists/blocked-devices/entries", json={"values": ["bad-dev-7"]}, headers=admin_headers)
    assert response.status_code == 200, response.get_json()
    response = client.post("/v1/lists/blocked-ips/entries", json={"values": ["73.20.30.0/24"]}, headers=admin_headers)
    assert response.status_code == 200, response.get_json()
    assert run_due(services.database) == 2
    feed, _ = follow_feed(client, assess_headers)
    assert [(item["assessment_id"], item["cause"]) for item in feed] == [
        (hit["id"], {"kind": "list", "ref": "blocked-devices:bad-dev-7"}),
        (network["id"], {"kind": "list", "ref": "blocked-ips:73.20.30.0/24"}),
    ]
    assert all(item["verdict"] == "deny" and "cluster.list_match" in codes(item) for item in feed)
    assert read(client, assess_headers, miss["id"])["revisions"] == []


def test_the_drain_pauses_between_passes_and_a_pause_can_end_the_round(client, assess_headers, services):
    """`verify serve`'s drain waits DRAIN_PASS_PAUSE between passes (on its stop flag): passes
    back to back took the CPU and SQLite's write lock from the signups for 100 ms and more."""
    for n in range(8):
        post(client, assess_headers, f"p{n}.pause@gmail.com", n, device_id="pause-pc")
    pauses = []
    assert run_due(services.database, batch=3, pause=lambda: pauses.append(1) or False) == 7
    assert len(pauses) == 3  # after each of the three passes that found work (the fourth found none)
    for n in range(8):
        post(client, assess_headers, f"q{n}.pause@gmail.com", n, device_id="stop-pc")
    assert run_due(services.database, batch=3, pause=lambda: True) == 3  # told to stop: the round ends
    assert run_due(services.database, batch=3) == 4  # the rest on the next round


def test_a_cluster_reaching_its_limit_revises_its_earlier_members_in_batches(client, assess_headers, services):
    members = [post(client, assess_headers, f"m{n}.member@gmail.com", n, device_id="cafe-pc") for n in range(8)]
    family = [post(client, assess_headers, f"k{n}.kin@gmail.com", n, device_id="kin-laptop") for n in range(4)]
    assert run_due(services.database, batch=3, max_batches=1) == 3  # one batch: bounded work per step
    assert run_due(services.database, batch=3) == 4
    feed, _ = follow_feed(client, assess_headers, limit=3)
    assert [item["assessment_id"] for item in feed] == [member["id"] for member in members[:7]]
    assert all(item["cause"] == {"kind": "cluster", "ref": members[7]["id"]} for item in feed)
    assert all("cluster.limit" in codes(item) for item in feed)
    assert {item["assessment_id"] for item in feed}.isdisjoint(member["id"] for member in family)


def test_the_feed_is_for_assess_and_admin_keys_and_refuses_forged_cursors(client, assess_headers, admin_headers, keys):
    empty = client.get("/v1/revisions", headers=assess_headers)
    assert empty.status_code == 200 and empty.get_json()["items"] == []
    assert client.get("/v1/revisions", headers=admin_headers).status_code == 200
    assert client.get("/v1/revisions").status_code == 401
    forged = client.get("/v1/revisions", query_string={"after": "bm90LWEtY3Vyc29y"}, headers=assess_headers)
    assert forged.status_code == 422
    assert [error["field"] for error in forged.get_json()["errors"]] == ["after"]  # the parameter's own name
    again = client.get("/v1/revisions", query_string={"after": empty.get_json()["next_cursor"]}, headers=assess_headers)
    assert again.status_code == 200 and again.get_json()["items"] == []


def test_erasure_removes_revisions_and_the_jobs_of_the_erased(client, assess_headers, admin_headers, services):
    first = post(client, assess_headers, "omar.okafor@gmail.com", 0, device_id="dev-e")
    second = post(client, assess_headers, "priya.park@gmail.com", 1, device_id="dev-e")
    label(client, admin_headers, first["id"])
    run_due(services.database)
    assert len(follow_feed(client, assess_headers)[0]) == 2
    label(client, admin_headers, second["id"])  # queued, not yet run
    client.post("/v1/erasure", json={"email": "priya.park@gmail.com"}, headers=admin_headers)
    assert run_due(services.database) == 0
    assert [item["assessment_id"] for item in follow_feed(client, assess_headers)[0]] == [first["id"]]


def test_policy_simulation_reports_revisions(client, assess_headers, admin_headers, services):
    first = post(client, assess_headers, "quinn.quist@gmail.com", 0, device_id="dev-s")
    post(client, assess_headers, "rosa.rossi@gmail.com", 1, device_id="dev-s")
    label(client, admin_headers, first["id"])
    run_due(services.database)
    policy = client.get("/v1/policy", headers=admin_headers).get_json()
    policy["points"]["cluster.fraud_label"] = 0
    result = client.post("/v1/policy/simulate", json=policy, headers=admin_headers).get_json()
    assert result["revisions"]["evaluated"] == 2
    assert result["revisions"]["transitions"] == {"deny->allow": 2}


def test_a_replay_of_the_same_traffic_and_feedback_gives_the_same_revisions(settings, sqlite_template, tmp_path):
    import shutil

    from tests.support.contract import ContractClient
    from verify.app import create_app
    from verify.store.keys import create_api_key

    def replay(run: int) -> list[tuple]:
        path = tmp_path / f"replay-{run}.db"
        shutil.copy(sqlite_template, path)
        app = create_app(settings.with_overrides(database_url=f"sqlite:///{path}"))
        app.test_client_class = ContractClient
        services = app.extensions["verify"]
        pretend_geoip(services, NETWORKS)
        with services.database.transaction() as session:
            headers = {"Authorization": f"Bearer {create_api_key('replay', ['assess', 'admin'], session=session)}"}
        client = app.test_client()
        ids = {}
        for n in range(10):
            body = post(client, headers, f"member{n}.x@gmail.com", n * 7, device_id=f"dev-{n % 3}", external_id=f"acct-{n}",
                        payment_fingerprint=f"fp-{n % 4}", ip=CARRIER_NAT if n % 2 else OFFICE)
            ids[n] = body["id"]
        label(client, headers, ids[4])
        label(client, headers, ids[7], source="chargeback")
        run_due(services.database, batch=2)
        feed, _ = follow_feed(client, headers)
        services.database.dispose()
        external = {assessment_id: f"acct-{n}" for n, assessment_id in ids.items()}

        def portable(text: str) -> str:  # ids are new in each run; the accounts are the same
            for assessment_id, account in external.items():
                text = text.replace(assessment_id, account)
            return text

        return [(item["sequence"], item["external_id"], item["previous_verdict"], item["verdict"],
                 [(reason["code"], reason["points"], portable(reason["detail"])) for reason in item["reasons"]],
                 item["cause"]["kind"], external[item["cause"]["ref"]]) for item in feed]

    first = replay(1)
    assert first and replay(2) == first


def test_a_wider_or_narrower_network_entry_revises_what_it_covers(client, assess_headers, admin_headers, services):
    inside_wide = post(client, assess_headers, "nina.novak@gmail.com", 0, ip="73.20.30.40")
    inside_narrow = post(client, assess_headers, "omar.ortiz@gmail.com", 1, ip="74.9.9.5")
    outside = post(client, assess_headers, "pia.park@gmail.com", 2, ip="74.9.9.200")
    for value in ("73.20.28.0/22", "74.9.9.0/28", "10.0.0.0/8"):
        response = client.post("/v1/lists/blocked-ips/entries", json={"values": [value]}, headers=admin_headers)
        assert response.status_code == 200, response.get_json()
    run_due(services.database)
    feed, _ = follow_feed(client, assess_headers)
    assert sorted(item["assessment_id"] for item in feed) == sorted([inside_wide["id"], inside_narrow["id"]])
    assert read(client, assess_headers, outside["id"])["revisions"] == []


def queue_cluster(client, assess_headers, admin_headers, size: int) -> list[str]:
    """`size` signups from one device, the first labelled fraud: one job that revises them all."""
    ids = [post(client, assess_headers, f"member.{n}@gmail.com", n, ip=HOME, device_id="shared-dev")["id"] for n in range(size)]
    label(client, admin_headers, ids[0])
    return ids


def test_a_batch_is_judged_with_no_write_lock_held_on_sqlite(client, assess_headers, admin_headers, services, monkeypatch):
    """SQLite has one write lock, and every signup's commit waits behind it: a batch is read and
    re-judged with the lock free, and only its writing takes it."""
    if services.database.dialect != "sqlite":
        pytest.skip("PostgreSQL locks the job's row only")
    import sqlite3

    from verify import revising

    queue_cluster(client, assess_headers, admin_headers, 4)
    path = services.database.engine.url.database
    free_while_judging = []
    rejudge = revising.judging.rejudge

    def rejudge_and_try_to_write(*args, **kwargs):
        probe = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            free_while_judging.append(True)
        except sqlite3.OperationalError:  # database is locked
            free_while_judging.append(False)
        finally:
            probe.close()
        return rejudge(*args, **kwargs)

    monkeypatch.setattr(revising.judging, "rejudge", rejudge_and_try_to_write)
    assert run_due(services.database) == 4
    assert free_while_judging and all(free_while_judging), free_while_judging


def test_a_batch_whose_job_another_drainer_moved_meanwhile_is_read_again(client, assess_headers, admin_headers, services,
                                                                          monkeypatch):
    """Two drainers on one job: each revision is recorded once, whoever wins the job's next batch."""
    from verify import revising

    ids = queue_cluster(client, assess_headers, admin_headers, 6)
    rejudge = revising.judging.rejudge
    interleaved: list[int] = []

    def another_drainer_first(*args, **kwargs):
        if not interleaved:
            interleaved.append(0)  # the other drainer judges with the real rejudge
            monkeypatch.setattr(revising.judging, "rejudge", rejudge)
            interleaved[0] = run_due(services.database, batch=2, max_batches=1)
        return rejudge(*args, **kwargs)

    monkeypatch.setattr(revising.judging, "rejudge", another_drainer_first)
    recorded = run_due(services.database, batch=2)
    assert interleaved  # the other drainer ran while this one judged
    assert interleaved[0] + recorded == 6
    feed, _ = follow_feed(client, assess_headers, limit=50)
    assert sorted(item["assessment_id"] for item in feed) == sorted(ids)
    assert run_due(services.database) == 0


def test_jobs_judged_in_one_pass_build_on_each_other(client, assess_headers, admin_headers, services):
    """A device reaching its cluster limit raises its earlier signups to challenge; a fraud label
    on one of them, judged in the same pass (on SQLite read together, then written together),
    raises them on to deny: the second job is judged on what the first made of them."""
    ids = [post(client, assess_headers, f"p{n}.q{n * 3}@gmail.com", n * 5, ip=HOME if n % 2 else OFFICE,
                device_id="dev-x")["id"] for n in range(8)]
    label(client, admin_headers, ids[2])
    assert run_due(services.database, batch=200, max_batches=1) == 11  # both jobs, one pass
    feed, _ = follow_feed(client, assess_headers, limit=50)
    steps: dict[int, list] = {}
    for item in feed:
        steps.setdefault(ids.index(item["assessment_id"]), []).append((item["previous_verdict"], item["verdict"], item["cause"]["kind"]))
    for n in (0, 1, 2):
        assert steps[n] == [("allow", "challenge", "cluster"), ("challenge", "deny", "feedback")], steps
    assert run_due(services.database) == 0


def test_jobs_with_nothing_to_record_move_on_together_up_to_one_another_drainer_moved(client, assess_headers, services,
                                                                                     monkeypatch):
    """SQLite moves a pass's jobs that record nothing on in one transaction: those before a job
    another drainer moved meanwhile stay moved, the ones after it are read again, none twice."""
    if services.database.dialect != "sqlite":
        pytest.skip("PostgreSQL locks the job's row only")
    import sqlalchemy as sa

    from verify import revising
    from verify.store.models import RevisionJob, utcnow

    for n in range(4):  # allowed signups vouched for: four jobs, each with nothing to lower
        signup = post(client, assess_headers, f"quiet{n}.person@gmail.com", n, ip=HOME, device_id=f"own-{n}")
        assert signup["verdict"] == "allow"
        label(client, assess_headers, signup["id"], "legitimate", source="challenge")
    advance = revising.advance_seen_job
    calls: list[int] = []

    def third_moved_by_another_drainer(seen, position, *, session):
        if len(calls) == 2:  # the other drainer finished it between this one's read and write
            jobs = RevisionJob.__table__.c
            session.execute(sa.update(RevisionJob.__table__).where(jobs.id == seen.id)
                            .values(attempts=jobs.attempts + 1, done_at=utcnow()))
        calls.append(seen.id)
        return advance(seen, position, session=session)

    monkeypatch.setattr(revising, "advance_seen_job", third_moved_by_another_drainer)
    assert run_due(services.database) == 0
    with services.database.transaction() as session:
        jobs = session.execute(sa.select(RevisionJob.id, RevisionJob.attempts, RevisionJob.done_at)
                               .order_by(RevisionJob.id)).all()
    assert [job_id for job_id, _, _ in jobs] == calls  # each read and written once: the fourth in the next pass
    assert all(attempts == 1 and done_at is not None for _, attempts, done_at in jobs)
