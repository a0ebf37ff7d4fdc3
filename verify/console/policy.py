"""Policy: points, thresholds and limits as a form; simulate before saving; versions, diffs and restore."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for

from verify.api.context import db_session
from verify.api.policy import policy_json, proposed, stored_body
from verify.console.auth import current_key, requires_admin
from verify.console.blueprint import bp
from verify.console.charts import transition_bars
from verify.engine.reasons import CATALOGUE
from verify.engine.simulation import StoredJudgement, simulate
from verify.errors import InvalidInput, Unavailable
from verify.store.policy import add_policy_version, current_policy, get_policy_version, policy_versions, recent_judgements, restore_policy_version
from verify.store.transactions import commit

SIMULATED = 10_000


def form_document(form: Any) -> dict[str, Any]:
    """The policy document a submitted form describes; a field that is not a whole number is named."""
    document: dict[str, Any] = {"thresholds": {}, "points": {}, "limits": {}}
    problems = []
    for field, text in form.items():
        section, _, name = field.partition(":")
        if section not in document or not name:
            continue
        try:
            document[section][name] = int(text.strip())
        except ValueError:
            problems.append(f"{name}: {text[:20]!r} is not a whole number")
    if problems:
        raise InvalidInput("; ".join(problems))
    return document


def diff(older: dict[str, Any], newer: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(field, old value, new value) for every threshold, point and limit that differs."""
    changes = []
    for section in ("thresholds", "points", "limits"):
        for name in sorted(set(older[section]) | set(newer[section])):
            before, after = older[section].get(name), newer[section].get(name)
            if before != after:
                changes.append((f"{section}.{name}", before, after))
    return changes


def page(document: dict[str, Any], *, simulation: dict | None = None, status: int = 200):
    session = db_session()
    current = current_policy(session=session)
    if current is None:
        raise Unavailable("the database holds no policy yet; run `verify db upgrade`")
    versions = policy_versions(session=session)
    numbers = [row.version for row in versions]
    a = request.args.get("a", type=int) or (numbers[1] if len(numbers) > 1 else numbers[0])
    b = request.args.get("b", type=int) or numbers[0]
    compared = diff(policy_json(get_policy_version(a, session=session)), policy_json(get_policy_version(b, session=session)))
    return render_template(
        "console/policy.html", document=document, current=policy_json(current), catalogue=CATALOGUE, versions=versions,
        simulation=simulation, transitions=transition_bars(simulation["transitions"]) if simulation else [],
        a=a, b=b, compared=compared,
    ), status


@bp.get("/policy")
@requires_admin
def policy():
    current = current_policy(session=db_session())
    return page(policy_json(current) if current else {"thresholds": {}, "points": {}, "limits": {}})


@bp.post("/policy")
@requires_admin
def policy_action():
    """Simulate the form over stored history, or save it as a new version."""
    document = form_document(request.form)
    policy = proposed(document)
    if request.form.get("action") == "save":
        session = db_session()
        row = add_policy_version(stored_body(policy), actor=current_key().name, session=session)
        commit(session)
        flash(f"Saved policy version {row.version}.")
        return redirect(url_for("console.policy"))
    rows = recent_judgements(SIMULATED, session=db_session())
    result = simulate((StoredJudgement(*row) for row in rows), policy)
    return page({**policy.to_document()}, simulation=result)


@bp.post("/policy/versions/<int:version>/restore")
@requires_admin
def restore(version: int):
    session = db_session()
    row = restore_policy_version(version, actor=current_key().name, session=session)
    commit(session)
    flash(f"Restored version {version} as version {row.version}.")
    return redirect(url_for("console.policy"))
