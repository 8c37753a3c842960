"""The CPU split that says whether a throughput target is bound by the machine's cores."""

from __future__ import annotations

import subprocess
import sys

from benchmarks.common import CpuSplit

# Waits for "go", burns 0.4 s of CPU, says so, and stays alive (as a served process does) until told.
BURN = """import time
input()
end = time.process_time() + 0.4
while time.process_time() < end:
    pass
print("done", flush=True)
input()
"""


def test_a_servers_cpu_is_counted_as_the_servers_not_the_clients() -> None:
    proc = subprocess.Popen([sys.executable, "-c", BURN], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        split = CpuSplit(server_pid=proc.pid, postgres_pid=None)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "done"  # blocks without spending the client's CPU
        out = split.per_unit(2)
    finally:
        proc.communicate("\n", timeout=30)
    per = out["cpu_ms_per_unit"]
    assert per["server"] >= 190  # 0.4 s over two units
    assert per["client"] < 100
    assert per["postgres"] == 0
    assert per["machine"] >= per["server"]
    assert out["machine_busy_share"] > 0
