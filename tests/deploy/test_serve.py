"""`verify serve` as production runs it: nothing left on the host that a second instance would
share (no gunicorn control socket), and /metrics summing the workers from the start."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time

from tests.store.test_resilience import ROOT, free_port, get


def test_verify_serve_opens_no_control_socket_and_exposes_its_workers_metrics(tmp_path, sqlite_template, geoip_files):
    database = tmp_path / "verify.db"
    shutil.copy(sqlite_template, database)
    home, runtime = tmp_path / "home", tmp_path / "run"
    home.mkdir()
    runtime.mkdir()
    port = free_port()
    env = {
        **os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(runtime),
        "VERIFY_DATABASE_URL": f"sqlite:///{database}", "VERIFY_MX_CHECK": "off",
        "VERIFY_GEOIP_CITY_DB": str(geoip_files["city"]),
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
        # The master opened the GeoIP file before it forked; the workers' own metrics must still show.
        text = get(port, "/metrics")[1].decode()
        assert re.search(r'^verify_geoip_build_timestamp_seconds\{role="city"\} [1-9]', text, re.MULTILINE), text[:2000]
        assert re.search(r'^verify_assessments_total\{verdict="deny"\} 0\.0$', text, re.MULTILINE)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
