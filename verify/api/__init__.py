"""The HTTP layer: one blueprint per resource."""

from __future__ import annotations

from flask import Flask

from verify.api import assessments, audit, erasure, errors, lists, operations, policy, revisions, stats, webhooks

BLUEPRINTS = (operations.bp, assessments.bp, lists.bp, policy.bp, audit.bp, erasure.bp, revisions.bp, stats.bp, webhooks.bp)


def init_app(app: Flask) -> None:
    errors.init_app(app)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
