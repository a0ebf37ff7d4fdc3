"""The console's blueprint and the headers every console answer carries."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template

from verify.errors import VerifyError

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates", static_folder="static")

# No inline script or style, no outside origin, never inside a frame (clickjacking).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@bp.after_request
def security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if response.mimetype == "text/html":
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(VerifyError)
def verify_error(error: VerifyError):
    """A refused change is shown on a page, in words, never as a stack trace."""
    from verify.api.errors import STATUS  # one mapping from error class to status, for API and console

    status = next((STATUS[cls][0] for cls in type(error).__mro__ if cls in STATUS), 400)
    return render_template("console/error.html", error=error, status=status), status


def console_enabled() -> bool:
    return bool(current_app.secret_key)
