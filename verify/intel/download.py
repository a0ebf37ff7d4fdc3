"""Downloads of outside knowledge over HTTP(S): bounded in time and size, with failures
written for the operator who reads them in a cron mail.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import BinaryIO

import requests

from verify.errors import UpstreamFailed

USER_AGENT = "verify (self-hosted signup verification)"
CHUNK = 64 * 1024


class DownloadFailed(UpstreamFailed):
    """The server could not be reached, refused, failed, was too slow or sent too much."""


@dataclass(frozen=True)
class Fetched:
    """What the server answered: 200 with the body written to the sink, or 304 (not modified)."""

    status: int
    url: str
    size: int = 0
    etag: str | None = None
    last_modified: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def describe_status(status: int, url: str) -> str:
    """A sentence that says what an HTTP error status means for the operator."""
    if status in (401, 403):
        return f"{url} refused the credentials (HTTP {status})"
    if status == 404:
        return f"{url} does not exist (HTTP 404)"
    if status == 429:
        return f"{url} says too many requests (HTTP 429); try again later"
    if status >= 500:
        return f"{url} failed on its side (HTTP {status}); try again later"
    return f"{url} answered HTTP {status}"


def fetch(
    url: str,
    sink: BinaryIO,
    *,
    timeout: float,
    max_bytes: int | None = None,
    auth: tuple[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    on_total: Callable[[int | None], None] | None = None,
    on_chunk: Callable[[int], None] | None = None,
    session: requests.Session | None = None,
) -> Fetched:
    """GET `url` into `sink`, following redirects; raise DownloadFailed on anything but 200 or 304.

    `timeout` bounds the connection, each read, and the whole transfer: a server that drips
    one byte a second would otherwise hold a cron job for hours.
    """
    http = session or requests.Session()
    sent = {"User-Agent": USER_AGENT, **(headers or {})}
    allowed = max(timeout * 20, 600.0)
    deadline = time.monotonic() + allowed
    try:
        # requests drops the Authorization header when a redirect leaves the host, as MaxMind's
        # redirect to its storage provider (a presigned URL) needs.
        with http.get(url, auth=auth, headers=sent, timeout=timeout, stream=True, allow_redirects=True) as response:
            if response.status_code == 304:
                return Fetched(304, response.url, etag=response.headers.get("ETag"), last_modified=response.headers.get("Last-Modified"))
            if response.status_code != 200:
                raise DownloadFailed(describe_status(response.status_code, url))
            declared = response.headers.get("Content-Length")
            total = int(declared) if declared and declared.isdigit() else None
            if max_bytes is not None and total is not None and total > max_bytes:
                raise DownloadFailed(f"{url} is {total} bytes, more than the limit of {max_bytes}")
            if on_total:
                on_total(total)
            size = 0
            for chunk in response.iter_content(CHUNK):
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise DownloadFailed(f"{url} sent more than the limit of {max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise DownloadFailed(f"{url} is too slow: the transfer took longer than {allowed:g} s")
                sink.write(chunk)
                if on_chunk:
                    on_chunk(len(chunk))
            if total is not None and size < total:
                raise DownloadFailed(f"{url} sent {size} of {total} bytes: the transfer was cut short")
            return Fetched(200, response.url, size, response.headers.get("ETag"), response.headers.get("Last-Modified"))
    except requests.Timeout:
        raise DownloadFailed(f"{url} did not answer within {timeout:g} s") from None
    except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError) as error:
        raise DownloadFailed(f"{url} broke off or sent a damaged body: {_root(error)}") from None
    except requests.TooManyRedirects:
        raise DownloadFailed(f"{url} redirects in a loop") from None
    except requests.ConnectionError as error:
        raise DownloadFailed(f"{url} could not be reached or broke off: {_root(error)}") from None
    except requests.RequestException as error:
        raise DownloadFailed(f"{url}: {_root(error)}") from None


def _root(error: BaseException) -> str:
    """The innermost cause, which names the actual problem (refused, reset, name not known)."""
    while error.__context__ is not None and error.__context__ is not error:
        error = error.__context__
    return str(error) or type(error).__name__
