"""Skills as an embedded kind: embedded as ``name: description``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import literal

from mosaic_memory.common.kinds import KindSpec
from mosaic_memory.models import Skill

__all__ = ["SPEC", "skill_text"]


def skill_text(name: str, description: str) -> str:
    """What a skill is embedded as (and shown as in search hits).

    Instructions are left out on purpose: on a trial of 14 skills and 20 task phrasings with
    all-MiniLM-L6-v2 (scripts/skill_embedding_trial.py), "name: description" put the right skill
    first for 17 of 20 tasks (MRR 0.900) against 15 of 20 (MRR 0.858) with the instructions
    appended; the steps dilute what the skill is for. Instructions stay searchable by keyword.
    """
    return f"{name}: {description}"


def _text_of(row: Any) -> str:
    return skill_text(row.name, row.description)


SPEC = KindSpec(
    name="skills",
    model=Skill,
    # skill_text in SQL: the same separator, so a hit's content is exactly what was embedded.
    text_sql=Skill.name + literal(": ") + Skill.description,
    text_of=_text_of,
    created=Skill.created_at,
    tags=Skill.tags,
    metadata=Skill.metadata_,
)
