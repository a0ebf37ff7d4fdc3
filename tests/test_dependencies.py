"""Every package the service imports is one it declares: `pip install .` (scripts/serve, the
Docker image) installs the runtime dependencies only, while the tests run with the test extras,
which brought `rich` and `requests` in by way of schemathesis and hid their absence."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_top_level_modules() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "verify").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {name for name in found if name not in sys.stdlib_module_names and name not in ("verify", "__future__")}


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_runtime_dependencies() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {normalised(re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]) for requirement in project["dependencies"]}


def test_every_imported_package_is_a_declared_runtime_dependency():
    distributions = importlib.metadata.packages_distributions()
    declared = declared_runtime_dependencies()
    undeclared = {
        module: distributions.get(module, ["(not installed)"])
        for module in imported_top_level_modules()
        if not any(normalised(distribution) in declared for distribution in distributions.get(module, []))
    }
    assert undeclared == {}, f"imported by verify/ but not in [project] dependencies: {undeclared}"
