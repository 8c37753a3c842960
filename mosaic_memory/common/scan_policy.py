"""The plan policy of scoped vector search, as plain data (no SQL), so configuration can build it."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ScanPolicy"]


@dataclass(frozen=True)
class ScanPolicy:
    """When a scoped vector search scans the scope exactly instead of walking the shared HNSW index.

    HNSW's recall under an owner filter depends on the scope's *share* of the table (measured:
    1.00 at 10 %, 0.83 at 1 % with iterative scans), while an exact scan's cost grows with the
    scope's *rows*. So: exact when the scope has at most ``min_rows`` rows, or at most ``max_rows``
    rows that are under ``share`` of the table; HNSW with iterative scans otherwise.
    """

    max_rows: int = 20_000
    min_rows: int = 2_000
    share: float = 0.05
