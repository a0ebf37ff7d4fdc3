"""SQLite and PostgreSQL give the same verdicts, reasons and stored keys for the same traffic.

Case and Unicode are decided in Python (verify.engine.identity), so no comparison depends on
how a database folds case: generated signups with Unicode and punycode addresses, odd white
space, IPv4-mapped IPv6 and phones in several forms go to one app on each backend, in the same
order with the same `occurred_at`s, and every answer must be identical. Runs only when
VERIFY_TEST_POSTGRES_URL is set.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import bearer, postgres_database_url, prepare, reset_postgres
from tests.support.contract import ContractClient
from verify.app import create_app
from verify.settings import Settings
from verify.store.assessments import get_assessment
from verify.store.keys import create_api_key
from verify.store.database import Database

pytestmark = pytest.mark.postgres

STORED_KEYS = ("email", "email_canonical", "email_domain", "local_template", "phone_e164", "phone_block", "ip", "ip_network", "device_id", "country")
START = datetime(2026, 1, 1, tzinfo=timezone.utc)

PADDING = st.sampled_from(["", " ", "\n", "\t", "\r\n", "\u200b", "\ufeff", "\u200c", "\u200d", "\u2060", " \u200b"])
# Few people, many spellings: case that SQLite's lower() does not fold and PostgreSQL's does
# (É, Ö, Σ), NFD and NFC, the sharp s, tags; so that one mailbox recurs within an example.
LOCAL = st.builds(
    lambda name, tag: name + tag,
    st.sampled_from(["élodie", "Élodie", "ÉLODIE", "e\u0301lodie", "jörg", "JÖRG", "jo\u0308rg", "σοφία", "ΣΟΦΊΑ", "straße", "STRASSE", "ana"]),
    st.sampled_from(["", "", "+x"]),
)
DOMAIN = st.sampled_from(["example-mail.com", "Example-Mail.COM", "bücher.de", "xn--bcher-kva.de", "GoogleMail.com"])
EMAIL = st.builds(lambda before, local, domain, after: f"{before}{local}@{domain}{after}", PADDING, LOCAL, DOMAIN, PADDING)
IP = st.builds(
    lambda before, address, after: before + address + after,
    PADDING,
    st.sampled_from(["81.2.69.160", "::ffff:81.2.69.160", "::FFFF:5102:45A0", "81.2.69.161", "2a02:db8::1", "2A02:DB8:0::1"]),
    st.sampled_from(["", " ", "\n"]),
)
PHONE = st.sampled_from(["+447400123456", "+44 7400 123456", " +44-7400-123456\n", "+４４７４００１２３４５６", "07400 123456", "\u200b+4930901820", "+1 415 555 0123"])
SIGNUP = st.fixed_dictionaries(
    {"email": EMAIL},
    optional={
        "ip": IP,
        "phone": PHONE,
        "country": st.sampled_from(["GB", "gb", "DE"]),
        "device_id": st.sampled_from(["dev-1", " dev-1", "Dev-1", "\u200bdev-2"]),
    },
)


@pytest.fixture
def twins(tmp_path, sqlite_template, worker_id, dns_server):
    """One app on SQLite and one on PostgreSQL, each with a key of both scopes."""
    path = tmp_path / "verify.db"
    shutil.copy(sqlite_template, path)
    postgres = postgres_database_url(worker_id)
    reset_postgres(postgres)
    database = Database(postgres)
    prepare(database, Settings())
    database.dispose()
    made = []
    for url in (f"sqlite:///{path}", postgres):
        app = create_app(Settings(database_url=url, dns_nameservers=(dns_server.nameserver,), dns_timeout=0.5))
        app.test_client_class = ContractClient
        services = app.extensions["verify"]
        with services.database.transaction() as session:
            secret = create_api_key("ops", ["assess", "admin"], session=session)
        made.append((app.test_client(), bearer(secret), services))
    yield made
    for _, _, services in made:
        services.database.dispose()


def outcome(client, headers, services, body: dict) -> dict:
    response = client.post("/v1/assessments", json=body, headers=headers)
    answer = response.get_json()
    if response.status_code != 201:
        return {"status": response.status_code, "errors": answer.get("errors")}
    with services.database.transaction() as session:
        row = get_assessment(answer["id"], session=session)
        keys = {name: getattr(row, name) for name in STORED_KEYS}
    return {
        "status": 201,
        "verdict": answer["verdict"],
        "score": answer["score"],
        "reasons": answer["reasons"],
        "signals": answer["signals"],
        "keys": keys,
    }


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(traffic=st.lists(SIGNUP, min_size=1, max_size=10))
# SQLite's lower() folds ASCII only, PostgreSQL's folds É too: this pair once split them.
@example(traffic=[{"email": "élodie@example-mail.com"}, {"email": "Élodie@example-mail.com"}])
def test_sqlite_and_postgresql_judge_the_same_traffic_alike(twins, traffic):
    # The twins keep their history across examples; both see the same traffic in the same
    # order, so their histories stay equal and must give equal answers.
    (lite, lite_headers, lite_services), (pg, pg_headers, pg_services) = twins
    for minute, signup in enumerate(traffic):
        body = {**signup, "occurred_at": (START + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z")}
        assert outcome(lite, lite_headers, lite_services, body) == outcome(pg, pg_headers, pg_services, body), body
