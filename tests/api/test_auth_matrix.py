"""Every operation in openapi.yaml x {no key, unknown key, revoked key, assess key, admin key, review key}.

The spec says which operations are open (`security: []`) and, in each summary, which scopes a
secured one accepts: "(scope admin)", "(scope assess or admin)", "(scope admin or review)". Operations whose route is not
registered in this app yet are skipped by name, and covered as soon as they are.
"""

from __future__ import annotations

import re

import pytest
import yaml
from werkzeug.exceptions import MethodNotAllowed, NotFound

from tests.conftest import bearer
from tests.support.contract import SPEC
from verify.store.keys import create_api_key, revoke_api_key

METHODS = ("get", "post", "put", "delete", "patch")
SCOPE = re.compile(r"\(scope ((?:assess|admin|review)(?: or (?:assess|admin|review))*)\)")
PATH_VALUES = {
    "assessment_id": "no-such-assessment", "name": "blocked-ips", "version": "1",
    "webhook_id": "no-such-webhook", "delivery_id": "no-such-delivery",
}


def operations() -> list[tuple[str, str, dict]]:
    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    default_security = spec.get("security", [])
    found = []
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                operation = item[method]
                secured = operation.get("security", default_security) != []
                scopes = set()
                if secured:
                    match = SCOPE.search(operation.get("summary", ""))
                    assert match, f"{method.upper()} {path}: the summary must name its scopes"
                    scopes = set(match.group(1).split(" or "))
                found.append((method, path, scopes))
    return found


OPERATIONS = operations()


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m.group(1)], path)


@pytest.fixture
def credentials(services, keys) -> dict[str, dict[str, str]]:
    with services.database.transaction() as session:
        revoked = create_api_key("revoked-admin", ["assess", "admin"], session=session)
        revoke_api_key("revoked-admin", session=session)
        review = create_api_key("rita-review", ["review"], session=session)
    return {
        "no key": {},
        "unknown key": bearer("vk_00000000deadbeef_" + "x" * 43),
        "revoked key": bearer(revoked),
        "assess key": bearer(keys["assess"]),
        "admin key": bearer(keys["admin"]),
        "review key": bearer(review),
    }


def expected(scopes: set[str], credential: str) -> str:
    if not scopes:
        return "open"
    if credential in ("no key", "unknown key", "revoked key"):
        return "401"
    return "allowed" if credential.split()[0] in scopes else "403"


@pytest.mark.parametrize("method, path, scopes", OPERATIONS, ids=[f"{m.upper()} {p}" for m, p, _ in OPERATIONS])
def test_auth_matrix(app, client, credentials, method, path, scopes):
    url = concrete(path)
    try:
        app.url_map.bind("localhost").match(url, method=method.upper())
    except (NotFound, MethodNotAllowed):
        pytest.skip(f"{method.upper()} {path} is in openapi.yaml but not registered in this app yet")
    for credential, headers in credentials.items():
        kwargs = {"json": {}} if method in ("post", "put") else {}
        response = client.open(url, method=method.upper(), headers=headers, **kwargs)
        outcome = expected(scopes, credential)
        where = f"{method.upper()} {path} with {credential}"
        if outcome == "401":
            assert response.status_code == 401, where
            assert response.headers["WWW-Authenticate"].startswith("Bearer"), where
        elif outcome == "403":
            assert response.status_code == 403, where
        else:
            assert response.status_code not in (401, 403), where
            assert response.status_code < 500 or (path == "/readyz" and response.status_code == 503), where
