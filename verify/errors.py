"""The service's one exception tree; api/errors.py maps each class to problem+json."""

from __future__ import annotations


class VerifyError(Exception):
    """Base of every error the service raises on purpose."""

    def __init__(self, detail: str, *, errors: list[dict] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class InvalidInput(VerifyError):
    """Well-formed JSON that breaks the rules (a field, a value, a limit)."""


class MalformedRequest(VerifyError):
    """A body that cannot be read at all (not JSON)."""


class NotFound(VerifyError):
    """The thing named does not exist."""


class Conflict(VerifyError):
    """The request contradicts what is stored (an idempotency key reused, a name taken)."""


class Unauthenticated(VerifyError):
    """No API key, or one the service does not know."""


class Forbidden(VerifyError):
    """A known key without the scope the route needs."""


class PayloadTooLarge(VerifyError):
    """The body is larger than the service accepts."""


class UnsupportedMediaType(VerifyError):
    """The body is not in a format the route takes."""


class UpstreamFailed(VerifyError):
    """An outside source (a feed, a GeoIP download) failed or sent something unusable."""


class Unavailable(VerifyError):
    """A dependency (the database) is not reachable right now."""
