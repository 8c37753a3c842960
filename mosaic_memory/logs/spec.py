"""Agent logs as an embedded kind: embedded as their content."""

from __future__ import annotations

from typing import Any

from mosaic_memory.common.kinds import KindSpec
from mosaic_memory.models import AgentLog

__all__ = ["SPEC", "log_text"]


def log_text(content: str) -> str:
    """What a log event is embedded as: its content, as written."""
    return content


def _text_of(row: Any) -> str:
    return log_text(row.content)


SPEC = KindSpec(
    name="logs",
    model=AgentLog,
    text_sql=AgentLog.content,
    text_of=_text_of,
    created=AgentLog.occurred_at,
    metadata=AgentLog.metadata_,
    agent=AgentLog.agent_id,
    session=AgentLog.session_id,
)
