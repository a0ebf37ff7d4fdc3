"""deploy/entrypoint.sh, run as a container runs it but without Docker: wait for the database,
migrate, run the command; idempotent, and safe for containers that start together."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory

from tests.conftest import postgres_database_url, reset_postgres
from verify.store.database import MIGRATIONS, normalise_url

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"


def head_revision() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database_url(request, tmp_path, worker_id) -> str:
    """A database nothing has touched yet: a SQLite path with no file, or this run's PostgreSQL
    database with its schema emptied."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'var' / 'verify.db'}"
    url = postgres_database_url(worker_id)
    reset_postgres(url)
    return url


@pytest.fixture
def empty_postgres_url(worker_id) -> str:
    url = postgres_database_url(worker_id)
    reset_postgres(url)
    return url


def entrypoint(database_url: str, *command: str, wait_seconds: str = "10") -> subprocess.Popen:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "VERIFY_DATABASE_URL": database_url,
        "VERIFY_DB_WAIT_SECONDS": wait_seconds,
        "VERIFY_MX_CHECK": "off",
    }
    return subprocess.Popen(["sh", str(ENTRYPOINT), *command], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=60)
    return process.returncode, out, err


def schema_state(database_url: str) -> tuple[str, int, int]:
    engine = sa.create_engine(normalise_url(database_url))
    with engine.connect() as connection:
        version = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
        lists = connection.execute(sa.text("SELECT count(*) FROM lists")).scalar_one()
        policies = connection.execute(sa.text("SELECT count(*) FROM policy_versions")).scalar_one()
    engine.dispose()
    return version, lists, policies


def test_the_entrypoint_migrates_then_runs_the_command_and_is_idempotent(empty_database_url):
    code, out, err = finish(entrypoint(empty_database_url, "verify", "keys", "list"))
    assert code == 0, err
    assert out == ""  # the migration's chatter is on stderr; stdout is the command's
    first = schema_state(empty_database_url)
    assert first[0] == head_revision() and first[1] > 10 and first[2] == 1

    code, out, err = finish(entrypoint(empty_database_url, "python", "-c", "print('the command ran')"))
    assert code == 0, err
    assert out == "the command ran\n"
    assert schema_state(empty_database_url) == first


@pytest.mark.postgres
def test_containers_that_start_together_migrate_once(empty_postgres_url):
    started = [entrypoint(empty_postgres_url, "true") for _ in range(2)]
    results = [finish(process) for process in started]
    assert [code for code, _, _ in results] == [0, 0], [err for _, _, err in results]
    version, _, policies = schema_state(empty_postgres_url)
    assert version == head_revision() and policies == 1


def test_the_entrypoint_gives_up_on_a_database_that_never_answers(tmp_path):
    marker = tmp_path / "ran"
    url = "postgresql://verify:s3cret-pw@127.0.0.1:9/verify"  # the discard port: nothing listens
    code, out, err = finish(entrypoint(url, "touch", str(marker), wait_seconds="1"))
    assert code == 1
    assert "127.0.0.1:9/verify" in err and "did not answer" in err
    assert "s3cret-pw" not in err and "verify:" not in err.replace("verify.database_wait:", "")
    assert not marker.exists()
