"""deploy/grafana/verify.json and deploy/prometheus/alerts.yml speak of metrics the service exposes,
with labels it sets; the rules pass promtool (when installed) and their own unit tests."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.contract import ContractClient
from verify.app import create_app

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "verify.json"
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yml"

METRIC = re.compile(r"\b(verify_[a-z0-9_]+)\b(\{[^}]*\})?")
MATCHER = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)")
# Grouping and the labels a histogram adds are not the service's own label names.
PROMQL_LABELS = {"le"}


def dashboard_expressions() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


@pytest.fixture
def exposition(geoip_settings, assess_headers) -> dict[str, set[str]]:
    """Every series name the service exposes after some traffic, with the label names it carries."""
    app = create_app(geoip_settings)
    app.test_client_class = ContractClient
    client = app.test_client()
    client.post("/v1/assessments", json={"email": "someone@acme-corp.io", "ip": "81.2.69.160"}, headers=assess_headers)
    client.get("/readyz")  # asks the DNS canary
    text = client.get("/metrics").get_data(as_text=True)
    app.extensions["verify"].database.dispose()
    found: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, set()).update(sample.labels)
    return found


def test_every_metric_and_label_the_dashboard_and_the_rules_use_is_exposed(exposition):
    expressions = dashboard_expressions() + [rule["expr"] for rule in rules()]
    used = set()
    for expression in expressions:
        for name, matchers in METRIC.findall(expression):
            used.add(name)
            assert name in exposition, f"{name} is not in /metrics (used in {expression!r})"
            for label in MATCHER.findall(matchers or ""):
                assert label in exposition[name] | PROMQL_LABELS, f"{name} has no label {label!r}"
        for label_list in re.findall(r"\b(?:by|without|ignoring|on)\s*\(([^)]*)\)", expression):
            for label in filter(None, (part.strip() for part in label_list.split(","))):
                assert any(label in labels for labels in exposition.values()) or label in PROMQL_LABELS, label
    # What the issue asks the dashboard to show: verdicts, reasons, latency, database and DNS errors, GeoIP age.
    for wanted in (
        "verify_assessments_total", "verify_reasons_total", "verify_http_request_duration_seconds_bucket",
        "verify_database_errors_total", "verify_dns_lookups_total", "verify_geoip_build_timestamp_seconds",
    ):
        assert wanted in used


def test_the_dashboard_is_a_grafana_dashboard_over_a_chosen_prometheus():
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells = set()
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"]
        assert len({target["refId"] for target in panel["targets"]}) == len(panel["targets"])
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24
        covered = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not covered & cells, f"panel {panel['title']!r} overlaps another"
        cells |= covered


def test_the_rules_cover_what_an_operator_is_paged_for_and_each_is_unit_tested():
    found = {rule["alert"]: rule for rule in rules()}
    assert {
        "VerifyHighErrorRate", "VerifySlowAssessments", "VerifyGeoIPStale", "VerifyDNSCanaryFailing", "VerifyDenyRateJump",
    } <= set(found)
    for name, rule in found.items():
        assert re.fullmatch(r"\d+[smhd]", rule["for"]), name
        assert rule["labels"]["severity"] in ("page", "warn"), name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        assert rule["expr"].count("(") == rule["expr"].count(")"), name
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {case["alertname"] for test in tests for case in test["alert_rule_test"] if case["exp_alerts"]}
    quiet = {case["alertname"] for test in tests for case in test["alert_rule_test"] if not case["exp_alerts"]}
    assert fired == quiet == set(found), "every alert needs a case where it fires and one where it does not"


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (Debian package prometheus); the rules were checked by parsing")
    return found


def test_promtool_accepts_the_rules():
    result = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_pass_their_promtool_unit_tests():
    result = subprocess.run([promtool(), "test", "rules", RULE_TESTS.name], cwd=RULE_TESTS.parent, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
