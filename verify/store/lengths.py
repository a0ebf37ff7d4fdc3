"""How long each stored text may be, declared once.

The tables (models.py) size their columns from these, the request schemas (api/schemas.py,
api/lists.py, api/erasure.py) refuse longer input with a 422, and a test holds openapi.yaml to
the same numbers: a value the contract accepts always fits its column, on SQLite (which does
not enforce lengths) and on PostgreSQL (which does) alike.
"""

from __future__ import annotations

from verify.engine.identity import MAX_DEVICE_LENGTH, MAX_PAYMENT_LENGTH
from verify.engine.list_values import MAX_REASON_LENGTH

# RFC 5321 4.5.3.1: a 64-octet local part, "@" and a 255-octet domain. Stored as sent when it is
# no address (then NFC may lengthen it, which the schema checks too).
EMAIL = 320
DOMAIN = 255  # RFC 1035 2.3.4
PHONE = 64
IP = 64  # the longest address text is 45 characters; the rest is room for what is refused
DEVICE_ID = MAX_DEVICE_LENGTH  # the device normaliser's own limit
USER_AGENT = 1024
EXTERNAL_ID = 256
PAYMENT_FINGERPRINT = MAX_PAYMENT_LENGTH  # a token or hash from the payment provider, never a card number
IDEMPOTENCY_KEY = 255
NOTE = 1000
KEY_NAME = 100  # an API key's name, also stored as the actor of what the key does
LIST_NAME = 64  # as the pattern of list names (engine/list_values.py) allows
LIST_DESCRIPTION = 500
LIST_VALUE = EMAIL  # the longest kind of value a list holds is an address
LIST_REASON = MAX_REASON_LENGTH  # file uploads are checked by the engine against the same number
ENTRY_SOURCE = 200  # `key:<key name>`, `file:<file name>`, `feed:<name>`, the package's name
FEED_URL = 2000
FEED_ETAG = 500  # validators a server sends; one longer is not kept
FEED_LAST_MODIFIED = 100
FEED_ERROR = 1000  # what went wrong last, cut to fit

