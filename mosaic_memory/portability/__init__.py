"""Portable memory: the export/import record format, its streaming reader/writer, and import
through the kinds' own services (dedup, merge, re-embed)."""

from mosaic_memory.portability.format import FORMAT_VERSION, KINDS
from mosaic_memory.portability.service import (
    ImportReport,
    KindCounts,
    PortabilityService,
    export_records,
)

__all__ = ["FORMAT_VERSION", "KINDS", "ImportReport", "KindCounts", "PortabilityService", "export_records"]
