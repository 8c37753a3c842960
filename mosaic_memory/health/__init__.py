"""The tier detector: probes of the configured storage tier, for ``doctor`` and ``serve``."""

from __future__ import annotations

from mosaic_memory.health.schemas import EXIT_CODES, ProbeResult, Report
from mosaic_memory.health.service import Detector, judge_pgvector

__all__ = ["EXIT_CODES", "Detector", "ProbeResult", "Report", "judge_pgvector"]
