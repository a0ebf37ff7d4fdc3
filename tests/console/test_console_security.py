"""The console's rules, through the test client: sessions, CSRF, CSP, scopes, escaping, the secret key."""

from __future__ import annotations

import pytest

from tests.console.conftest import csrf_of, sign_in
from verify.app import create_app
from verify.store.keys import revoke_api_key


def assess(client, secret: str, **body) -> dict:
    response = client.post("/v1/assessments", json=body, headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 201
    return response.get_json()


@pytest.mark.parametrize("path", ["/console/", "/console/queue", "/console/lists", "/console/policy", "/console/audit",
                                  "/console/assessments/x", "/console/lists/blocked-ips/export"])
def test_no_page_without_a_session(client, path):
    response = client.get(path)
    assert response.status_code == 302 and response.headers["Location"].startswith("/console/login")


def test_sign_in_sets_a_strict_http_only_session_and_every_page_has_a_strict_csp(client, people):
    response = sign_in(client, people["alice"])
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and people["alice"] not in cookie
    page = client.get("/console/")
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert "<script>" not in page.get_data(as_text=True)  # only <script src=...>
    assert people["alice"] not in page.get_data(as_text=True)


def test_a_wrong_or_assess_key_cannot_sign_in(client, people):
    assert sign_in(client, "vk_0000_nothing").status_code == 401
    assert sign_in(client, people["backend"]).status_code == 401
    assert client.get("/console/").status_code == 302


def test_posts_without_a_csrf_token_are_refused(client, people):
    sign_in(client, people["alice"])
    response = client.post("/console/lists/blocked-domains/entries", data={"values": "evil.example"})
    assert response.status_code == 400
    assert client.post("/console/login", data={"api_key": people["alice"]}).status_code == 400
    token = csrf_of(client.get("/console/lists/blocked-domains").get_data(as_text=True))
    ok = client.post("/console/lists/blocked-domains/entries", data={"values": "evil.example", "csrf_token": token})
    assert ok.status_code == 302


def test_a_revoked_key_ends_its_session_at_once(client, people, services):
    sign_in(client, people["alice"])
    assert client.get("/console/").status_code == 200
    with services.database.transaction() as session:
        revoke_api_key("alice", session=session)
    assert client.get("/console/").status_code == 302


def test_an_idle_session_ends(client, people, app):
    sign_in(client, people["alice"])
    with client.session_transaction("/console/") as session:
        session["seen"] -= app.config["CONSOLE_IDLE"].total_seconds() + 1
    assert client.get("/console/").status_code == 302


def test_a_review_session_reads_and_labels_but_cannot_change_lists_or_policy(client, people):
    signup = assess(client, people["backend"], email="x1@mailinator.com")
    sign_in(client, people["rita"])
    page = client.get(f"/console/assessments/{signup['id']}")
    assert page.status_code == 200 and "Block" not in page.get_data(as_text=True)
    token = csrf_of(page.get_data(as_text=True))
    assert client.post(f"/console/assessments/{signup['id']}/feedback", data={"label": "fraud", "csrf_token": token}).status_code == 302
    assert client.get("/console/lists").status_code == 403
    assert client.get("/console/policy").status_code == 403
    assert client.post("/console/lists/blocked-domains/entries", data={"values": "a.example", "csrf_token": token}).status_code == 403
    assert client.post(f"/console/assessments/{signup['id']}/block", data={"kind": "domain", "csrf_token": token}).status_code == 403
    assert client.post("/console/policy/versions/1/restore", data={"csrf_token": token}).status_code == 403


def test_user_supplied_strings_are_escaped(client, people):
    hostile = "<script>alert(1)</script>"
    signup = assess(client, people["backend"], email="x2@mailinator.com", user_agent=hostile, metadata={"note": hostile})
    sign_in(client, people["alice"])
    html = client.get(f"/console/assessments/{signup['id']}").get_data(as_text=True)
    assert hostile not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_without_a_secret_key_the_console_is_off_and_the_api_runs(settings):
    app = create_app(settings)
    client = app.test_client()
    assert client.get("/console/login").status_code == 503
    assert client.get("/healthz").status_code == 200
    app.extensions["verify"].database.dispose()


def test_every_page_renders_for_an_admin(client, people):
    signup = assess(client, people["backend"], email="x3@mailinator.com", ip="203.0.113.7", device_id="dev-9", phone="+14155550123")
    assess(client, people["backend"], email="x4@mailinator.com", ip="203.0.113.8", device_id="dev-9")
    sign_in(client, people["alice"])
    for path in ("/console/", "/console/?window=30d", "/console/queue", "/console/queue?verdict=any&domain=mailinator.com",
                 "/console/queue?since=nonsense", f"/console/assessments/{signup['id']}", "/console/lists",
                 "/console/lists/blocked-ips", "/console/lists/blocked-ips?q=203", "/console/policy", "/console/policy?a=1&b=1",
                 "/console/audit", "/console/audit?action=list&since=bad"):
        response = client.get(path)
        assert response.status_code == 200, path
    token = csrf_of(client.get("/console/policy").get_data(as_text=True))
    simulated = client.post("/console/policy", data={"csrf_token": token, "action": "simulate", "thresholds:challenge": "10",
                                                     "thresholds:deny": "80", "points:email.disposable": "20"})
    assert simulated.status_code == 200 and "verdicts would change" in simulated.get_data(as_text=True)
    assert client.post(f"/console/assessments/{signup['id']}/block", data={"kind": "phone", "expires": "7d", "csrf_token": token}).status_code == 302
    assert client.get("/console/lists/blocked-phone-prefixes/export").get_data(as_text=True).startswith("value,reason,expires_at,source\n1415555")
    group = client.post(f"/console/assessments/{signup['id']}/cluster-feedback", data={"shared": "device_id", "label": "fraud", "csrf_token": token})
    assert group.status_code == 302
    assert client.get("/console/assessments/nope").status_code == 404


def test_the_queue_shows_allowed_signups_linked_to_flagged_ones(client, people):
    assess(client, people["backend"], email="x5@mailinator.com", device_id="shared-device")       # deny
    linked = assess(client, people["backend"], email="carol@example-mail.com", device_id="shared-device")
    alone = assess(client, people["backend"], email="dave@example-mail.com", device_id="own-device")
    assert linked["verdict"] == alone["verdict"] == "allow"
    sign_in(client, people["rita"])
    html = client.get("/console/queue?verdict=linked").get_data(as_text=True)
    assert "carol@example-mail.com" in html and "dave@example-mail.com" not in html and "x5@mailinator.com" not in html
