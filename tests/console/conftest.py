"""Console fixtures: the app with a secret key on SQLite, keys for people, a signed-in client, a real browser."""

from __future__ import annotations

import re
import shutil
import threading

import pytest
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from verify.app import create_app
from verify.store.keys import create_api_key

SECRET_KEY = "test-secret-key-for-the-console-0123456789"


@pytest.fixture
def database_url(tmp_path, sqlite_template) -> str:
    """The console is tested on SQLite (the API tests cover PostgreSQL for the same store functions)."""
    path = tmp_path / "verify.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def app(settings):
    app = create_app(settings.with_overrides(secret_key=SECRET_KEY))
    app.test_client_class = FlaskClient
    yield app
    app.extensions["verify"].database.dispose()


@pytest.fixture
def people(services) -> dict[str, str]:
    """Secrets of the keys people sign in with (named after them), and the backend's."""
    with services.database.transaction() as session:
        return {
            "alice": create_api_key("alice", ["admin"], session=session),
            "rita": create_api_key("rita", ["review"], session=session),
            "backend": create_api_key("backend", ["assess"], session=session),
        }


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    return CSRF.search(html).group(1)


def sign_in(client, secret: str):
    token = csrf_of(client.get("/console/login").get_data(as_text=True))
    return client.post("/console/login", data={"api_key": secret, "csrf_token": token})


# -- a real browser -------------------------------------------------------------------------

def chromium_driver():
    """Debian's Chromium and chromedriver, headless; None (with the reason) when absent."""
    if not shutil.which("chromium") or not shutil.which("chromedriver"):
        return None, "chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return None, "selenium is not installed (pip install -e '.[test]')"
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options), None


@pytest.fixture(scope="session")
def browser():
    """One browser for the whole session: starting Chromium costs more than a test."""
    driver, reason = chromium_driver()
    if driver is None:
        pytest.skip(reason)
    driver.implicitly_wait(2)
    yield driver
    driver.quit()


@pytest.fixture
def live_server(app):
    """The app served over real HTTP on loopback, in a thread, for the browser."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def web(browser, live_server):
    """The shared browser, with no cookies from an earlier test, and the server's address."""
    browser.delete_all_cookies()
    return browser, live_server
