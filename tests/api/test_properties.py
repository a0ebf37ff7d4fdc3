"""Property-based tests (hypothesis): the engine on arbitrary text and signals raises nothing
but its documented errors; the API on arbitrary bodies never answers 5xx."""

from __future__ import annotations

import ipaddress
import json
from functools import cache

from hypothesis import HealthCheck, given, settings, strategies as st

from verify.engine import identity
from verify.engine.decide import judge
from verify.engine.email import EmailInvalid, looks_random, parse_email, typo_suggestion
from verify.engine.models import VERDICTS
from verify.engine.policy import parse_policy
from verify.engine.reasons import default_points
from verify.intel.providers import Providers
from verify.settings import Settings

TEXT = st.text(st.characters(codec="utf-8"), max_size=80)
ADDRESSES = st.one_of(
    TEXT,
    st.emails(),
    st.builds(lambda local, domain: f"{local}@{domain}", TEXT, st.sampled_from(["gmail.com", "googlemail.com", "outlook.com", "exämple.org", "xn--e1afmkfd.xn--p1ai", ""])),
)


@cache
def providers() -> Providers:
    return Providers.load(Settings().data_dir)


@given(ADDRESSES)
def test_parse_email_raises_only_email_invalid(raw):
    try:
        parsed = parse_email(raw)
    except EmailInvalid as error:
        assert str(error)
        return
    assert parsed.ascii_domain.isascii() and parsed.ascii_domain == parsed.ascii_domain.lower()
    canonical = identity.canonical_email(parsed.local, parsed.ascii_domain, providers().rules)
    mailbox, _, domain = canonical.rpartition("@")
    rule = providers().rules.get(parsed.ascii_domain)
    assert domain == ((rule.canonical_domain if rule else "") or parsed.ascii_domain)
    # Canonical is a fixed point: aliases of one mailbox all land on the same address.
    assert identity.canonical_email(mailbox or parsed.local, domain, providers().rules) == canonical or not mailbox
    assert len(identity.local_template(mailbox)) <= 128


@given(TEXT)
def test_looks_random_and_local_template_accept_any_text(text):
    assert looks_random(text) in (True, False)
    template = identity.local_template(text)
    assert isinstance(template, str) and len(template) <= 128


@given(st.text(st.characters(codec="utf-8"), max_size=40))
def test_typo_suggestion_names_a_popular_domain_or_nothing(domain):
    suggestion = typo_suggestion(domain, providers().popular, known=providers().free)
    assert suggestion is None or (suggestion in providers().popular and suggestion != domain)


@given(st.ip_addresses())
def test_ip_network_contains_its_address(address):
    network = ipaddress.ip_network(identity.ip_network(str(address)))
    if address.version == 6 and address.ipv4_mapped:  # counted as the IPv4 client it is
        address = address.ipv4_mapped
    assert address in network and network.prefixlen == (24 if address.version == 4 else 64)


@given(st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True))
def test_phone_block_is_a_prefix(e164):
    assert e164.startswith(identity.phone_block(e164)) and len(identity.phone_block(e164)) == len(e164) - 3


JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | TEXT, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3), max_leaves=8)
# The shapes Assessor.email_signals produces: an invalid address with its error, or a valid
# one with its domain and local part and any mix of observations.
EMAIL_SIGNALS = st.one_of(
    st.fixed_dictionaries({"valid": st.just(False)}, optional={"error": TEXT}),
    st.fixed_dictionaries(
        {"valid": st.just(True), "domain": TEXT, "local": TEXT},
        optional={
            "typo_suggestion": st.none() | TEXT, "disposable": st.booleans(), "relay": st.booleans(),
            "role_account": st.booleans(), "random_local_part": st.booleans(),
            "mx": st.sampled_from(["ok", "known_provider", "null_mx", "no_mail_host", "unknown", "skipped"]),
        },
    ),
)
LIST_MATCH = st.fixed_dictionaries(
    {"list": TEXT, "action": st.sampled_from(["deny", "challenge", "allow"]), "kind": TEXT, "entry": TEXT, "matched": TEXT},
    optional={"reason": st.none() | TEXT},
)
SIGNALS = st.fixed_dictionaries(
    {"email": EMAIL_SIGNALS, "phone": st.dictionaries(TEXT, JSONISH, max_size=3), "ip": st.dictionaries(TEXT, JSONISH, max_size=3),
     "history": st.dictionaries(TEXT, st.integers(0, 10**6), max_size=3), "lists": st.lists(LIST_MATCH, max_size=4)}
)
POLICIES = st.builds(
    lambda challenge, deny, points: {"thresholds": {"challenge": challenge, "deny": deny}, "points": points},
    st.integers(0, 100), st.integers(0, 100),
    st.dictionaries(st.sampled_from(sorted(default_points())), st.integers(-100, 100), max_size=6),
)


@given(SIGNALS, POLICIES)
def test_judge_gives_a_verdict_in_range_for_any_signals(signals, document):
    try:
        policy = parse_policy(document, version=1, base_points=default_points())
    except ValueError:  # PolicyInvalid: a threshold order the policy forbids
        return
    decision = judge(signals, policy)
    assert decision.verdict in VERDICTS and 0 <= decision.score <= 100
    points = [reason.points for reason in decision.reasons]
    assert points == sorted(points, reverse=True)
    actions = {match["action"] for match in signals["lists"]}
    if "deny" in actions:
        assert decision.verdict == "deny"
    elif "allow" in actions:
        assert decision.verdict == "allow"
    elif "challenge" in actions:
        assert decision.verdict != "allow"


# -- the API: arbitrary bodies never give a 5xx ------------------------------------------

FIELDS = ["email", "phone", "ip", "country", "device_id", "user_agent", "external_id", "occurred_at", "metadata"]
SIGNUP_BODIES = st.one_of(
    JSONISH,
    st.dictionaries(st.sampled_from(FIELDS) | TEXT, JSONISH, max_size=6),
    st.fixed_dictionaries(
        {"email": ADDRESSES},
        optional={
            "phone": TEXT, "ip": st.ip_addresses().map(str) | TEXT, "country": st.text(max_size=3),
            "device_id": TEXT, "user_agent": TEXT, "external_id": TEXT, "metadata": st.dictionaries(TEXT, JSONISH, max_size=4),
            "occurred_at": st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()) | TEXT,
        },
    ),
)
ERASURE_BODIES = st.one_of(JSONISH, st.dictionaries(st.sampled_from(["email", "phone", "external_id"]) | TEXT, JSONISH | ADDRESSES, max_size=3))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=SIGNUP_BODIES)
def test_any_signup_body_gets_an_answer_not_a_crash(client, keys, body):
    headers = {"Authorization": f"Bearer {keys['both']}", "Content-Type": "application/json"}
    response = client.post("/v1/assessments", data=json.dumps(body), headers=headers)  # the client checks the contract
    assert response.status_code in (201, 400, 422), response.get_data(as_text=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=ERASURE_BODIES)
def test_any_erasure_body_gets_an_answer_not_a_crash(client, keys, body):
    headers = {"Authorization": f"Bearer {keys['both']}", "Content-Type": "application/json"}
    response = client.post("/v1/erasure", data=json.dumps(body), headers=headers)
    assert response.status_code in (200, 400, 422), response.get_data(as_text=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(raw=st.binary(max_size=300))
def test_any_bytes_as_a_body_get_an_answer_not_a_crash(client, keys, raw):
    headers = {"Authorization": f"Bearer {keys['both']}", "Content-Type": "application/json"}
    assert client.post("/v1/assessments", data=raw, headers=headers).status_code in (201, 400, 422)
