"""Every response the tests see is checked against openapi.yaml."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
import json

import yaml

from openapi_core import Config, OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIResponse
from openapi_core.templating.paths.exceptions import PathNotFound
from openapi_core.testing import MockRequest

SPEC = Path(__file__).resolve().parents[2] / "openapi.yaml"


@cache
def openapi() -> OpenAPI:
    config = Config(
        extra_media_type_deserializers={
            "application/problem+json": json.loads,
            "application/yaml": yaml.safe_load,
        }
    )
    return OpenAPI.from_file_path(str(SPEC), config=config)


def check_response(response) -> None:
    """Raise if the response breaks the contract (status, media type, body schema)."""
    # The request body was read by the app already; response validation needs only the route.
    sent = response.request
    request = MockRequest("http://localhost", sent.method.lower(), sent.path, args=sent.args, headers=dict(sent.headers))
    try:
        openapi().validate_response(request, WerkzeugOpenAPIResponse(response))
    except PathNotFound:
        # A route the contract does not have: the answer must still be a problem document.
        assert response.status_code >= 400 and response.mimetype == "application/problem+json"


class ContractClient(FlaskClient):
    """A test client that validates each response against the OpenAPI document."""

    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        check_response(response)
        return response


@contextmanager
def contract_app(settings) -> Iterator[Flask]:
    """An app whose test clients check every response against openapi.yaml; its database
    connections closed afterwards."""
    from verify.app import create_app

    app = create_app(settings)
    app.test_client_class = ContractClient
    try:
        yield app
    finally:
        app.extensions["verify"].database.dispose()
