"""VERIFY_SERVER_TIMING: an assessment's stages in a Server-Timing header.

The view marks its own stages (verify/stages.py) and the answer's JSON (`respond`); what
follows its return (the verdict's counters, the access log line, the request metrics and
the other after-request hooks) is marked `logging` once Flask has run them all, when it
sends `request_finished`, and the header is written then.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, g, request_finished

from verify.settings import Settings
from verify.stages import Stages


def time_rest(stages: Stages) -> None:
    """The rest of this request, after the view returns, is timed as `logging` in `stages`."""
    if stages.enabled:
        g.server_timing = stages


def _finished(sender: Flask, response: Response, **extra: Any) -> None:
    stages = g.get("server_timing")
    if stages is not None:
        stages.mark("logging")
        response.headers["Server-Timing"] = stages.header()


def init_app(app: Flask, settings: Settings) -> None:
    if settings.server_timing:
        request_finished.connect(_finished, app)
