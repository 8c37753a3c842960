"""The served process keeps what startup built out of later garbage collections (app.freeze_startup_heap)."""

from __future__ import annotations

import gc
from pathlib import Path

from mosaic_memory.api.app import create_app
from mosaic_memory.config import JobsSettings, Settings
from mosaic_memory.container import AppState


async def test_startup_freezes_what_it_built(state: AppState, data_dir: Path) -> None:
    settings = Settings(
        tier="standalone",
        database_url=state.database.url,
        data_dir=data_dir,
        auto_migrate=False,
        jobs=JobsSettings(enabled=False),
    )
    app = create_app(settings)
    gc.unfreeze()  # this test process may have frozen its heap before
    try:
        async with app.router.lifespan_context(app):
            # the model and the app are built and frozen: tens of thousands of objects at least
            assert gc.get_freeze_count() > 10_000
            assert app.state.mosaic.embedder is not None
    finally:
        gc.unfreeze()
