"""Request lines and header fields too large to read: 414 and 431, as problem+json.

gunicorn enforces its own limits while it parses (see verify/server.py, which answers those
in problem+json too); these are a little lower, so that under gunicorn a request between the
two is refused by the app, and under any other WSGI server (or the test client) the same
limits hold.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Flask, request
from werkzeug.exceptions import RequestHeaderFieldsTooLarge, RequestURITooLarge

MAX_URI = 8000  # bytes of the request target (path and query), as sent
MAX_HEADER_FIELD = 8000  # bytes of one "Name: value" line
MAX_HEADER_FIELDS = 100

# gunicorn's own limits: its largest request line (8190 is its maximum), the same size for a
# header line, and room for a few more fields than the app takes, so that the app answers first.
GUNICORN_LIMITS = {"limit_request_line": 8190, "limit_request_field_size": 8190, "limit_request_fields": 2 * MAX_HEADER_FIELDS}


def _target_size() -> int:
    environ = request.environ
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw is None:
        path = quote(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""), safe="/;:@&=+$,!~*'()%")
        query = environ.get("QUERY_STRING", "")
        raw = f"{path}?{query}" if query else path
    return len(raw.encode("latin-1", "replace"))


def refuse_oversized() -> None:
    """Refuse a request whose target or headers are over the limits, before anything reads them."""
    if _target_size() > MAX_URI:
        raise RequestURITooLarge(f"the request target is longer than {MAX_URI} bytes; send large inputs in a body")
    fields = list(request.headers.items())
    if len(fields) > MAX_HEADER_FIELDS:
        raise RequestHeaderFieldsTooLarge(f"more than {MAX_HEADER_FIELDS} header fields")
    if any(len(name) + 2 + len(value.encode("latin-1", "replace")) > MAX_HEADER_FIELD for name, value in fields):
        raise RequestHeaderFieldsTooLarge(f"a header field is longer than {MAX_HEADER_FIELD} bytes")


def init_app(app: Flask) -> None:
    app.before_request(refuse_oversized)
