"""Per-request metrics: every answer is counted and timed under its URL rule, never its raw path."""

from __future__ import annotations

import time

from flask import Flask, Response, g, request

from verify import metrics

UNMATCHED = "unmatched"  # 404s: raw paths would give Prometheus one series per scanner probe


def _start() -> None:
    g.metrics_started = time.perf_counter()


def _record(response: Response) -> Response:
    started = g.get("metrics_started")
    if started is not None:
        current = request._get_current_object()  # one look through the proxy, not three
        metrics.record_request(
            method=current.method,
            route=current.url_rule.rule if current.url_rule else UNMATCHED,
            status=response.status_code,
            seconds=time.perf_counter() - started,
        )
    return response


def init_app(app: Flask) -> None:
    metrics.collectors()  # the zero-valued series of closed label sets exist from the start
    app.before_request(_start)
    app.after_request(_record)
