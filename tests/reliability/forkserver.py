"""Starts ``mosaic-memory`` commands by forking a process that has already imported the service.

python -m tests.reliability.forkserver
Reads one JSON object per line on stdin, ``{"argv": [...], "env": {...}, "log": PATH}``, forks, and
in the child runs the CLI's own ``main()`` with that argv and exactly that environment, its output
to ``log``; answers ``{"pid": N}`` on stdout. The child is the same ``serve`` (or ``jobs run``) a
shell starts, minus the seconds of imports: the durability tests kill and restart the service
dozens of times, and a cold start costs about 7 s on the CI machine. Nothing runs in this process
but imports (no thread, no event loop, no connection), so a fork inherits nothing live.
"""

from __future__ import annotations

import json
import os
import signal
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# What `serve` and `jobs run` import lazily, so that each child finds it loaded.
import alembic.command  # noqa: F401
import onnxruntime  # noqa: F401
import tokenizers  # noqa: F401
import typer.main
import uvicorn  # noqa: F401

import jobs.wiring  # noqa: F401
import mosaic_memory.api.app
import mosaic_memory.container  # noqa: F401
from mosaic_memory.cli.main import app

# The click command typer builds from the app on every call: built once here, for every child.
command = typer.main.get_command(app)


def run_child(argv: list[str], env: dict[str, str], log: str) -> None:
    """In the forked child: become ``mosaic-memory ARGV`` with ``env``; never returns."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.environ.clear()
        os.environ.update(env)
        sys.argv = ["mosaic-memory", *argv]
        try:
            command.main(args=argv, prog_name="mosaic-memory")  # what mosaic_memory.cli.main:main runs
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve_forever() -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            run_child(list(request["argv"]), dict(request["env"]), str(request["log"]))
        print(json.dumps({"pid": pid}), flush=True)


if __name__ == "__main__":
    serve_forever()
