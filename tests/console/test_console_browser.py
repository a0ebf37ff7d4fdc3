"""The console in a real browser (Debian's Chromium, driven by Selenium) against the service on SQLite.

One investigation end to end, then the pieces a browser must prove: CSRF, escaping under the
CSP, a revoked key, an upload with a bad line. With VERIFY_CONSOLE_SCREENSHOTS=<dir> the tests
also save the screenshots shown in the README (docs/console/).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[test]')")

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

from verify.store.keys import revoke_api_key  # noqa: E402

SCREENSHOTS = os.environ.get("VERIFY_CONSOLE_SCREENSHOTS")


def shot(driver, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(SCREENSHOTS) / f"{name}.png"))


def navigate(driver, action) -> None:
    """Do what loads a new page (a click, Enter in a form) and wait until the new page is there."""
    old = driver.find_element(By.TAG_NAME, "html")
    action()
    WebDriverWait(driver, 5).until(lambda _: detached(old))


def detached(element) -> bool:
    # Mid-navigation Chromium may answer "Node with given id does not belong to the document"
    # (a plain WebDriverException) instead of a stale reference: the old page is gone either way.
    try:
        element.is_enabled()
    except WebDriverException:  # StaleElementReferenceException included
        return True
    return False


def click(driver, element) -> None:
    navigate(driver, element.click)


def assess(app, secret: str, **body) -> dict:
    response = app.test_client().post("/v1/assessments", json=body, headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def sign_in(driver, base: str, secret: str) -> None:
    driver.get(f"{base}/console/login")
    navigate(driver, lambda: driver.find_element(By.ID, "api_key").send_keys(secret, Keys.ENTER))
    assert driver.find_element(By.ID, "sign-out")


def text(driver) -> str:
    return driver.find_element(By.TAG_NAME, "main").text


def burst(app, secret: str, count: int = 4) -> list[dict]:
    """A campaign: throwaway mailboxes from one device and one network, minutes apart."""
    start = datetime.now(timezone.utc) - timedelta(hours=count)
    return [
        assess(app, secret, email=f"farm{i}@mailinator.com", ip=f"203.0.113.{10 + i}", device_id="farm-device-1",
               occurred_at=(start + timedelta(hours=i)).isoformat())
        for i in range(count)
    ]


def test_an_investigation_from_queue_to_audit(web, app, people):
    driver, base = web
    signups = burst(app, people["backend"])
    assess(app, people["backend"], email="carol@example-mail.com", ip="198.51.100.20")
    sign_in(driver, base, people["alice"])
    assert "deny 4" in driver.find_element(By.CSS_SELECTOR, ".totals").text
    shot(driver, "overview")

    # The queue shows the burst; open the newest signup.
    driver.get(f"{base}/console/queue?device=farm-device-1")
    rows = driver.find_elements(By.CSS_SELECTOR, "tr[data-row]")
    assert len(rows) == 4
    shot(driver, "queue")
    click(driver, rows[0].find_element(By.TAG_NAME, "a"))
    assert "farm3@mailinator.com" in driver.find_element(By.TAG_NAME, "h1").text

    # Its cluster: three more share the device. Label them all as fraud.
    cluster = driver.find_element(By.ID, "group-device_id")
    assert "3 more share device_id" in cluster.text
    shot(driver, "assessment")
    click(driver, cluster.find_element(By.CSS_SELECTOR, "button[value=fraud]"))
    assert "Labelled 4 assessments sharing device_id farm-device-1 as fraud" in text(driver)

    # Block its network for 7 days, with a reason.
    form = driver.find_element(By.ID, "block-network")
    form.find_element(By.NAME, "reason").send_keys("farm campaign")
    Select(form.find_element(By.NAME, "expires")).select_by_visible_text("7d")
    click(driver, form.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert "Blocked 203.0.113.0/24 on blocked-ips until" in text(driver)

    # Change a point value, simulate, save, then restore the previous version.
    driver.get(f"{base}/console/policy")
    points = driver.find_element(By.ID, "points-email-disposable")
    points.clear()
    points.send_keys("20")
    click(driver, driver.find_element(By.ID, "simulate"))
    simulation = driver.find_element(By.ID, "simulation").text
    assert int(driver.find_element(By.ID, "changed-count").text) >= 3 and "deny->" in simulation  # the burst, deny no more
    assert "farm0@mailinator.com" in simulation
    shot(driver, "policy")
    click(driver, driver.find_element(By.ID, "save-policy"))
    assert "Saved policy version 2" in text(driver)
    click(driver, driver.find_element(By.ID, "restore-1"))
    assert "Restored version 1 as version 3" in text(driver)
    assert driver.find_element(By.ID, "diff").text.splitlines()[1:] == ["points.email.disposable 20 90"]  # v2 -> v3

    # All of it is in the audit trail, under alice's name; the filter narrows it.
    driver.get(f"{base}/console/audit")
    driver.find_element(By.NAME, "actor").send_keys("alice")
    navigate(driver, lambda: driver.find_element(By.NAME, "action").send_keys("policy", Keys.ENTER))
    actions = [row.find_elements(By.TAG_NAME, "td")[2].text for row in driver.find_elements(By.CSS_SELECTOR, "#audit tbody tr")]
    assert actions == ["policy.restore", "policy.update"]
    shot(driver, "audit")
    driver.get(f"{base}/console/audit?actor=alice")
    trail = driver.find_element(By.ID, "audit").text
    assert "cluster.label" in trail and "list.add" in trail and "console.sign_in" in trail

    click(driver, driver.find_element(By.ID, "sign-out"))
    driver.get(f"{base}/console/queue")
    assert driver.current_url.startswith(f"{base}/console/login")
    assert signups


def test_review_a_signup_with_one_keystroke(web, app, people):
    driver, base = web
    burst(app, people["backend"], count=2)
    sign_in(driver, base, people["rita"])
    assert "Lists" not in driver.find_element(By.TAG_NAME, "nav").text  # review: no lists, policy or audit
    driver.get(f"{base}/console/queue")
    first = driver.switch_to.active_element
    assert first.get_attribute("data-row") is not None
    navigate(driver, lambda: first.send_keys("f"))
    assert "Labelled farm1@mailinator.com as fraud" in text(driver)
    row = driver.find_elements(By.CSS_SELECTOR, "tr[data-row]")[0]
    assert "fraud" in row.find_elements(By.TAG_NAME, "td")[5].text


def test_a_form_without_its_csrf_token_is_refused(web, app, people):
    driver, base = web
    sign_in(driver, base, people["alice"])
    driver.get(f"{base}/console/lists/blocked-domains")
    driver.execute_script("document.querySelector('#add-form input[name=csrf_token]').remove()")
    driver.find_element(By.ID, "values").send_keys("evil.example")
    click(driver, driver.find_element(By.CSS_SELECTOR, "#add-form button"))
    assert "Refused" in text(driver) and "CSRF" in text(driver)
    driver.get(f"{base}/console/lists/blocked-domains")
    assert "evil.example" not in text(driver)


def test_hostile_strings_do_nothing_in_the_browser(web, app, people):
    driver, base = web
    payload = "<script>document.title='owned'</script><img src=x onerror=\"document.title='owned'\">"
    signup = assess(app, people["backend"], email="x@mailinator.com", user_agent=payload, metadata={"n": payload})
    sign_in(driver, base, people["alice"])
    driver.get(f"{base}/console/assessments/{signup['id']}")
    assert driver.find_element(By.ID, "user-agent").text == payload
    assert driver.title != "owned"
    assert driver.execute_script("return document.querySelectorAll('script:not([src]), img[onerror]').length") == 0


def test_a_revoked_key_is_signed_out_at_the_next_click(web, app, people, services):
    driver, base = web
    sign_in(driver, base, people["alice"])
    with services.database.transaction() as session:
        revoke_api_key("alice", session=session)
    driver.get(f"{base}/console/lists")
    assert driver.current_url.startswith(f"{base}/console/login")


def test_an_upload_shows_its_bad_line_then_applies_a_good_file(web, app, people, tmp_path):
    driver, base = web
    sign_in(driver, base, people["alice"])
    bad = tmp_path / "wave.txt"
    bad.write_text("# wave 5\n192.0.2.1\nnot-an-ip\n", encoding="utf-8")
    driver.get(f"{base}/console/lists/blocked-ips")
    driver.find_element(By.ID, "file").send_keys(str(bad))
    click(driver, driver.find_element(By.CSS_SELECTOR, "#upload-form button"))
    assert "line 3" in driver.find_element(By.ID, "bad-lines").text
    good = tmp_path / "wave.csv"
    good.write_text("value,reason\n192.0.2.1,wave 5\n198.51.100.0/24,wave 5\n", encoding="utf-8")
    driver.get(f"{base}/console/lists/blocked-ips")
    driver.find_element(By.ID, "file").send_keys(str(good))
    click(driver, driver.find_element(By.CSS_SELECTOR, "#upload-form button"))
    assert driver.find_element(By.ID, "preview").text.startswith("2 new, 0 already listed")
    click(driver, driver.find_element(By.ID, "confirm-upload"))
    assert "Uploaded wave.csv: added 2, updated 0" in text(driver)
    assert "file:wave.csv: 2" in text(driver)
    shot(driver, "lists")
