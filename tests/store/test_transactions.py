"""A write that loses a unique-key race is rerun once, then reported as 409."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from verify.api.transactions import committed
from verify.errors import Conflict


def collision() -> IntegrityError:
    return IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))


def test_a_collision_is_retried_once(app):
    attempts = []

    def work():
        attempts.append(1)
        if len(attempts) == 1:
            raise collision()
        return "done"

    with app.test_request_context():
        assert committed(work, conflict="busy") == "done"
    assert len(attempts) == 2


def test_a_second_collision_is_a_conflict(app):
    def work():
        raise collision()

    with app.test_request_context(), pytest.raises(Conflict, match="busy"):
        committed(work, conflict="busy")
