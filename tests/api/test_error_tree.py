"""One exception tree: every error the service raises on purpose derives from VerifyError and
is given its problem+json status in one place (api/errors.py)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from flask import Flask

import verify
from verify.api.errors import STATUS, handle_verify_error
from verify.errors import VerifyError

# Raised by pure functions over plain values (the engine) and by the settings loader before any
# app exists; the edge that calls them turns them into InvalidInput or a message at start-up.
VALUE_ERRORS = {
    "verify.engine.email.EmailInvalid",
    "verify.engine.identity.IdentityInvalid",
    "verify.engine.list_values.ValuesInvalid",
    "verify.engine.policy.PolicyInvalid",
    "verify.settings.SettingsError",
}


def exceptions_defined_in_verify() -> list[type[BaseException]]:
    found = []
    for module_info in pkgutil.walk_packages(verify.__path__, "verify."):
        if module_info.name == "verify.__main__" or ".migrations" in module_info.name:
            continue
        module = importlib.import_module(module_info.name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == module.__name__:
                found.append(value)
    return found


def test_every_exception_of_the_service_is_on_the_tree_or_a_known_value_error():
    off_tree = {f"{cls.__module__}.{cls.__qualname__}" for cls in exceptions_defined_in_verify() if not issubclass(cls, VerifyError)}
    assert off_tree == VALUE_ERRORS


def test_every_error_on_the_tree_has_its_status_in_one_table():
    errors = [cls for cls in exceptions_defined_in_verify() if issubclass(cls, VerifyError) and cls is not VerifyError]
    assert len(errors) > len(STATUS)  # the subclasses defined next to their subjects are seen too
    with Flask(__name__).app_context():
        for cls in errors:
            assert any(base in STATUS for base in cls.__mro__), cls
            response = handle_verify_error(cls("a message written for people"))
            assert response.status_code < 500 or response.status_code in (502, 503), cls
            assert response.mimetype == "application/problem+json"
