"""The HTTP edge: the app factory, dependencies, the one error handler.

``create_app`` loads on first use (PEP 562): the routes of every package (``*/endpoints.py``,
``jobs/endpoints.py``) and the MCP gate import ``api.deps`` / ``api.errors``, and loading the app
factory here would import them back before they are complete, whichever is imported first.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mosaic_memory.api.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        return importlib.import_module("mosaic_memory.api.app").create_app
    raise AttributeError(f"module 'mosaic_memory.api' has no attribute {name!r}")
