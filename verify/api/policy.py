"""/v1/policy: the scoring policy in force, new versions of it, and what-if simulation (scope admin)."""

from __future__ import annotations

from typing import Annotated, Any

from flask import Blueprint
from pydantic import BaseModel, Field

from verify.api.auth import current_key, requires_scope
from verify.api.bodies import parse_query, read_json
from verify.api.context import db_session
from verify.api.schemas import timestamp
from verify.engine.policy import Policy, PolicyInvalid, parse_policy
from verify.engine.reasons import default_points
from verify.engine.simulation import StoredJudgement, StoredRevision, simulate, simulate_revisions
from verify.errors import InvalidInput, Unavailable
from verify.store.policy import (
    add_policy_version,
    current_policy,
    get_policy_version,
    policy_versions,
    recent_judgements,
    restore_policy_version,
)
from verify.store.models import PolicyVersion
from verify.store.transactions import committed
from verify.store.revisions import recent_revisions

bp = Blueprint("policy", __name__, url_prefix="/v1/policy")


class SimulateQuery(BaseModel):
    last: Annotated[int, Field(ge=1, le=100_000)] = 10_000


def proposed(document: Any) -> Policy:
    """A policy document from a request, validated; 422 names each problem."""
    try:
        return parse_policy(document, version=0, base_points=default_points())
    except PolicyInvalid as error:
        raise InvalidInput("the policy is not valid", errors=error.errors) from None


def stored_body(policy: Policy) -> dict[str, Any]:
    """What a version stores: every point and limit resolved, so it judges alike whatever the defaults become."""
    document = policy.to_document()
    return {"thresholds": document["thresholds"], "points": document["points"], "limits": document["limits"]}


def policy_json(row: PolicyVersion) -> dict[str, Any]:
    document = parse_policy(row.body, version=row.version, base_points=default_points()).to_document()
    return {**document, "created_at": timestamp(row.created_at), "created_by": row.created_by}


@bp.get("")
@requires_scope("admin")
def read():
    row = current_policy(session=db_session())
    if row is None:
        raise Unavailable("the database holds no policy yet; run `verify db upgrade`")
    return policy_json(row)


@bp.put("")
@requires_scope("admin")
def replace():
    policy = proposed(read_json())
    session = db_session()
    row = committed(
        lambda: add_policy_version(stored_body(policy), actor=current_key().name, session=session),
        session=session,
        conflict="another policy version was stored at the same moment; retry",
    )
    return policy_json(row)


@bp.post("/simulate")
@requires_scope("admin")
def simulation():
    query = parse_query(SimulateQuery)
    policy = proposed(read_json())
    session = db_session()
    rows = recent_judgements(query.last, session=session)
    result = simulate((StoredJudgement(*row) for row in rows), policy)
    revised = recent_revisions(query.last, session=session)
    result["revisions"] = simulate_revisions((StoredRevision(row.verdict, row.reasons, row.signals) for row in revised), policy)
    return result



@bp.get("/versions")
@requires_scope("admin")
def versions():
    rows = policy_versions(session=db_session())
    return {"items": [{"version": row.version, "created_at": timestamp(row.created_at), "actor": row.created_by} for row in rows]}


@bp.get("/versions/<int:version>")
@requires_scope("admin")
def version(version: int):
    return policy_json(get_policy_version(version, session=db_session()))


@bp.post("/versions/<int:version>/restore")
@requires_scope("admin")
def restore(version: int):
    session = db_session()
    row = committed(
        lambda: restore_policy_version(version, actor=current_key().name, session=session),
        session=session, conflict="another policy version was stored at the same moment; retry",
    )
    return policy_json(row)
