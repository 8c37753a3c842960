"""The registry of embedded memory kinds: each kind's spec, owned by that kind's package.

Search, re-embedding and everything else that treats the kinds alike read them from here
(``KIND_SPECS["skills"]``, ``spec_for_table("agent_logs")``) rather than naming columns of their own.
"""

from __future__ import annotations

from mosaic_memory.common.kinds import KindSpec
from mosaic_memory.common.schemas import Kind
from mosaic_memory.insights.spec import SPEC as INSIGHTS
from mosaic_memory.logs.spec import SPEC as LOGS
from mosaic_memory.preferences.spec import SPEC as PREFERENCES
from mosaic_memory.skills.spec import SPEC as SKILLS

__all__ = ["EMBEDDED_TABLES", "KIND_SPECS", "KindSpec", "spec_for_table"]

KIND_SPECS: dict[Kind, KindSpec] = {s.name: s for s in (INSIGHTS, PREFERENCES, LOGS, SKILLS)}

# Re-embedding walks the tables in this order (and reports under these names).
EMBEDDED_TABLES: tuple[str, ...] = tuple(s.table for s in (INSIGHTS, LOGS, PREFERENCES, SKILLS))

_BY_TABLE = {s.table: s for s in KIND_SPECS.values()}


def spec_for_table(table: str) -> KindSpec:
    """The spec of the kind stored in ``table``; KeyError for a table that holds no kind."""
    return _BY_TABLE[table]
