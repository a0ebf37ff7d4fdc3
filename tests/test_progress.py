"""Progress bars: drawn on a terminal, never written into logs."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import time

import pytest

from verify.progress import is_shown, progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_bar_and_a_log_gets_nothing():
    log = io.StringIO()
    with progress("importing blocked-ips", total=10, stream=log) as bar:
        bar.advance(10)
    assert log.getvalue() == "" and not is_shown(log)

    terminal = Terminal()
    with progress("importing blocked-ips", total=10, stream=terminal) as bar:
        bar.advance(10)
    assert "importing blocked-ips" in terminal.getvalue() and is_shown(terminal)


def test_force_color_does_not_draw_bars_into_logs(monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    log = io.StringIO()
    with progress("purging", stream=log) as bar:
        bar.advance(5)
    assert log.getvalue() == ""


def _run_on_a_terminal(args: list[str], env: dict[str, str], *, timeout: float = 120) -> tuple[int, str, str]:
    """Run `python -m verify ARGS` with stderr on a pseudo-terminal; return (status, stdout, what the terminal saw)."""
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "verify", *args], stdout=subprocess.PIPE, stderr=secondary, env=env,
    )
    os.close(secondary)
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([primary], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        elif process.poll() is not None:
            break
    stdout = process.communicate(timeout=timeout)[0]
    os.close(primary)
    return process.returncode, stdout.decode(), seen.decode(errors="replace")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_lists_import_draws_progress_on_a_terminal_only(database_url, tmp_path):
    values = tmp_path / "networks.txt"
    values.write_text("".join(f"10.{i // 256}.{i % 256}.0/24\n" for i in range(30_000)), encoding="utf-8")
    env = {**os.environ, "VERIFY_DATABASE_URL": database_url, "COLUMNS": "100", "TERM": "xterm"}
    status, stdout, terminal = _run_on_a_terminal(["lists", "import", "blocked-ips", str(values)], env)
    assert status == 0, terminal
    assert stdout.strip() == "added 30000, updated 0"
    assert "checking values" in terminal

    piped = subprocess.run(
        [sys.executable, "-m", "verify", "lists", "import", "blocked-ips", str(values)],
        capture_output=True, env=env, timeout=120,
    )
    assert piped.returncode == 0
    assert piped.stdout.decode().strip() == "added 0, updated 0"
    assert "checking values" not in piped.stderr.decode() and "\x1b[" not in piped.stderr.decode()
