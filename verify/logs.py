"""Structured JSON logs, one line per event, with the request id; personal data never leaves raw.

Every line goes through `redact`: email addresses and phone numbers become a short hash (the
same person gives the same hash, so lines can still be correlated), and API key secrets and
bearer tokens are cut. That holds for messages, extra fields and tracebacks alike, because
database errors quote the parameters of the failed statement.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sys
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from flask import Flask, Response, g, has_request_context, request
from sqlalchemy import inspect as sa_inspect

HANDLER_NAME = "verify-json"
REQUEST_ID_HEADER = "X-Request-Id"
# A caller's request id is kept when it is short and made of characters that cannot break a
# log line or a header (no spaces, quotes or control characters); otherwise we make one.
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

API_KEY = re.compile(r"vk_[0-9a-f]+_[A-Za-z0-9_\-]+")
BEARER = re.compile(r"(?i)(bearer\s+)\S+")
EMAIL = re.compile(r"[^\s@\"'<>(),;:\[\]\\]+@[^\s@\"'<>(),;:\[\]\\]+")
# Seven or more digits, with the separators people type in phone numbers between them.
PHONE = re.compile(r"\+?\d(?:[\s().\-]{0,2}\d){6,}")

# Attributes every LogRecord has; anything else was passed with `extra=` and is logged as a field.
STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "request_id"}

log = logging.getLogger("verify.requests")


def fingerprint(value: str) -> str:
    """A short stable hash: enough to correlate lines about one person, useless to read them."""
    return hashlib.sha256(value.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()[:12]


def redact(text: str) -> str:
    """The text with API keys, bearer tokens, emails and phone numbers masked."""
    text = API_KEY.sub("vk_[redacted]", text)
    text = BEARER.sub(r"\1[redacted]", text)
    text = EMAIL.sub(lambda m: f"[email:{fingerprint(m.group())}]", text)
    return PHONE.sub(lambda m: f"[phone:{fingerprint(re.sub(r'[^0-9+]', '', m.group()))}]", text)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return redact(str(value))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id and extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            document["request_id"] = request_id
        for name, value in vars(record).items():
            if name not in STANDARD_ATTRIBUTES and not name.startswith("_"):
                document[name] = _clean(value)
        if record.exc_info:
            document["exception"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            document["exception"] = redact(record.exc_text)
        return json.dumps(document, ensure_ascii=False, default=str)


class RequestIdFilter(logging.Filter):
    """Stamp each record made while a request is handled with that request's id."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None) and has_request_context():
            record.request_id = g.get("request_id")
        return True


def json_handler(stream: Any = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    return handler


def configure_logging() -> None:
    """Send every log line of the process through the JSON handler, once per process."""
    root = logging.getLogger()
    if any(handler.get_name() == HANDLER_NAME for handler in root.handlers):
        return
    root.addHandler(json_handler())
    if root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)
    logging.getLogger("verify").setLevel(logging.INFO)


def request_id_from(header: str | None) -> str:
    if header and SAFE_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def _begin() -> None:
    g.request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
    g.log_started = time.perf_counter()


def _finish(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = g.get("request_id") or request_id_from(None)
    started = g.get("log_started")
    # The key's name as loaded: after a failed statement the session is rolled back, and
    # reading an expired attribute would query the database again from inside this hook.
    key_name = sa_inspect(g.api_key).dict.get("name") if g.get("api_key") is not None else None
    log.info(
        "%s %s %s",
        request.method,
        request.url_rule.rule if request.url_rule else request.path,
        response.status_code,
        extra={
            "method": request.method,
            "route": request.url_rule.rule if request.url_rule else None,
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2) if started else None,
            "key": key_name,
        },
    )
    return response


def init_app(app: Flask) -> None:
    configure_logging()
    app.before_request(_begin)
    app.after_request(_finish)
