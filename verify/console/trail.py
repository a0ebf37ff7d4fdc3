"""Audit: the filterable trail of every change."""

from __future__ import annotations

from flask import render_template, request
from pydantic import ValidationError

from verify.api.audit import AuditQuery
from verify.api.context import db_session
from verify.console.auth import requires_admin
from verify.console.blueprint import bp
from verify.store.audit import audit_page

PAGE = 100


@bp.get("/audit")
@requires_admin
def audit():
    form = {name: request.args.get(name, "").strip() for name in ("actor", "action", "target", "since", "until")}
    problem, rows = None, []
    try:
        query = AuditQuery(**{name: value for name, value in form.items() if value})
    except ValidationError as error:
        problem = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
    else:
        before = request.args.get("before", type=int)
        rows = audit_page(limit=PAGE + 1, before=before, filters=query.filters(), session=db_session())
    more = rows[PAGE - 1].id if len(rows) > PAGE else None
    return render_template("console/audit.html", form=form, rows=rows[:PAGE], more=more, problem=problem,
                           older={name: value for name, value in form.items() if value})
