"""GET /metrics: per-route request counts and latency, verdicts, reasons, lookups, list sizes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from prometheus_client.parser import text_string_to_metric_families

from verify import metrics
from verify.store.lists import get_list, insert_entries


def samples(client) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    found = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def test_requests_are_counted_per_url_rule_and_status(client, assess_headers):
    before = samples(client)
    created = client.post("/v1/assessments", json={"email": "metrics.one@example-mail.com"}, headers=assess_headers).get_json()
    client.get(f"/v1/assessments/{created['id']}", headers=assess_headers)
    client.get("/v1/assessments/no-such-id", headers=assess_headers)
    client.get("/no/such/path/alice@example.com")
    after = samples(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    rule = "/v1/assessments/<assessment_id>"
    assert delta("verify_http_requests_total", method="POST", route="/v1/assessments", status="201") == 1
    assert delta("verify_http_requests_total", method="GET", route=rule, status="200") == 1
    assert delta("verify_http_requests_total", method="GET", route=rule, status="404") == 1
    assert delta("verify_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert delta("verify_http_request_duration_seconds_count", method="GET", route=rule, status="404") == 1
    # Raw paths never become labels: the id and the probed address stay out of the exposition.
    text = client.get("/metrics").get_data(as_text=True)
    assert created["id"] not in text and "alice@example.com" not in text


def test_verdicts_and_reasons_are_counted(client, assess_headers):
    before = samples(client)
    client.post("/v1/assessments", json={"email": "someone@mailinator.com"}, headers=assess_headers)
    client.post("/v1/assessments", json={"email": "not-an-address"}, headers=assess_headers)
    client.post("/v1/assessments", json={"email": "plain.person@gmail.com"}, headers=assess_headers)
    after = samples(client)
    assert value(after, "verify_assessments_total", verdict="deny") - value(before, "verify_assessments_total", verdict="deny") == 2
    assert value(after, "verify_assessments_total", verdict="allow") - value(before, "verify_assessments_total", verdict="allow") == 1
    for code in ("email.disposable", "email.invalid"):
        assert value(after, "verify_reasons_total", code=code) - value(before, "verify_reasons_total", code=code) == 1


def test_dns_lookups_and_their_failures_are_counted(client, assess_headers):
    before = samples(client)
    client.post("/v1/assessments", json={"email": "x@acme-corp.io"}, headers=assess_headers)
    client.post("/v1/assessments", json={"email": "x@servfail.com"}, headers=assess_headers)
    after = samples(client)

    def delta(outcome):
        return value(after, "verify_lookups_total", kind="dns_mx", outcome=outcome) - value(
            before, "verify_lookups_total", kind="dns_mx", outcome=outcome
        )

    assert (delta("ok"), delta("failure")) == (1, 1)


def test_record_lookup_is_there_for_geoip_readers():
    before = metrics.collectors().lookups.labels(kind="geoip_city", outcome="failure")._value.get()
    metrics.record_lookup("geoip_city", ok=False)
    assert metrics.collectors().lookups.labels(kind="geoip_city", outcome="failure")._value.get() == before + 1


def test_series_made_again_with_the_collectors_are_the_ones_recorded():
    """`verify serve` makes the collectors again after naming the multiprocess directory: the
    series made for the first ones must not keep receiving what is recorded."""
    metrics.record_request(method="GET", route="/healthz", status=200, seconds=0.001)
    metrics.record_assessment("allow", ["email.invalid"])
    metrics.collectors.cache_clear()
    metrics.record_request(method="GET", route="/healthz", status=200, seconds=0.001)
    metrics.record_request(method="BREW", route="/healthz", status=200, seconds=0.001)
    metrics.record_assessment("allow", ["email.invalid"])
    found = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(metrics.render()[0].decode())
        for sample in family.samples
    }
    assert value(found, "verify_http_requests_total", method="GET", route="/healthz", status="200") == 1
    assert value(found, "verify_http_requests_total", method="other", route="/healthz", status="200") == 1
    assert value(found, "verify_http_request_duration_seconds_count", method="GET", route="/healthz", status="200") == 1
    assert value(found, "verify_assessments_total", verdict="allow") == 1
    assert value(found, "verify_reasons_total", code="email.invalid") == 1


def test_list_sizes_are_published_when_the_index_is_rebuilt(client, assess_headers, services):
    client.post("/v1/assessments", json={"email": "first@example-mail.com"}, headers=assess_headers)
    found = samples(client)
    assert value(found, "verify_list_entries", list="disposable-domains") > 1000  # the seeded package
    with services.database.transaction() as session:
        blocked = get_list("blocked-emails", session=session)
        insert_entries(blocked, ["one@example-mail.com", "two@example-mail.com"], source="test", session=session)
    client.post("/v1/assessments", json={"email": "second@example-mail.com"}, headers=assess_headers)
    assert value(samples(client), "verify_list_entries", list="blocked-emails") == 2


def test_workers_share_one_exposition_under_a_multiprocess_directory(tmp_path):
    """What gunicorn workers do: each process writes its own file; render() sums them."""
    script = textwrap.dedent(
        """
        from verify import metrics
        metrics.record_assessment("deny", ["email.invalid"])
        """
    )
    env = {**os.environ, metrics.MULTIPROC_ENV: str(tmp_path)}
    for _ in range(3):
        subprocess.run([sys.executable, "-c", script], env=env, check=True)
    reader = textwrap.dedent(
        """
        from verify import metrics
        print(metrics.render()[0].decode())
        """
    )
    text = subprocess.run([sys.executable, "-c", reader], env=env, check=True, capture_output=True, text=True).stdout
    totals = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert totals[("verify_assessments_total", (("verdict", "deny"),))] == 3
    assert totals[("verify_reasons_total", (("code", "email.invalid"),))] == 3


def series(client) -> int:
    text = client.get("/metrics").get_data(as_text=True)
    return sum(len(family.samples) for family in text_string_to_metric_families(text) if family.name.startswith("verify_http"))


def test_junk_methods_and_paths_leave_the_number_of_series_bounded(client):
    import random
    import string

    from flask.testing import FlaskClient

    rng = random.Random(2026)
    client.get("/healthz")
    before = series(client)
    # The contract has no operation for a junk method, so these go through a plain client.
    plain = FlaskClient(client.application)
    for _ in range(500):
        method = "".join(rng.choices(string.ascii_uppercase + "-_", k=rng.randint(3, 12)))
        path = "/" + "/".join("".join(rng.choices(string.ascii_lowercase, k=6)) for _ in range(rng.randint(1, 3)))
        response = plain.open(rng.choice([path, "/healthz", "/v1/assessments"]), method=method)
        assert response.status_code in (404, 405) and response.mimetype == "application/problem+json"
    after = series(client)
    # Junk can add at most one method label ("other") to a few (route, status) pairs.
    assert after - before <= 3 * 20
    labels = {
        sample.labels.get("method")
        for family in text_string_to_metric_families(client.get("/metrics").get_data(as_text=True))
        for sample in family.samples
        if family.name.startswith("verify_http")
    }
    assert labels <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}


FRESH_APP = textwrap.dedent(
    """
    import sys
    from verify.app import create_app
    from verify.settings import Settings

    settings = Settings(database_url=sys.argv[1], mx_check=False, geoip_city_db=sys.argv[2], geoip_asn_db=sys.argv[3])
    print(create_app(settings).test_client().get("/metrics").get_data(as_text=True))
    """
)


def fresh_exposition(tmp_path, sqlite_template, geoip_files) -> dict[tuple[str, tuple], float]:
    """/metrics of a process that has answered nothing else yet."""
    import shutil

    path = tmp_path / "fresh.db"
    shutil.copy(sqlite_template, path)
    args = [f"sqlite:///{path}", str(geoip_files["city"]), str(geoip_files["asn"])]
    env = {name: value for name, value in os.environ.items() if name != metrics.MULTIPROC_ENV}
    text = subprocess.run([sys.executable, "-c", FRESH_APP, *args], env=env, check=True, capture_output=True, text=True).stdout
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_closed_label_sets_are_exposed_at_zero_before_the_first_signup(tmp_path, sqlite_template, geoip_files):
    import maxminddb

    from verify.engine.models import VERDICTS
    from verify.engine.reasons import CATALOGUE

    found = fresh_exposition(tmp_path, sqlite_template, geoip_files)
    for verdict in VERDICTS:
        assert found[("verify_assessments_total", (("verdict", verdict),))] == 0
    for code in CATALOGUE:
        assert found[("verify_reasons_total", (("code", code),))] == 0
    for kind in metrics.LOOKUP_KINDS:
        assert found[("verify_lookups_total", (("kind", kind), ("outcome", "failure")))] == 0
    assert found[("verify_database_errors_total", ())] == 0
    # GeoIP age: the build time of each configured file, none for a role without one.
    with maxminddb.open_database(str(geoip_files["city"])) as reader:
        built = reader.metadata().build_epoch
    assert found[("verify_geoip_build_timestamp_seconds", (("role", "city"),))] == built
    assert ("verify_geoip_build_timestamp_seconds", (("role", "asn"),)) in found
    assert ("verify_geoip_build_timestamp_seconds", (("role", "anonymous"),)) not in found


def test_an_unreachable_database_is_counted(tmp_path, assess_headers, settings):
    from verify.app import create_app

    from tests.support.contract import ContractClient

    app = create_app(settings.with_overrides(database_url=f"sqlite:///{tmp_path}/no/such/dir/verify.db"))
    app.test_client_class = ContractClient
    client = app.test_client()
    before = value(samples(client), "verify_database_errors_total")
    answer = client.post("/v1/assessments", json={"email": "someone@example-mail.com"}, headers=assess_headers)
    assert answer.status_code == 503
    assert value(samples(client), "verify_database_errors_total") == before + 1
