"""The suite itself: it says why tests were skipped, and its PostgreSQL databases are its own
and gone when it ends (run here as an inner pytest session on a one-test file)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import POSTGRES_SKIP_REASON, POSTGRES_URL
from verify.store.database import normalise_url

ROOT = Path(__file__).resolve().parents[1]

INNER = '''
import os
from pathlib import Path

import pytest


def test_on_each_backend(database_url):
    if database_url.startswith("sqlite"):
        pytest.skip("the inner test only looks at PostgreSQL")
    Path(os.environ["RECORD_TO"]).write_text(database_url)
'''


def inner_run(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess, Path]:
    test_file = tmp_path / "test_inner.py"
    test_file.write_text(INNER)
    record = tmp_path / "used.txt"
    environment = {**os.environ, "RECORD_TO": str(record), **env}
    if not env.get("VERIFY_TEST_POSTGRES_URL"):
        environment.pop("VERIFY_TEST_POSTGRES_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "tests.conftest", "-q", str(test_file)],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300,
    )
    return result, record


def test_the_suite_ends_with_its_skip_reasons(tmp_path):
    result, _ = inner_run(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout.split("skipped, by reason", 1)[1]
    assert re.search(rf"\b1\s+{re.escape(POSTGRES_SKIP_REASON)}", summary)
    assert re.search(r"\b1\s+the inner test only looks at PostgreSQL", summary)


@pytest.mark.skipif(not POSTGRES_URL, reason=POSTGRES_SKIP_REASON)
def test_each_run_uses_a_postgresql_database_of_its_own_and_drops_it(tmp_path):
    result, record = inner_run(tmp_path, VERIFY_TEST_POSTGRES_URL=POSTGRES_URL)
    assert result.returncode == 0, result.stdout + result.stderr
    name = sa.engine.make_url(record.read_text()).database
    assert re.fullmatch(r"verify_test_[0-9a-f]{10}_master", name)
    engine = sa.create_engine(normalise_url(POSTGRES_URL))
    with engine.connect() as connection:
        left = connection.execute(sa.text("SELECT count(*) FROM pg_database WHERE datname = :name"), {"name": name}).scalar_one()
    engine.dispose()
    assert left == 0
