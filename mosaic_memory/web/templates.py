"""The Jinja2 environment of the server-rendered pages (autoescaped, templates in the package)."""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

__all__ = ["render"]


@cache
def _environment() -> Environment:
    return Environment(loader=PackageLoader("mosaic_memory.web", "templates"), autoescape=select_autoescape())


def render(name: str, **context: Any) -> str:
    return _environment().get_template(name).render(**context)
