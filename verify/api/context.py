"""Per-app services and the per-request database session (opened lazily on `g`)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app, g
from sqlmodel import Session

from verify.assessing import Assessor
from verify.settings import Settings
from verify.store.database import Database


@dataclass
class Services:
    settings: Settings
    database: Database
    assessor: Assessor


def services() -> Services:
    return current_app.extensions["verify"]


def db_session() -> Session:
    """The request's session, opened on first use and closed on teardown."""
    if "db_session" not in g:
        g.db_session = services().database.session()
    return g.db_session


def _close_session(_error: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def init_app(app: Flask, services: Services) -> None:
    app.extensions["verify"] = services
    app.teardown_appcontext(_close_session)
