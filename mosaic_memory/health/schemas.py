"""What the detector reports: one result per probe, and the exit code of the whole.

The JSON form (``mosaic-memory doctor --json``) is a stable interface for scripts, documented in
docs/operations.md: fields are only ever added, never renamed or removed, within ``schema`` 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["EXIT_CODES", "SCHEMA_VERSION", "ProbeResult", "Report", "Status"]

SCHEMA_VERSION = 1

Status = Literal["ok", "warn", "fail", "skip"]

# The exit code of doctor (and serve) names the area of the first failed probe. 1 is left to
# unexpected errors and 2 to the command line's own usage errors.
EXIT_CODES: dict[str, int] = {
    "config": 3,
    "database": 4,  # server unreachable, authentication failed, database missing
    "pgvector": 5,
    "migrations": 6,
    "embedding_model": 7,
    "data_dir": 8,
    "federation": 9,
}


def area_of(probe: str) -> str:
    return probe.split(".", 1)[0]


@dataclass
class ProbeResult:
    """One probe: ``status`` ok, warn (works, but see ``remedy``), fail, or skip (an earlier probe
    failed, so this one could not run); ``facts`` are what it measured, for scripts."""

    name: str
    status: Status
    detail: str
    remedy: str | None = None
    duration_ms: float = 0.0
    facts: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "remedy": self.remedy,
            "duration_ms": round(self.duration_ms, 1),
            "exit_code": EXIT_CODES.get(area_of(self.name), 1) if self.status == "fail" else 0,
            "facts": self.facts,
        }


@dataclass
class Report:
    tier: str
    database: str | None  # the URL with its password replaced by ***; None on the local tier
    probes: list[ProbeResult] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return all(p.status != "fail" for p in self.probes)

    @property
    def first_failure(self) -> ProbeResult | None:
        return next((p for p in self.probes if p.status == "fail"), None)

    @property
    def exit_code(self) -> int:
        failed = self.first_failure
        return 0 if failed is None else EXIT_CODES.get(area_of(failed.name), 1)

    def as_dict(self, version: str) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "version": version,
            "tier": self.tier,
            "database": self.database,
            "healthy": self.healthy,
            "exit_code": self.exit_code,
            "probes": [p.as_dict() for p in self.probes],
        }
