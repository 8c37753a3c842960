"""Runs one job in a process of its own against a standalone database URL (for lock and crash tests).

python -m tests.jobs.run_job_process URL JOB [--barrier PATH] [--pause SECONDS]
Prints "ready" once the model is loaded, waits for the barrier file if given, runs the job and
prints its ledger row as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

os.environ["MOSAIC_CONFIG_FILE"] = ""
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from jobs import build_runner
from mosaic_memory.config import JobsSettings, Settings
from mosaic_memory.container import build_state


async def main(url: str, job: str, barrier: str | None, pause: float) -> None:
    settings = Settings(
        tier="standalone",
        database_url=url,
        auto_migrate=False,
        data_dir=Path(tempfile.gettempdir()),
        jobs=JobsSettings(group_pause_seconds=pause),
    )
    state = await build_state(settings)
    try:
        runner = build_runner(state)
        print("ready", flush=True)
        while barrier and not os.path.exists(barrier):
            await asyncio.sleep(0.005)
        run = await runner.run(job, trigger="schedule")
        print(run.model_dump_json(), flush=True)
    finally:
        await state.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("job")
    parser.add_argument("--barrier")
    parser.add_argument("--pause", type=float, default=0.0)
    args = parser.parse_args()
    asyncio.run(main(args.url, args.job, args.barrier, args.pause))
    sys.exit(0)
