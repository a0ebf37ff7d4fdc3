"""A real HTTP server on 127.0.0.1 for download tests: routes that answer, fail, redirect,
stall, cut a body short, or honour ETag and If-Modified-Since, and a log of what was asked."""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    """How one path (with its query) answers."""

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None  # an HTTP date; If-Modified-Since equal to it gets 304
    redirect: str | None = None  # a path or URL: answer 302 with Location
    delay: float = 0.0  # seconds before the answer (a server that stalls)
    cut_after: int | None = None  # send only this many bytes of the body, then close
    auth: tuple[str, str] | None = None  # basic auth the route demands (401 otherwise)
    refuse_auth: bool = False  # a presigned storage URL: credentials sent along are an error


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]


class LocalHTTPServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                outer.seen.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}))
                route = outer.routes.get(self.path)
                if route is None:
                    return self._answer(404, b"not found\n")
                if route.delay:
                    time.sleep(route.delay)
                if route.auth is not None:
                    expected = "Basic " + base64.b64encode(f"{route.auth[0]}:{route.auth[1]}".encode()).decode()
                    if self.headers.get("Authorization") != expected:
                        return self._answer(401, b"Invalid license key\n")
                if route.refuse_auth and self.headers.get("Authorization"):
                    return self._answer(400, b"Only one auth mechanism allowed\n")
                if route.redirect is not None:
                    target = route.redirect if "://" in route.redirect else outer.url(route.redirect)
                    return self._answer(302, b"", {"Location": target})
                if route.etag and self.headers.get("If-None-Match") == route.etag:
                    return self._answer(304, b"", {"ETag": route.etag})
                if route.last_modified and self.headers.get("If-Modified-Since") == route.last_modified:
                    return self._answer(304, b"", {"Last-Modified": route.last_modified})
                headers = dict(route.headers)
                if route.etag:
                    headers["ETag"] = route.etag
                if route.last_modified:
                    headers["Last-Modified"] = route.last_modified
                self._answer(route.status, route.body, headers, cut_after=route.cut_after)

            def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None, *, cut_after: int | None = None) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                if cut_after is not None:
                    self.send_header("Connection", "close")
                self.end_headers()
                if status != 304:
                    self.wfile.write(body if cut_after is None else body[:cut_after])
                if cut_after is not None:
                    self.close_connection = True

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def start(self) -> "LocalHTTPServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
