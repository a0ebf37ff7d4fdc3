"""Structured JSON logs, one line per event, with the request id; personal data never leaves raw.

Every line goes through `redact`: email addresses and phone numbers become a short hash (the
same person gives the same hash, so lines can still be correlated), and API key secrets and
bearer tokens are cut. That holds for messages, extra fields and tracebacks alike, because
database errors quote the parameters of the failed statement.

The access log line is the exception that proves the rule: its fields are built here from
values the service chose (the URL rule, the status, the duration), so they are masked by name
only, and only its client-supplied parts (an unmatched path, an unknown method, a key's name)
are searched by the patterns; it then costs microseconds, not a regex pass per field.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import ipaddress
import json
import logging
import re
import sys
import time
import unicodedata
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import orjson
from flask import Flask, Response, g, has_request_context, request
from sqlalchemy import exc as sa_exc
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.sql import util as sql_util

HANDLER_NAME = "verify-json"
REQUEST_ID_HEADER = "X-Request-Id"
# A caller's request id is kept when it is short and made of characters that cannot break a
# log line or a header (no spaces, quotes or control characters); otherwise we make one.
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

API_KEY = re.compile(r"vk_[0-9a-f]+_[A-Za-z0-9_\-]+")
BEARER = re.compile(r"(?i)(bearer\s+)\S+")
_EMAIL_CHAR = r"[^\s@\"'<>(),;:\[\]]"
# Starts only where a run of such characters starts: a long run without an @ is read once,
# not once per position.
EMAIL = re.compile(rf"(?<!{_EMAIL_CHAR}){_EMAIL_CHAR}+@{_EMAIL_CHAR}+")

# Field names whose values are personal data or secrets wherever they appear: extra fields,
# keys of JSON and dicts, `name='value'` in the reprs an exception message quotes, SQL
# parameters by name. Free text is searched by the patterns below instead.
EMAIL_FIELDS = frozenset({"email", "emails", "normalized", "canonical", "email_canonical", "local"})
PHONE_FIELDS = frozenset({"phone", "phones", "phone_e164", "e164"})
SENSITIVE_FIELDS = EMAIL_FIELDS | PHONE_FIELDS | frozenset({
    "external_id", "user_agent", "device_id", "payment_fingerprint", "metadata", "api_key", "x_api_key", "secret", "key_secret",
    "password", "token", "authorization", "cookie", "set_cookie",
})
_NAMES = "|".join(sorted(SENSITIVE_FIELDS, key=len, reverse=True))
# A sensitive name with a quoted value, a (two levels deep) dict, or after a bare `=` a word:
# `external_id='acct-1'`, `"user_agent": "Mozilla…"`, `metadata={'a': {'b': 1}}`, `?phone=…`.
# Every branch is a run of one character class: no nested quantifiers to backtrack through.
NAMED_VALUE = re.compile(
    rf"""(?i)(?<![\w])(?P<name>{_NAMES})(?:(?P<sep>['"]?[ \t]*[:=][ \t]*)(?P<quoted>'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|\{{(?:[^{{}}\n]|\{{[^{{}}\n]*\}})*\}})|=(?P<bare>[^\s,;&)}}\]'"]+))"""
)
# SQLAlchemy shows long parameters as head ` ... (N characters truncated) ... ` tail: an address
# can be cut in two there, each half without its @.
TRUNCATED = re.compile(r" \.\.\. \(?\d+ characters truncated\)? \.\.\. ")
WHITESPACE = re.compile(r"\s")

# Phones: 7 to 15 digits (E.164's most) of any script (fullwidth too), with up to three of the
# separators people type between them, an optional leading plus, and a leading parenthesis.
_SEP = r"[ \t\u00a0\u2007\u202f\u3000().\-\u2010-\u2015/\uff08\uff09\uff0d\uff0e\uff0f]"
_PHONE = rf"(?:[+\uff0b]\s?)?\(?\d(?:{_SEP}{{0,3}}\d){{6,14}}\)?"
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
# What looks like digits with separators but is not a phone, tried first at each position and
# kept as it is: our own masks, ISO dates and times, d.m.yyyy dates, IPv4, UUIDs, hex ids.
_KEEP = (
    r"\[(?:email|phone|redacted|truncated)(?::[0-9a-f]*)?\]"
    r"|\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?"
    r"|(?:0?[1-9]|[12]\d|3[01])[./](?:0?[1-9]|[12]\d|3[01])[./](?:19|20)\d\d"
    rf"|{_OCTET}(?:\.{_OCTET}){{3}}"
    r"|[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{16,}"
)
# A phone must be the whole run: not followed by more digits after a separator (else the
# head of a longer number, a date or an address would pass for one).
SCAN = re.compile(rf"(?<![\w+\uff0b])(?:(?P<keep>{_KEEP})(?!\w)|(?P<phone>{_PHONE})(?!\w)(?!{_SEP}{{1,3}}\d))")
PHONE = re.compile(_PHONE)
SAFE_VALUE = re.compile(rf"(?:{_KEEP})|[+-]?\d+(?:\.\d+)?")

# Attributes every LogRecord has; anything else was passed with `extra=` and is logged as a field.
STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "request_id"}

# A record with this attribute is structured: its message and the fields in this dict were
# built by the service (see _finish), so they are masked by name, not searched as free text.
STRUCTURED = "_structured"
# Methods written as they are; any other is the client's text and is redacted.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

log = logging.getLogger("verify.requests")


def fingerprint(value: str) -> str:
    """A short stable hash: enough to correlate lines about one person, useless to read them."""
    folded = unicodedata.normalize("NFKC", value).strip().lower()
    return hashlib.sha256(folded.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def phone_fingerprint(phone: str) -> str:
    """The hash of the number's digits in ASCII (fullwidth or other scripts' digits folded), with its plus."""
    digits = "".join(str(unicodedata.digit(c)) for c in phone if c.isdigit())
    plus = "+" if phone.lstrip()[:1] in ("+", "\uff0b") else ""
    return fingerprint(plus + digits)


def _email_mask(value: str) -> str:
    return f"[email:{fingerprint(value)}]"


def _phone_mask(value: str) -> str:
    return f"[phone:{phone_fingerprint(value)}]"


def _field(name: str) -> str:
    return name.strip().lower().replace("-", "_")


@functools.lru_cache(maxsize=1024)
def _is_sensitive(name: str) -> bool:
    return _field(name) in SENSITIVE_FIELDS


def mask_field(name: str, value: Any) -> Any:
    """The value of a sensitive field, by its name: a fingerprint, never the value."""
    if value is None:
        return None
    field = _field(name)
    if isinstance(value, str) and field in EMAIL_FIELDS:
        return _email_mask(value)
    if isinstance(value, str) and field in PHONE_FIELDS:
        return _phone_mask(value)
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return f"[redacted:{fingerprint(text)}]"


def _named(match: re.Match[str]) -> str:
    name = match.group("name")
    if match.group("bare") is not None:
        return f"{name}={mask_field(name, match.group('bare'))}"
    value = match.group("quoted")
    if value[0] in "'\"":
        value = value[1:-1]
    return f"{name}{match.group('sep')}{mask_field(name, value)}"


def _cut_truncated(text: str) -> str:
    """Mask the words either side of each truncation marker: a cut address is still an address."""
    if "characters truncated" not in text:
        return text
    parts, position = [], 0
    for marker in TRUNCATED.finditer(text):
        if marker.start() < position:
            continue
        start = max(text.rfind(" ", position, marker.start()), text.rfind("\n", position, marker.start()), position - 1) + 1
        after = WHITESPACE.search(text, marker.end())
        end = after.start() if after else len(text)
        parts += [text[position:start], "[truncated]"]
        position = end
    parts.append(text[position:])
    return "".join(parts)


def _scanned(match: re.Match[str]) -> str:
    phone = match.group("phone")
    return _phone_mask(phone) if phone else match.group()


def redact(text: str) -> str:
    """The text with API keys, bearer tokens, sensitive named values, emails and phone numbers masked."""
    text = API_KEY.sub("vk_[redacted]", text)
    text = BEARER.sub(r"\1[redacted]", text)
    text = NAMED_VALUE.sub(_named, text)
    text = _cut_truncated(text)
    if "@" in text:
        text = EMAIL.sub(lambda m: _email_mask(m.group()), text)
    return SCAN.sub(_scanned, text)


def _clean(value: Any, name: str | None = None) -> Any:
    if name is not None and _field(name) in SENSITIVE_FIELDS:
        return mask_field(name, value)
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _clean(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_clean(v) for v in value]
    return redact(str(value))


# -- SQL parameters ------------------------------------------------------------------------
# A positional parameter has no name, and any string may be an external id or a user agent:
# every string is masked unless it is a date, an address, a UUID, a hex id or a number. JSON
# documents (stored signals) are masked leaf by leaf, keys kept. This runs before SQLAlchemy
# renders (and cuts) the parameters, so no address is ever split.

def sql_parameters(value: Any, name: str | None = None) -> Any:
    if isinstance(value, str):
        if name is not None and _field(name) in SENSITIVE_FIELDS:
            return mask_field(name, value)
        return _sql_text(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "[bytes]"
    if isinstance(value, dict):
        return {k: sql_parameters(v, k if isinstance(k, str) else None) for k, v in value.items()}
    if isinstance(value, list):
        return [sql_parameters(v) for v in value]
    if isinstance(value, tuple):
        return tuple(sql_parameters(v) for v in value)
    return value


def _sql_text(value: str) -> str:
    if value.lstrip()[:1] in ("{", "["):
        try:
            document = json.loads(value)
        except ValueError:
            pass
        else:
            return json.dumps(sql_parameters(document), ensure_ascii=False)
    if SAFE_VALUE.fullmatch(value) or _is_ip(value):
        return value
    if EMAIL.fullmatch(value.strip()):
        return _email_mask(value)
    if PHONE.fullmatch(value.strip()):
        return _phone_mask(value)
    return f"[redacted:{fingerprint(value)}]"


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _safe_argument(argument: Any) -> Any:
    # SQLAlchemy passes its parameters to the logger as an object that renders them lazily.
    if isinstance(argument, sql_util._repr_params):
        safe = copy.copy(argument)
        safe.params = sql_parameters(argument.params)
        return safe
    return argument


def _message(record: logging.LogRecord) -> str:
    if isinstance(record.args, tuple) and record.args:
        return str(record.msg) % tuple(_safe_argument(a) for a in record.args)
    return record.getMessage()


def _statement_errors(error: BaseException | None) -> Iterator[sa_exc.StatementError]:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, sa_exc.StatementError):
            yield error
        error = error.__cause__ or error.__context__


def _traceback(text: str, error: BaseException | None) -> str:
    """The traceback with each database error's parameters masked before they were rendered."""
    for statement_error in _statement_errors(error):
        if not statement_error.params:
            continue
        safe = copy.copy(statement_error)
        safe.params = sql_parameters(statement_error.params)
        text = text.replace(str(statement_error), str(safe))
    return redact(text)


_second: tuple[int, str] = (-1, "")


def _timestamp(record: logging.LogRecord) -> str:
    """`2026-12-02T10:00:00.123Z`: the second's text made once per second, not once per line."""
    global _second
    second, text = _second
    if int(record.created) != second:
        second = int(record.created)
        text = datetime.fromtimestamp(second, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        _second = (second, text)
    return f"{text}.{int(record.msecs):03d}Z"


def _dumps(document: dict[str, Any]) -> str:
    try:
        return orjson.dumps(document, default=str).decode()
    except TypeError:  # what orjson refuses (a lone surrogate, an int over 64 bits) the standard library writes
        return json.dumps(document, ensure_ascii=False, default=str)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id and extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        structured = getattr(record, STRUCTURED, None)
        document: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.msg if structured is not None else redact(_message(record)),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            document["request_id"] = request_id
        if structured is not None:
            for name, value in structured.items():
                document[name] = mask_field(name, value) if _is_sensitive(name) else value
        for name, value in vars(record).items():
            if name not in STANDARD_ATTRIBUTES and not name.startswith("_"):
                document[name] = _clean(value, name)
        if record.exc_info:
            document["exception"] = _traceback(self.formatException(record.exc_info), record.exc_info[1])
        elif record.exc_text:
            document["exception"] = redact(record.exc_text)
        if record.stack_info:
            document["stack"] = redact(record.stack_info)
        return _dumps(document)


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


@functools.lru_cache(maxsize=256)
def _key_label(name: str) -> str:
    # A key's name is an admin's free text; there are few, so each is redacted once.
    return redact(name)


def _key_name(key: Any) -> str | None:
    if key is None:
        return None
    # The key's name as loaded: after a failed statement the session is rolled back, and
    # reading an expired attribute would query the database again from inside this hook.
    state = sa_inspect(key, raiseerr=False)
    name = state.dict.get("name") if state is not None else getattr(key, "name", None)
    return _key_label(name) if isinstance(name, str) else None


def _finish(response: Response) -> Response:
    request_id = g.get("request_id") or request_id_from(None)
    response.headers[REQUEST_ID_HEADER] = request_id
    if not log.isEnabledFor(logging.INFO):
        return response
    started = g.get("log_started")
    current = request._get_current_object()
    route = current.url_rule.rule if current.url_rule else None
    method = current.method if current.method in KNOWN_METHODS else redact(current.method)
    status = response.status_code
    fields = {
        "method": method,
        "route": route,
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2) if started else None,
        "key": _key_name(g.get("api_key")),
    }
    # The raw path of an unmatched request is the client's text (scanners probe with addresses).
    message = f"{method} {route or redact(current.path)} {status}"
    # makeRecord and handle, not log.info: no walk up the stack for a caller nobody reads.
    log.handle(log.makeRecord(log.name, logging.INFO, __file__, 0, message, None, None, extra={"request_id": request_id, STRUCTURED: fields}))
    return response


def init_app(app: Flask) -> None:
    configure_logging()
    app.before_request(_begin)
    app.after_request(_finish)
