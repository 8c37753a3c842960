"""Jobs in one room: the registry, the runner, the scheduler, the ledger and the job routes.

Layout: ``registry.py`` (JobSpec, JobContext) · ``runner.py`` (advisory lock, ledger row) ·
``scheduler.py`` (the only APScheduler import) · ``ledger/`` (the ``job_runs`` repository, schemas,
the read service and the :class:`~jobs.ledger.service.JobControl` protocol edges use) ·
``endpoints.py`` (the ``/v1/jobs`` routes) · one module per job (``summarize``, ``maintenance``,
``reembed``), each a thin function over a domain service (``mosaic_memory.summaries``,
``maintenance``, ``reembed``), which never imports this package.

Importing ``jobs.ledger.schemas`` (the client does) must not pull the runner, the jobs and their
domain services in: so this module loads its public names on first use (PEP 562), and only
composition roots (the app factory, the CLI, benchmarks) touch them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobs.registry import JobContext, JobRegistry, JobSpec
    from jobs.runner import SKIPPED_LOCKED, JobRunner
    from jobs.wiring import JobDeps, build_registry, build_runner

__all__ = [
    "SKIPPED_LOCKED",
    "JobContext",
    "JobDeps",
    "JobRegistry",
    "JobRunner",
    "JobSpec",
    "build_registry",
    "build_runner",
]

_WHERE = {
    "SKIPPED_LOCKED": "jobs.runner",
    "JobRunner": "jobs.runner",
    "JobContext": "jobs.registry",
    "JobRegistry": "jobs.registry",
    "JobSpec": "jobs.registry",
    "JobDeps": "jobs.wiring",
    "build_registry": "jobs.wiring",
    "build_runner": "jobs.wiring",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'jobs' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
