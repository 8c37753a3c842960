"""How long the ``mosaic-memory`` command takes to start, beside a bare interpreter in the same run.

``python -m benchmarks.cli_startup [--runs 15] [--warmup 2]`` runs each command as a fresh
subprocess ``--runs`` times, round-robin (so a change in machine load touches every command alike),
after ``--warmup`` untimed rounds that fill the page cache and write the bytecode caches:

- ``mosaic-memory --help`` and ``mosaic-memory version``: what the CLI costs before any work;
- the peers: ``python -c pass`` (the interpreter alone), ``python -c "import typer"`` (the
  command-line library every typer CLI pays for) and ``typer.run(hello)``, a one-command typer app
  run to the end (typer builds its parameters' coercion at invocation, which loads pydantic: the
  floor of any typer CLI, beyond the import).

The children run with bytecode caches written, as an installed package has them
(``PYTHONDONTWRITEBYTECODE`` is dropped for them), and with no ``MOSAIC_*`` variable and no config
file. Prints JSON: p50 / p95 / mean in milliseconds per command (wall time of the whole process, start to
exit), and each p50 and p95 as a ratio to the bare interpreter's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import machine, ratio, stats

BARE = "python -c pass"
HELLO = "import typer\n\ndef hello() -> None:\n    print('hello')\n\ntyper.run(hello)\n"


def cli_argv() -> list[str]:
    """The installed ``mosaic-memory`` script beside this interpreter, else ``python -m mosaic_memory``."""
    beside = Path(sys.executable).parent / "mosaic-memory"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("mosaic-memory")
    return [found] if found else [sys.executable, "-m", "mosaic_memory"]


def commands() -> dict[str, list[str]]:
    cli = cli_argv()
    return {
        "mosaic-memory --help": [*cli, "--help"],
        "mosaic-memory version": [*cli, "version"],
        BARE: [sys.executable, "-c", "pass"],
        'python -c "import typer"': [sys.executable, "-c", "import typer"],
        "typer.run(hello)": [sys.executable, "-c", HELLO],
    }


def _env() -> dict[str, str]:
    # No config file and no MOSAIC_* variables from the caller: --help and version read neither, and
    # a stray setting must not make one run differ from another. Bytecode is cached as on an install.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_") and k != "PYTHONDONTWRITEBYTECODE"}
    env["MOSAIC_CONFIG_FILE"] = ""
    return env


def time_once(argv: list[str], env: dict[str, str]) -> float:
    """Milliseconds from spawn to exit; a failing command stops the benchmark."""
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = (time.perf_counter() - start) * 1000.0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode(errors='replace')[-2000:]}")
    return elapsed


def run(runs: int, warmup: int) -> dict[str, Any]:
    cmds = commands()
    env = _env()
    for _ in range(warmup):
        for argv in cmds.values():
            time_once(argv, env)
    samples: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(runs):
        for name, argv in cmds.items():
            samples[name].append(time_once(argv, env))
    bare = stats(samples[BARE])
    out: dict[str, Any] = {}
    for name, argv in cmds.items():
        s = stats(samples[name])
        out[name] = {
            "argv": argv,
            **s,
            "p50_x_bare": ratio(s["p50_ms"], bare["p50_ms"]),
            "p95_x_bare": ratio(s["p95_ms"], bare["p95_ms"]),
        }
    return {
        "benchmark": "cli_startup",
        "runs": runs,
        "warmup": warmup,
        "commands": out,
        "python": sys.version.split()[0],
        "machine": machine(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cli_startup", description=__doc__)
    parser.add_argument("--runs", type=int, default=15, help="timed runs of each command")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0:
        parser.error("--runs must be at least 1 and --warmup not negative")
    print(json.dumps(run(args.runs, args.warmup), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
