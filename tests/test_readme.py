"""The README keeps up with the code: every audit action, every `verify` command, and curl
examples for the investigation routes."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import click

from verify.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
ACTION = re.compile(r"[a-z_]+\.[a-z_]+")


def audit_actions_in_code() -> set[str]:
    """The action of every audit call: a dotted string literal passed to a function named *audit*."""
    found = set()
    for path in (ROOT / "verify").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if "audit" not in name:
                continue
            for argument in node.args:
                if isinstance(argument, ast.Constant) and isinstance(argument.value, str) and ACTION.fullmatch(argument.value):
                    found.add(argument.value)
    return found


def audit_actions_in_readme() -> set[str]:
    section = README.split("### Audit trail", 1)[1].split("\n### ", 1)[0]
    listed = section.split("Actions:", 1)[1].split("Changes of up to", 1)[0]
    return {token for token in re.findall(r"`([^`]+)`", listed) if ACTION.fullmatch(token)}


def test_the_readme_lists_every_audit_action_and_no_other():
    in_code = audit_actions_in_code()
    assert {"list.add", "policy.update", "key.create", "assessments.erase", "assessments.purge"} <= in_code
    assert audit_actions_in_readme() == in_code


def command_paths(group: click.Group, prefix: str = "verify") -> list[str]:
    paths = []
    for name in group.list_commands(click.Context(group)):
        command = group.get_command(click.Context(group), name)
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            paths += command_paths(command, path)
        else:
            paths.append(path)
    return paths


def test_the_readme_shows_every_command():
    missing = [path for path in command_paths(main) if not re.search(rf"(?<![\w-]){re.escape(path)}(?![\w-])", README)]
    assert missing == []


def test_the_readme_has_curl_examples_for_search_feedback_related_and_erasure():
    curls = [line for line in README.splitlines() if "curl " in line]
    for pattern in (r"/v1/assessments\?", r"/v1/assessments/\S+/feedback", r"/v1/assessments/\S+/related", r"/v1/erasure", r"/v1/audit\?"):
        assert any(re.search(pattern, line) for line in curls), pattern


def test_the_readme_gives_the_hot_keys_bounds_the_code_has():
    """The hot path's memory sentence names the thresholds and bounds of store/recent.py, and
    its bytes per kept row hold for rows as a worker keeps them."""
    import json
    import tracemalloc
    import uuid

    from verify.store import recent

    section = README.split("### The hot path", 1)[1].split("\n### ", 1)[0]
    sentence = " ".join(section.split())
    cap = json.loads((ROOT / "data" / "default_policy.json").read_text(encoding="utf-8"))["limits"]["count_cap"]
    assert f"{recent.HOT_AT} signups or more in the long window" in sentence
    assert f"at most {recent.MAX_ROWS:,} rows of such keys, at most {recent.KEEP_FACTOR * cap:,} rows a key" in sentence
    assert "unused for a minute" in sentence and recent.IDLE_SECONDS == 60
    assert f"at most {recent.MAX_LABELS:,}" in sentence
    per_row = int(re.search(r"at most about (\d+) bytes a row", sentence).group(1))
    assert f"about {round(recent.MAX_ROWS * per_row / 2**20, -2):.0f} MiB per worker at most" in sentence

    rows = recent.KEEP_FACTOR * cap
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        entry = recent.Entry(keep=rows)
        for n in range(rows):  # values as a driver returns them: a new string per row
            entry.add(n, 1_700_000_000_000_000 + n, str(uuid.UUID(int=n)), "".join(["al", "low"]), f"user{n:012d}@example.com")
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert 0.7 * per_row <= used / rows <= per_row
