"""Opaque cursors for keyset paging: a position, encoded so that callers do not build their own."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from verify.api.bodies import query_error


def encode_cursor(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, *, key: str, kind: type, parameter: str = "cursor") -> Any:
    """The position a cursor holds, or None without one; 422 for a cursor this service did not make."""
    if cursor is None:
        return None
    try:
        document = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        document = None
    value = document.get(key) if isinstance(document, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool) or not _storable(value):
        raise query_error(parameter, "not a cursor this service gave out; use the next_cursor of a previous page")
    return value


def _storable(value: Any) -> bool:
    # A forged position must not reach the database: ids are signed 64-bit, text is UTF-8
    # without NUL (a lone surrogate from a JSON escape cannot be encoded).
    if isinstance(value, int):
        return 0 <= value < 2**63
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return "\x00" not in value
    return False
