"""Gunicorn, embedded: `verify serve` runs create_app() in each worker."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from gunicorn.app.base import BaseApplication

from verify import metrics
from verify.settings import Settings


class VerifyServer(BaseApplication):
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for name, value in self.options.items():
            self.cfg.set(name, value)

    def load(self):
        from verify.app import create_app

        return create_app(self.settings)


def _worker_exited(_server: Any, worker: Any) -> None:
    # A killed or recycled worker's live gauges must not linger in the sums /metrics shows.
    metrics.mark_process_dead(worker.pid)


def metrics_directory() -> str:
    """A fresh directory for the workers' metric files, named in the environment before they fork."""
    directory = tempfile.mkdtemp(prefix="verify-metrics-")
    os.environ[metrics.MULTIPROC_ENV] = directory
    return directory


def run_gunicorn(settings: Settings, *, host: str, port: int, workers: int) -> None:
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    directory = metrics_directory()
    options = {
        "bind": bind,
        "workers": workers,
        "worker_class": "sync",
        "timeout": 30,
        "graceful_timeout": 10,
        "accesslog": None,
        "errorlog": "-",
        "child_exit": _worker_exited,
    }
    try:
        VerifyServer(settings, options).run()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
