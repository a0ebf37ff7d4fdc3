"""scripts/serve and scripts/test install the package only when its metadata changed (run here
on a stand-in project whose .venv records what it is asked to do)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

RECORDER = """#!/bin/sh
echo "$(basename "$0") $*" >> "$(dirname "$0")/../calls.log"
"""


def stand_in_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    for script in ("serve", "test"):
        shutil.copy(ROOT / "scripts" / script, project / "scripts" / script)
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    bin_dir = project / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("python", "verify"):
        (bin_dir / name).write_text(RECORDER)
        (bin_dir / name).chmod(0o755)
    return project


def calls(project: Path, script: str, *args: str) -> list[str]:
    log = project / ".venv" / "calls.log"
    log.unlink(missing_ok=True)
    subprocess.run(["bash", str(project / "scripts" / script), *args], check=True, timeout=30)
    return log.read_text().splitlines()


def serve(project: Path) -> list[str]:
    return calls(project, "serve", "--workers", "1")


def test_serve_installs_only_when_the_package_metadata_changed(tmp_path):
    project = stand_in_project(tmp_path)
    install = "python -m pip install --quiet -e ."
    assert serve(project) == [install, "verify serve --workers 1"]
    assert serve(project) == ["verify serve --workers 1"]
    with (project / "pyproject.toml").open("a") as pyproject:
        pyproject.write("# a new dependency\n")
    assert serve(project) == [install, "verify serve --workers 1"]
    assert serve(project) == ["verify serve --workers 1"]


def test_the_test_script_installs_only_when_the_package_metadata_changed(tmp_path):
    project = stand_in_project(tmp_path)
    install = 'python -m pip install --quiet -e .[test]'
    run_tests = "python -m pytest -n 2 tests/deploy"
    assert calls(project, "test", "tests/deploy") == [install, run_tests]
    assert calls(project, "test", "tests/deploy") == [run_tests]
    (project / "pyproject.toml").write_text((project / "pyproject.toml").read_text() + "# changed\n")
    assert calls(project, "test", "tests/deploy") == [install, run_tests]
