"""Preferences as an embedded kind: embedded as ``key: value``, rendered by PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Text, case, cast, func, literal, literal_column

from mosaic_memory.common.kinds import KindSpec
from mosaic_memory.models import Preference

__all__ = ["SPEC", "preference_text"]


def preference_text(key: Any, value: Any) -> Any:
    """The text a preference is embedded as and shown as in search: ``key: value``, in SQL.

    Strings render bare, every other JSON value as PostgreSQL prints jsonb (one line; jsonb's own
    key order and number form, which Python's json module does not reproduce, hence SQL). The
    stored form (``SPEC.text_sql``, used by search and re-embedding) and the write path
    (``PreferenceRepository.render`` over bound values) both call this one function.
    """
    value_text = case(
        (func.jsonb_typeof(value) == "string", value.op("#>>")(literal_column("'{}'::text[]"))),
        else_=cast(value, Text),
    )
    return key + literal(": ") + value_text


SPEC = KindSpec(
    name="preferences",
    model=Preference,
    text_sql=preference_text(Preference.key, Preference.value),
    text_of=None,
    created=Preference.updated_at,
)
