"""JSON logs with request ids, and no raw email, phone number or API key in any line."""

from __future__ import annotations

import io
import json
import logging

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings, strategies as st

from verify import logs

EMAILS = ["Jane.Doe+promo@gmail.com", "jean-luc@example-mail.com", "béatrice@exämple.org"]
PHONES = ["+14155550123", "+44 20 7946 0958"]


@pytest.fixture
def captured():
    """Every log line of the process at DEBUG, through the service's own JSON handler."""
    stream = io.StringIO()
    handler = logs.json_handler(stream)
    root = logging.getLogger()
    loud = {name: logging.getLogger(name).level for name in ("", "verify", "sqlalchemy.engine", "werkzeug")}
    root.addHandler(handler)
    for name in loud:
        logging.getLogger(name).setLevel(logging.DEBUG if name != "sqlalchemy.engine" else logging.INFO)
    yield stream
    root.removeHandler(handler)
    for name, level in loud.items():
        logging.getLogger(name).setLevel(level)


def test_no_personal_data_or_secret_reaches_a_log_line(app, client, keys, assess_headers, admin_headers, services, captured, monkeypatch):
    for email, phone in zip(EMAILS, PHONES + [None]):
        body = {"email": email, "phone": phone, "external_id": "acct-1"}
        assert client.post("/v1/assessments", json=body, headers={**assess_headers, "Idempotency-Key": email}).status_code == 201
    client.post("/v1/assessments", json={"email": EMAILS[0]}, headers={"Authorization": "Bearer vk_0123456789abcdef_notarealsecretatall"})
    client.post("/v1/erasure", json={"email": EMAILS[1]}, headers=admin_headers)

    # An unexpected failure whose message and traceback quote the signup.
    def explode(signup, **_):
        raise RuntimeError(f"could not store {signup.email} / {signup.phone} for {keys['assess']}")

    monkeypatch.setattr(services.assessor, "judge_signup", explode)
    plain = FlaskClient(app)  # a 500 is not in the contract; this client does not check it
    assert plain.post("/v1/assessments", json={"email": EMAILS[0], "phone": PHONES[0]}, headers=assess_headers).status_code == 500

    text = captured.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert any(line.get("exception") for line in lines), "the failure should have been logged with its traceback"
    assert any(line["logger"].startswith("sqlalchemy") for line in lines), "statements and their parameters were logged"
    for secret in [*EMAILS, *(e.lower() for e in EMAILS), *PHONES, "4155550123", "2079460958", *keys.values(), "notarealsecretatall"]:
        assert secret not in text
    # Masked, not dropped: the same address always gives the same fingerprint, so lines still correlate.
    assert f"[email:{logs.fingerprint(EMAILS[0])}]" in text


def test_every_line_is_json_with_the_request_id(client, assess_headers, captured):
    response = client.post("/v1/assessments", json={"email": "x@example-mail.com"}, headers={**assess_headers, "X-Request-Id": "req-42.a:b"})
    assert response.headers["X-Request-Id"] == "req-42.a:b"
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    access = [line for line in lines if line["logger"] == "verify.requests"]
    assert access and access[-1]["request_id"] == "req-42.a:b"
    assert access[-1]["route"] == "/v1/assessments" and access[-1]["status"] == 201 and access[-1]["key"] == "backend"
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)


def test_the_access_line_masks_what_the_client_or_an_admin_wrote(client, services, captured):
    from verify.store.keys import create_api_key

    with services.database.transaction() as session:
        secret = create_api_key("ops jane.doe@example.org", ["assess"], session=session)
    plain = FlaskClient(client.application)  # junk methods and 404s are not in the contract
    plain.post("/v1/assessments", json={"email": "x@example-mail.com"}, headers={"Authorization": f"Bearer {secret}"})
    plain.open("/v1/assessments", method="4155550123")
    plain.get("/v1/people/+14155550123")
    text = captured.getvalue()
    access = [json.loads(line) for line in text.splitlines() if '"verify.requests"' in line]
    assert len(access) == 3
    for raw in ("jane.doe@example.org", "4155550123"):
        assert raw not in text
    assert access[0]["key"] == f"ops [email:{logs.fingerprint('jane.doe@example.org')}]"
    assert access[1]["method"].startswith("[phone:") and access[2]["route"] is None
    assert access[2]["message"] == f"GET /v1/people/[phone:{logs.phone_fingerprint('+14155550123')}] 404"


@pytest.mark.parametrize("sent", [None, "", "x" * 129, "two words", "<script>", "caf\u00e9"], ids=["absent", "empty", "too-long", "space", "markup", "non-ascii"])
def test_unsafe_or_missing_request_ids_are_replaced(client, sent):
    headers = {} if sent is None else {"X-Request-Id": sent}
    response = client.get("/healthz", headers=headers)
    generated = response.headers["X-Request-Id"]
    assert generated != sent and len(generated) == 32 and generated.isalnum()
    assert client.get("/healthz").headers["X-Request-Id"] != generated


@pytest.mark.parametrize(
    "text, hidden",
    [
        ("signup from a.b@c.io failed", "a.b@c.io"),
        ("call +1 (415) 555-0123 now", "555-0123"),
        ("Authorization: Bearer abc.def", "abc.def"),
        ("key vk_00ff00ff00ff00ff_Zx-9_y leaked", "Zx-9_y"),
    ],
)
def test_redact(text, hidden):
    assert hidden not in logs.redact(text)


# -- phones however they are written; what is not a phone stays as it was ----------------

@pytest.mark.parametrize(
    "phone",
    [
        "+1 (415) 555-0123", "(415) 555-0123", "+44 20 7946 0958", "+44 (0)20 7946 0958", "415.555.0123",
        "415-555-0123", "+33 1.23.45-67 89", "+49 30/1234567", "+1\u00a0415\u00a0555\u00a00123",
        "\uff0b\uff11\u3000\uff14\uff11\uff15\uff15\uff15\uff15\uff10\uff11\uff12\uff13", "4155550123",
    ],
    ids=["us-parens", "national-parens", "uk-spaces", "uk-trunk-zero", "dots", "dashes", "mixed", "slash",
         "no-break-spaces", "fullwidth", "bare-digits"],
)
def test_phones_with_any_separators_are_masked(phone):
    text = logs.redact(f"signup phone={phone} failed")
    digits = "".join(str(int(c)) for c in phone if c.isdigit())
    assert "[phone:" in text
    for fragment in (phone, digits, digits[-7:], phone.split()[-1]):
        assert fragment not in text


@pytest.mark.parametrize(
    "text",
    [
        "at 2026-12-02T10:00:00Z", "at 2026-12-02T10:00:00.123456+00:00", "on 2026-12-02 10:00:00", "on 02.12.2026",
        "on 12/02/2026", "from 192.168.100.200", "from 203.0.113.254 and 10.0.0.1:8080", "from 2001:db8:85a3::8a2e:370:7334",
        "from ::ffff:192.168.100.200", "id 123e4567-e89b-12d3-a456-426614174000", "id 00000000-0000-4000-8000-000000000000",
        "request 0123456789abcdef0123456789abcdef", "sha 1234567890123456789012345678901234567890",
    ],
    ids=["iso-z", "iso-offset", "iso-space", "dmy-dots", "slashes", "ipv4", "ipv4-port", "ipv6", "mapped", "uuid",
         "digit-uuid", "request-id", "digest"],
)
def test_dates_ips_and_uuids_survive(text):
    assert logs.redact(text) == text


def test_fullwidth_digits_give_the_fingerprint_of_their_number():
    ascii_one, ascii_two = logs.redact("+14155550123"), logs.redact("+14155550999")
    fullwidth_one = logs.redact("\uff0b\uff11\uff14\uff11\uff15\uff15\uff15\uff15\uff10\uff11\uff12\uff13")
    fullwidth_two = logs.redact("\uff0b\uff11\uff14\uff11\uff15\uff15\uff15\uff15\uff10\uff19\uff19\uff19")
    assert fullwidth_one == ascii_one and fullwidth_two == ascii_two and fullwidth_one != fullwidth_two


# -- fields by name; reprs in tracebacks; SQLAlchemy's parameters ----------------------------

def record(message="signup failed", *, args=(), exc_info=None, name="verify.test", **extra):
    made = logging.LogRecord(name, logging.ERROR, __file__, 1, message, args, exc_info)
    for key, value in extra.items():
        setattr(made, key, value)
    return json.loads(logs.JsonFormatter().format(made))


def test_sensitive_extra_fields_are_masked_by_name():
    line = record(
        external_id="acct-77", user_agent="Mozilla/5.0 (X11; Linux) Firefox/140.0", device_id="dev-4242",
        metadata={"campaign": "spring", "referrer": "friend"}, signup={"email_canonical": "jdoe", "local": "jdoe"},
        api_key="anything", authorization="Basic dXNlcjpwYXNz", key="backend", route="/v1/assessments", status=201,
    )
    text = json.dumps(line)
    for raw in ("acct-77", "Mozilla", "dev-4242", "spring", "friend", "jdoe", "anything", "dXNlcjpwYXNz"):
        assert raw not in text
    assert (line["key"], line["route"], line["status"]) == ("backend", "/v1/assessments", 201)


def test_structured_fields_are_masked_by_name_and_kept_as_built():
    line = record(
        "POST /v1/assessments 201",
        _structured={"route": "/v1/assessments", "status": 201, "duration_ms": 1.25, "email": "jane@example.org", "external_id": "acct-77"},
    )
    assert (line["message"], line["route"], line["status"], line["duration_ms"]) == ("POST /v1/assessments 201", "/v1/assessments", 201, 1.25)
    assert line["email"] == f"[email:{logs.fingerprint('jane@example.org')}]"
    assert line["external_id"].startswith("[redacted:")


def test_time_is_utc_to_the_millisecond():
    from datetime import datetime, timezone

    made = logging.LogRecord("verify.test", logging.INFO, __file__, 1, "tick", (), None)
    for created in (1796215200.0, 1796215200.9994, 1796215201.5):
        made.created, made.msecs = created, int((created - int(created)) * 1000) + 0.0
        expected = datetime.fromtimestamp(created, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        assert json.loads(logs.JsonFormatter().format(made))["time"] == expected


def test_text_that_is_not_valid_unicode_is_still_a_line():
    line = record("half a pair \ud800 here", big=2**70)
    assert line["message"] == "half a pair \ud800 here" and line["big"] == 2**70


def test_signup_repr_in_a_traceback_is_masked():
    from datetime import datetime, timezone

    from verify.assessing import Signup

    signup = Signup(
        email="jane.doe@example.org", occurred_at=datetime(2026, 12, 2, tzinfo=timezone.utc), phone="+1 (415) 555-0123",
        device_id="dev-4242", user_agent="Mozilla/5.0 (X11; Linux) Firefox/140.0", external_id="acct-77",
        metadata={"campaign": "spring"},
    )
    try:
        raise RuntimeError(f"could not store {signup!r}")
    except RuntimeError:
        import sys

        line = record(exc_info=sys.exc_info())
    for raw in ("jane.doe", "555-0123", "dev-4242", "Mozilla", "acct-77", "spring"):
        assert raw not in line["exception"]
    assert "2026, 12, 2" in line["exception"]


def long_email(length=200):
    local = "verylonglocalpart"[: min(64, length)]
    return f"{local}@{'sub' * ((length - len(local)) // 3)}.example.com"


def test_sqlalchemy_error_parameters_are_masked_even_when_truncated():
    import sqlalchemy as sa

    engine = sa.create_engine("sqlite://")
    email = long_email()
    payload = json.dumps({"email": {"local": "verylonglocalpart", "normalized": email, "detail": "~" * 300}})
    parameters = {"a": "~" * 200 + email, "b": payload, "c": "acct-77", "d": "2026-12-02"}  # the traceback quotes the failing line: not this one
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("INSERT INTO missing VALUES (:a, :b, :c, :d)"), parameters)
    except sa.exc.OperationalError:
        import sys

        line = record(exc_info=sys.exc_info())
    for raw in ("verylonglocal", "acct-77", email):
        assert raw not in line["exception"]
    assert "INSERT INTO missing" in line["exception"] and "2026-12-02" in line["exception"]


def test_sqlalchemy_statement_log_parameters_are_masked(captured):
    import sqlalchemy as sa

    engine = sa.create_engine("sqlite://")
    email = long_email()
    with engine.connect() as connection:
        connection.execute(sa.text("SELECT :a, :b, :c"), {"a": "~" * 200 + email, "b": "acct-77", "c": "192.168.100.200"})
    text = captured.getvalue()
    assert "SELECT ?, ?, ?" in text and "192.168.100.200" in text
    for raw in ("verylonglocal", "acct-77", email):
        assert raw not in text


def test_truncated_fragments_of_an_address_are_masked_in_free_text():
    text = logs.redact("params ('verylonglocalpart ... (170 characters truncated) ... part@example.com', 'x')")
    assert "verylonglocal" not in text and "part@example.com" not in text


# -- property: generated emails and phones through every log path ---------------------------

LOCAL_ALPHABET = st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-\u00e9\u00fc\u00df\u0436\u043e\u4f8b\u00f1")
LABEL = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789\u00e4\u00f6\u0436"), min_size=1, max_size=40)
FULLWIDTH = str.maketrans("0123456789+", "\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19\uff0b")


@st.composite
def emails(draw):
    local = draw(st.text(LOCAL_ALPHABET, min_size=1, max_size=64).filter(lambda t: t[0] not in ".-" and t[-1] not in ".-"))
    if draw(st.booleans()):
        local = f"{local}+{draw(st.text(LOCAL_ALPHABET, min_size=1, max_size=10))}"
    labels = draw(st.lists(LABEL, min_size=1, max_size=4))
    return f"{local}@{'.'.join(labels)}.{draw(st.sampled_from(['com', 'org', 'de', 'co.uk', 'xn--p1ai']))}"


@st.composite
def phones(draw):
    country = draw(st.sampled_from(["1", "44", "33", "49", "81", "7"]))
    groups = draw(st.lists(st.text(st.sampled_from("0123456789"), min_size=2, max_size=4), min_size=2, max_size=4))
    separators = st.sampled_from([" ", "-", ".", " (", ") ", "\u00a0", " - ", "/", ""])
    phone = f"+{country}" + "".join(draw(separators) + group for group in groups)
    if len([c for c in phone if c.isdigit()]) < 8:
        phone += "5550123"
    return phone.translate(FULLWIDTH) if draw(st.booleans()) else phone


SURVIVORS = ["2026-12-02T10:00:00Z", "192.168.100.200", "123e4567-e89b-12d3-a456-426614174000"]


def raw_forms(email, phone):
    local = email.rsplit("@", 1)[0]
    digits = "".join(str(int(c)) for c in phone if c.isdigit())
    forms = {email, email.lower(), phone, digits}
    if len(local) >= 8:
        forms.add(local)
    return forms


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(email=emails(), phone=phones(), long_tail=st.booleans())
def test_no_generated_email_or_phone_survives_any_log_path(app, services, assess_headers, captured, email, phone, long_tail):
    import sqlalchemy as sa

    captured.seek(0)
    captured.truncate()
    external_id, user_agent = f"acct-{len(email)}-{phone[-3:]}x", f"Agent/{len(phone)} ({email[:3]}x)"
    plain = FlaskClient(app)
    # The access log line of a path that carries both (no route matches: the raw path is logged).
    plain.get(f"/v1/people/{email}/{phone}")
    # An app log line with extra fields and the values in its message.
    logging.getLogger("verify.test").warning(
        "signup %s %s at %s from %s id %s", email, phone, *SURVIVORS,
        extra={"email": email, "phone": phone, "external_id": external_id, "user_agent": user_agent, "metadata": {"who": email}},
    )
    # A failing request whose exception quotes the signup.
    services.assessor.judge_signup = _explode
    body = {"email": email, "phone": phone, "external_id": external_id, "user_agent": user_agent}
    assert plain.post("/v1/assessments", json=body, headers=assess_headers).status_code == 500
    # A statement that fails with the values among its parameters, some long enough to be cut.
    filler = "~" * (250 if long_tail else 0)
    try:
        with sa.create_engine("sqlite://").connect() as connection:
            connection.execute(sa.text("INSERT INTO missing VALUES (:a, :b, :c, :d)"), {"a": filler + email, "b": json.dumps({"local": email.rsplit("@", 1)[0], "e": email, "pad": filler}), "c": phone, "d": SURVIVORS[0]})
    except sa.exc.OperationalError:
        logging.getLogger("verify.test").exception("statement failed")

    text = captured.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert any("exception" in line for line in lines)
    for raw in raw_forms(email, phone) | {external_id, user_agent}:
        assert raw not in text, raw
    for kept in SURVIVORS:
        assert kept in text


def _explode(signup, **_):
    raise RuntimeError(f"could not store {signup!r}")


@pytest.mark.parametrize(
    "text",
    ["a" * 20000 + "@", "a@" * 10000, "1 " * 10000, "(1" * 10000, "1." * 10000, "+" * 20000, "email='" + "x" * 20000,
     "metadata={" + "{" * 10000, " ... (5 characters truncated) ... " * 600, "1" * 20000],
    ids=["run-without-domain", "at-signs", "spaced-digits", "parens", "dots", "pluses", "open-quote", "open-braces", "markers", "digits"],
)
def test_redaction_stays_linear_on_hostile_text(text):
    import time

    started = time.perf_counter()
    logs.redact(text)
    assert time.perf_counter() - started < 1.0
