"""Gunicorn, embedded: `verify serve` runs create_app() in each worker."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

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


def run_gunicorn(settings: Settings, *, host: str, port: int, workers: int) -> None:
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    options = {
        "bind": bind,
        "workers": workers,
        "worker_class": "sync",
        "timeout": 30,
        "graceful_timeout": 10,
        "accesslog": None,
        "errorlog": "-",
    }
    VerifyServer(settings, options).run()
