"""The benchmark's CPU readings from /proc: parsing, and a meter that sees real work."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bench.cpu_use import TICKS_PER_SECOND, CpuMeter, machine_ticks, parse_stat

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux's /proc")


def test_a_stat_line_is_read_past_a_command_holding_spaces_and_parentheses():
    fields = ["S", "1", "4242"] + ["0"] * 8 + [str(3 * TICKS_PER_SECOND), str(TICKS_PER_SECOND)] + ["0"] * 30
    process = parse_stat("77 (gunicorn: worker (x) [verify]) " + " ".join(fields))
    assert process.command == "gunicorn: worker (x) [verify]"
    assert process.group == 4242
    assert process.seconds == pytest.approx(4.0)


def test_the_machines_idle_time_counts_the_wait_for_io():
    assert machine_ticks("cpu  100 5 50 800 40 3 2 0 0 0") == (1000, 840)


def test_the_meter_charges_the_server_group_the_cpu_it_spent():
    spin = ("import sys, time\ninput()\nend = time.process_time() + 0.4\n"
            "while time.process_time() < end: pass\nprint('spun', flush=True)\ntime.sleep(60)")
    server = subprocess.Popen([sys.executable, "-c", spin], start_new_session=True, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        meter = CpuMeter(server_group=server.pid)  # read before the child starts spinning
        server.stdin.write("go\n")
        server.stdin.flush()
        assert server.stdout.readline() == "spun\n"  # 0.4 s of CPU spent, however long that took
        figures = meter.per_request(requests=100)
    finally:
        server.kill()
        server.wait()
    # 0.4 s of CPU over 100 requests is 4 ms each; the interpreter's start may add a little.
    assert 3.9 <= figures["cpu_server"] <= 6.0
    assert 0.0 < figures["busy"] <= 1.0
