"""Opaque cursors for keyset paging: a position, encoded so that callers do not build their own."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from verify.errors import InvalidInput


def encode_cursor(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, *, key: str, kind: type) -> Any:
    """The position a cursor holds, or None without one; 422 for a cursor this service did not make."""
    if cursor is None:
        return None
    try:
        document = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        document = None
    value = document.get(key) if isinstance(document, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool) or (isinstance(value, str) and "\x00" in value):
        raise InvalidInput("the cursor is not valid", errors=[{"field": "cursor", "message": "use the next_cursor of a previous page"}])
    return value
