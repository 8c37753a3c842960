"""The terminal UI (``mosaic-memory tui``): an edge like the CLI, a client of the REST API.

Textual is imported only when the TUI starts (``from mosaic_memory.tui.app import MosaicApp``),
so the other commands stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mosaic_memory.client import AsyncMosaicClient

__all__ = ["run_tui"]


def run_tui(client: AsyncMosaicClient) -> None:
    """Run the TUI on ``client`` until the person quits."""
    from mosaic_memory.tui.app import MosaicApp

    MosaicApp(client).run()
