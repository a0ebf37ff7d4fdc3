"""`verify serve` leaves nothing on the host that a second instance would share: no gunicorn control socket."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

from tests.store.test_resilience import ROOT, free_port, get


def test_verify_serve_opens_no_control_socket(tmp_path, sqlite_template):
    database = tmp_path / "verify.db"
    shutil.copy(sqlite_template, database)
    home, runtime = tmp_path / "home", tmp_path / "run"
    home.mkdir()
    runtime.mkdir()
    port = free_port()
    env = {
        **os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(runtime),
        "VERIFY_DATABASE_URL": f"sqlite:///{database}", "VERIFY_MX_CHECK": "off",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "verify", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if get(port, "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None, "verify serve exited during start-up"
            assert time.monotonic() < deadline, "verify serve did not answer"
            time.sleep(0.2)
        made = [path.relative_to(tmp_path) for path in (*home.rglob("*"), *runtime.rglob("*"))]
        assert made == [], f"verify serve left {made} where every instance of the user would find it"
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
