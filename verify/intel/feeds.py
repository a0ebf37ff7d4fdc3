"""Public sources that fill lists: their formats, read into raw values, and the download.

A feed is not an admin's input: a file from the internet carries the odd broken line, so bad
values are skipped and counted, and only a download that is mostly bad is refused whole. A
document that is not in its format at all (an HTML error page, a JSON file of another shape)
is refused whole too.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from verify.engine.identity import MailRules
from verify.engine.list_values import Located, ValueInvalid, normaliser, text_lines
from verify.errors import UpstreamFailed
from verify.intel.download import Fetched, fetch

# What share of the values may be bad before a download is refused whole.
MOST_BAD = 0.5
BAD_EXAMPLES = 5


class FeedInvalid(UpstreamFailed):
    """The download is not a document of the feed's format, or most of its values are bad."""


# -- formats -------------------------------------------------------------------------------

def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FeedInvalid("the download is not UTF-8 text") from None


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(_text(data))
    except json.JSONDecodeError as error:
        raise FeedInvalid(f"the download is not a JSON document ({what} expected): {error}") from None


def _items(document: Any, key: str, what: str) -> list:
    items = document.get(key) if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise FeedInvalid(f"the download is not {what}: it has no `{key}` array")
    return items


def read_lines(data: bytes) -> list[Located]:
    """One value per line, `#` comments: the Tor bulk exit list, disposable-domain upstreams, any list."""
    return text_lines(_text(data))


def read_csv(data: bytes) -> list[Located]:
    """The first column of each row; `#` rows skipped. A header row is just one bad value."""
    found = []
    for number, cells in enumerate(csv.reader(io.StringIO(_text(data))), start=1):
        first = cells[0].strip() if cells else ""
        if first and not first.startswith("#"):
            found.append(Located(f"line {number}", first))
    return found


def read_tor(data: bytes) -> list[Located]:
    """The Tor Project's exit lists: `ExitAddress <ip> <date>` lines of exit-addresses, or the
    bulk exit list's one address per line. The other exit-addresses lines carry no address."""
    found = []
    for located in text_lines(_text(data)):
        words = located.raw.split()
        if words[0] == "ExitAddress" and len(words) >= 2:
            found.append(Located(located.where, words[1]))
        elif words[0] not in ("ExitNode", "Published", "LastStatus"):
            found.append(located)
    return found


def read_aws(data: bytes) -> list[Located]:
    """AWS ip-ranges.json: prefixes[].ip_prefix and ipv6_prefixes[].ipv6_prefix."""
    document = _json(data, "AWS ip-ranges.json")
    what = "AWS ip-ranges.json"
    found = [Located(f"prefixes[{i}]", _field(item, "ip_prefix")) for i, item in enumerate(_items(document, "prefixes", what))]
    found += [
        Located(f"ipv6_prefixes[{i}]", _field(item, "ipv6_prefix"))
        for i, item in enumerate(document.get("ipv6_prefixes") or [])
    ]
    return found


def read_google_cloud(data: bytes) -> list[Located]:
    """Google Cloud cloud.json (and goog.json): prefixes[].ipv4Prefix or ipv6Prefix."""
    document = _json(data, "Google Cloud cloud.json")
    found = []
    for i, item in enumerate(_items(document, "prefixes", "Google Cloud cloud.json")):
        value = _field(item, "ipv4Prefix") or _field(item, "ipv6Prefix")
        found.append(Located(f"prefixes[{i}]", value))
    return found


def read_azure(data: bytes) -> list[Located]:
    """Azure Service Tags JSON: values[].properties.addressPrefixes[]."""
    document = _json(data, "Azure Service Tags JSON")
    found = []
    for i, item in enumerate(_items(document, "values", "Azure Service Tags JSON")):
        properties = item.get("properties") if isinstance(item, dict) else None
        prefixes = properties.get("addressPrefixes") if isinstance(properties, dict) else None
        if not isinstance(prefixes, list):
            found.append(Located(f"values[{i}]", ""))
            continue
        found += [Located(f"values[{i}].properties.addressPrefixes[{j}]", _string(p)) for j, p in enumerate(prefixes)]
    return found


def read_oracle(data: bytes) -> list[Located]:
    """Oracle Cloud public_ip_ranges.json: regions[].cidrs[].cidr."""
    document = _json(data, "Oracle Cloud public_ip_ranges.json")
    found = []
    for i, region in enumerate(_items(document, "regions", "Oracle Cloud public_ip_ranges.json")):
        cidrs = region.get("cidrs") if isinstance(region, dict) else None
        if not isinstance(cidrs, list):
            found.append(Located(f"regions[{i}]", ""))
            continue
        found += [Located(f"regions[{i}].cidrs[{j}]", _field(item, "cidr")) for j, item in enumerate(cidrs)]
    return found


def _string(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _field(item: Any, key: str) -> str:
    return _string(item.get(key)) if isinstance(item, dict) else ""


READERS: dict[str, Callable[[bytes], list[Located]]] = {
    "lines": read_lines,
    "csv": read_csv,
    "tor": read_tor,
    "aws": read_aws,
    "google-cloud": read_google_cloud,
    "azure": read_azure,
    "oracle": read_oracle,
}
FORMATS = tuple(READERS)


# -- values ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Values:
    """The normalised values of one download, and what was skipped."""

    values: list[str]
    read: int
    skipped: int
    examples: list[str] = field(default_factory=list)


def feed_values(data: bytes, *, feed_format: str, kind: str, rules: MailRules) -> Values:
    """Read and normalise a download with the list kind's normaliser; skip bad values, refuse a mostly bad file."""
    located = READERS[feed_format](data)
    normalise = normaliser(kind, rules=rules)
    good: list[str] = []
    examples: list[str] = []
    skipped = 0
    for item in located:
        try:
            good.append(normalise(item.raw))
        except ValueInvalid as error:
            skipped += 1
            if len(examples) < BAD_EXAMPLES:
                examples.append(f"{item.where}: {item.raw[:80]!r}: {error}")
    if not located:
        raise FeedInvalid("the download holds no values")
    if skipped > len(located) * MOST_BAD:
        raise FeedInvalid(
            f"{skipped} of {len(located)} values are not valid {kind} entries; refusing the download "
            f"(is it the right format?): " + "; ".join(examples)
        )
    return Values(list(dict.fromkeys(good)), read=len(located), skipped=skipped, examples=examples)


# -- the download --------------------------------------------------------------------------

@dataclass(frozen=True)
class Download:
    fetched: Fetched
    body: bytes = b""


def download_feed(
    url: str,
    *,
    etag: str | None,
    last_modified: str | None,
    timeout: float,
    max_bytes: int,
    on_total: Callable[[int | None], None] | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> Download:
    """GET the feed, conditionally when an ETag or Last-Modified of the last sync is known."""
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    body = io.BytesIO()
    fetched = fetch(url, body, timeout=timeout, max_bytes=max_bytes, headers=headers, on_total=on_total, on_chunk=on_chunk)
    return Download(fetched, body.getvalue())
