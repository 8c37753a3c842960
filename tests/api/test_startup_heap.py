"""The served process keeps what startup built out of later garbage collections (app.freeze_startup_heap)."""

from __future__ import annotations

import gc
from pathlib import Path

from mosaic_memory.api.app import create_app
from mosaic_memory.container import AppState
from tests.conftest import own_lifespan_settings


async def test_startup_freezes_what_it_built(state: AppState, data_dir: Path) -> None:
    app = create_app(own_lifespan_settings(state, data_dir, jobs=False))
    gc.unfreeze()  # this test process may have frozen its heap before
    try:
        async with app.router.lifespan_context(app):
            # the model and the app are built and frozen: tens of thousands of objects at least
            assert gc.get_freeze_count() > 10_000
            assert app.state.mosaic.embedder is not None
    finally:
        gc.unfreeze()
