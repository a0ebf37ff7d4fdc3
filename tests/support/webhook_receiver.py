"""A real webhook receiver on 127.0.0.1: it answers each POST as told (ok, fail with 500,
stall past the sender's timeout, redirect), and keeps every request it was sent."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: str  # the mode it was answered in


class WebhookReceiver:
    def __init__(self, *, stall: float = 1.0, hold: float = 0.0) -> None:
        self.mode = "ok"  # ok | fail | stall | drip | redirect
        self.stall = stall  # seconds a stalled answer waits (longer than the sender's timeout)
        self.hold = hold  # seconds every answer takes (to widen races between workers)
        self.received: list[Received] = []
        self.in_flight: dict[str, int] = {}
        self.overlaps = 0  # requests for a webhook-id that arrived while another was in flight
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                mode = outer.mode
                message = headers.get("webhook-id", "")
                with outer._lock:
                    if outer.in_flight.get(message):
                        outer.overlaps += 1
                    outer.in_flight[message] = outer.in_flight.get(message, 0) + 1
                    outer.received.append(Received(self.path, headers, body, mode))
                try:
                    if outer.hold:
                        time.sleep(outer.hold)
                    if mode == "stall":
                        time.sleep(outer.stall)
                        return self._answer(200, b"too late")
                    if mode == "fail":
                        return self._answer(500, b"internal error " + b"x" * 5000)
                    if mode == "drip":  # 200 at once, then a body of one byte at a time, for ever
                        self.send_response(200)
                        self.send_header("Content-Length", "100000")
                        self.end_headers()
                        for _ in range(500):  # 10 s
                            self.wfile.write(b"x")
                            self.wfile.flush()
                            time.sleep(0.02)
                        return
                    if mode == "redirect":
                        return self._answer(307, b"", {"Location": "/elsewhere"})
                    self._answer(204, b"")
                finally:
                    with outer._lock:
                        outer.in_flight[message] -= 1

            def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                try:
                    self.send_response(status)
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the sender gave up waiting
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "WebhookReceiver":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def ids(self, *, answered: str | None = None) -> list[str]:
        return [r.headers["webhook-id"] for r in self.received if answered is None or r.answered == answered]
