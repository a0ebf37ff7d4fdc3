"""The baseline: the cheapest Flask JSON endpoint, served by the same gunicorn settings."""

from flask import Flask, request


def create_app() -> Flask:
    app = Flask(__name__)

    @app.post("/v1/assessments")
    def assess():
        body = request.get_json()
        return {"id": "baseline", "verdict": "allow", "email": body.get("email")}, 201

    return app
