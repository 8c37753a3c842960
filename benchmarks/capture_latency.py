"""How long an agent waits for ``mosaic-memory capture``: the service up, down, and hung.

``python -m benchmarks.capture_latency [--runs 15] [--warmup 2] [--backlog 200]`` starts a real
``mosaic-memory serve`` (a throw-away embedded PostgreSQL, the bundled model) and times, as fresh
processes fed a recorded Claude Code payload on stdin, round-robin so machine load touches each alike:

- ``up``: ``UserPromptSubmit`` and ``PostToolUse`` (Bash, 10 KB of output) stored by the service,
  and ``SessionStart``, which also fetches and prints the context block (three preferences);
- ``down``: the service's port closed (connection refused): the event goes to the spool;
- ``hung``: a port that accepts connections and never answers: capture gives up after
  ``capture.timeout_seconds`` (2 s) and spools;
- peers: ``python -c pass`` and ``mosaic-memory version`` (what any command costs to start).

Then ``--backlog`` events wait in a spool (as captures with the service down leave them) and one
capture, with it up, sends them all first: its time is ``drain``. Last, ``import-transcripts``
reads a generated Claude Code session of ``--turns`` turns twice: the first run adds them, the
second finds them all stored. Prints JSON: p50 / p95 / mean in milliseconds (wall
time of the whole process) per case. The commands run as ``python -m mosaic_memory`` from this
checkout, as the tests do.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import machine, stats
from mosaic_memory.capture.hooks import hook_events
from mosaic_memory.capture.spool import Spool

ROOT = Path(__file__).resolve().parents[1]
ADMIN_KEY = "mm_0bench01_capture-benchmark-admin-key-local"
PAYLOADS = ROOT / "tests" / "capture" / "payloads"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_") and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(MOSAIC_CONFIG_FILE="", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", **extra)
    return env


def _serve(data: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mosaic_memory", "serve", "--port", str(port)],
        cwd=ROOT,
        env=_env(MOSAIC_DATA_DIR=str(data / "service"), MOSAIC_ADMIN_KEY=ADMIN_KEY),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("mosaic-memory serve exited before it was ready")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("mosaic-memory serve did not become ready")


def _time(argv: list[str], env: dict[str, str], stdin: bytes | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, input=stdin, env=env, cwd=ROOT, capture_output=True, check=False)
    elapsed = (time.perf_counter() - start) * 1000.0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode(errors='replace')[-2000:]}")
    return elapsed


def _transcript(path: Path, turns: int) -> Path:
    """A Claude Code session file of ``turns`` turns: prompt, tool call with its result, answer."""
    path.parent.mkdir(parents=True)
    lines = []
    for i in range(turns // 3):
        stamp = f"2025-06-01T10:{i // 60 % 60:02d}:{i % 60:02d}.{i // 3600:03d}Z"
        base = {"sessionId": "bench-session", "cwd": "/home/bench/proj", "timestamp": stamp}
        call = {"type": "tool_use", "id": f"t{i}", "name": "Bash", "input": {"command": f"pytest -q -k case_{i}"}}
        result = {"type": "tool_result", "tool_use_id": f"t{i}", "content": f"case {i}: 1 passed\n" * 20}
        answer = {"type": "text", "text": f"Case {i} passes after the fix to the parser's handling of input {i}."}
        lines += [
            {**base, "type": "user", "message": {"role": "user", "content": f"Check case {i} of the parser"}},
            {**base, "type": "assistant", "message": {"id": f"m{i}", "role": "assistant", "content": [call]}},
            {**base, "type": "user", "message": {"role": "user", "content": [result]}},
            {**base, "type": "assistant", "message": {"id": f"n{i}", "role": "assistant", "content": [answer]}},
        ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _counts(report: dict[str, Any]) -> dict[str, int]:
    return {k: int(report[k]) for k in ("read", "added", "duplicates", "noise")}


def run(runs: int, warmup: int, backlog: int, turns: int) -> dict[str, Any]:
    data = Path(tempfile.mkdtemp(prefix="mosaic-bench-capture-", dir="/tmp"))
    data.chmod(0o755)  # the embedded server refuses a closed directory when run as root
    port = _free_port()
    service = _serve(data, port)
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(1024)  # accepts (in the kernel) and never answers
    try:
        url = f"http://127.0.0.1:{port}"
        r = httpx.post(
            f"{url}/v1/admin/users", json={"name": "bench"}, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        )
        key = r.json()["api_key"]
        for name, value, scope in (
            ("test_command", "pytest -q (never python -m unittest)", "project:shop"),
            ("editor_theme", "dark", ""),
            ("commit_style", "small commits, messages that say why", ""),
        ):
            body = {"value": value, "scope": scope}
            httpx.put(f"{url}/v1/preferences/{name}", json=body, headers={"Authorization": f"Bearer {key}"})
        urls = {
            "up": url,
            "down": f"http://127.0.0.1:{_free_port()}",
            "hung": f"http://127.0.0.1:{hung.getsockname()[1]}",
        }
        prompt = json.loads((PAYLOADS / "claude-code-UserPromptSubmit.json").read_text())
        tool = json.loads((PAYLOADS / "claude-code-PostToolUse.json").read_text())
        tool["tool_response"]["stdout"] = "test output line\n" * 600
        capture = [sys.executable, "-m", "mosaic_memory", "capture", "--agent", "claude-code"]
        cases: dict[str, tuple[list[str], dict[str, str], bytes | None]] = {}
        for state in ("up", "down", "hung"):
            env = _env(MOSAIC_URL=urls[state], MOSAIC_API_KEY=key, MOSAIC_DATA_DIR=str(data / state))
            cases[f"capture UserPromptSubmit, service {state}"] = (capture, env, json.dumps(prompt).encode())
        env_up = _env(MOSAIC_URL=url, MOSAIC_API_KEY=key, MOSAIC_DATA_DIR=str(data / "up"))
        cases["capture PostToolUse (10 KB output), service up"] = (capture, env_up, json.dumps(tool).encode())
        start = (PAYLOADS / "claude-code-SessionStart.json").read_bytes()
        cases["capture SessionStart (context injected), service up"] = (capture, env_up, start)
        shown = subprocess.run(capture, input=start, env=env_up, cwd=ROOT, capture_output=True, check=True).stdout
        if b"test_command (project:shop)" not in shown:  # the case must time a real injection
            raise SystemExit(f"SessionStart injected no context: {shown[:500]!r}")
        cases["mosaic-memory version"] = ([sys.executable, "-m", "mosaic_memory", "version"], _env(), None)
        cases["python -c pass"] = ([sys.executable, "-c", "pass"], _env(), None)
        for _ in range(warmup):
            for argv, env, stdin in cases.values():
                _time(argv, env, stdin)
        samples: dict[str, list[float]] = {name: [] for name in cases}
        for i in range(runs):
            for name, (argv, env, stdin) in cases.items():
                data_in = stdin.replace(b"abc123", f"s{i}".encode()) if stdin else None
                samples[name].append(_time(argv, env, data_in))

        drain_dir = data / "drain"
        spool = Spool(drain_dir / "capture" / "spool.jsonl")
        for i in range(backlog):  # what captures with the service down leave (written in-process: faster)
            events = hook_events(
                "claude-code", {**prompt, "prompt": f"backlog prompt {i}"}, now=datetime.now(UTC), excerpt_chars=2000
            )
            spool.append(events, deadline=time.monotonic() + 5)
        env_drain = _env(MOSAIC_URL=url, MOSAIC_API_KEY=key, MOSAIC_DATA_DIR=str(drain_dir))
        drain_ms = _time(capture, env_drain, json.dumps(prompt).encode())
        left = (drain_dir / "capture" / "spool.jsonl").exists()

        transcript = _transcript(data / "transcripts" / "bench-session.jsonl", turns)
        imports = []
        for _ in range(2):  # the second run finds every turn stored: the cost of idempotency
            argv = [sys.executable, "-m", "mosaic_memory", "import-transcripts", str(transcript), "--json"]
            started = time.perf_counter()
            out = subprocess.run(argv, env=env_up, cwd=ROOT, capture_output=True, check=True)
            report = json.loads(out.stdout)[0]
            imports.append({"ms": round((time.perf_counter() - started) * 1000, 1), **_counts(report)})
        return {
            "benchmark": "capture_latency",
            "runs": runs,
            "warmup": warmup,
            "cases": {name: stats(s) for name, s in samples.items()},
            "drain": {"spooled_events": backlog, "ms": round(drain_ms, 1), "spool_left": left},
            "import_transcripts": {"turns": turns, "runs": imports},
            "python": sys.version.split()[0],
            "machine": machine(),
        }
    finally:
        hung.close()
        service.terminate()
        service.wait(timeout=60)
        shutil.rmtree(data, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.capture_latency", description=__doc__)
    parser.add_argument("--runs", type=int, default=15, help="timed runs of each case")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    parser.add_argument("--backlog", type=int, default=200, help="events spooled before the drain")
    parser.add_argument("--turns", type=int, default=3000, help="turns in the imported transcript")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0 or args.backlog < 0 or args.turns < 3:
        parser.error("--runs must be at least 1, --warmup and --backlog not negative, --turns at least 3")
    print(json.dumps(run(args.runs, args.warmup, args.backlog, args.turns), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
