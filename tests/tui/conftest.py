"""The TUI against the suite's real HTTP server (``cli_url``), with users and data of its own."""

from __future__ import annotations

import asyncio
import io
import json
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from rich.console import Console
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import DataTable, Static

from mosaic_memory.client import AsyncMosaicClient
from mosaic_memory.tui.app import MemoryScreen, MosaicApp
from tests.conftest import ADMIN_KEY
from tests.jobs.topics import FONT, REPLICA

SIZE = (140, 40)
ARTEFACTS = Path(os.environ.get("MOSAIC_TEST_ARTEFACTS", Path(tempfile.gettempdir()) / "mosaic-test-artefacts")) / "tui"

INSIGHTS = {
    "theme": "Alice prefers dark themes in every editor and terminal",
    "deploy": "Deploys to production happen on Tuesdays after the standup",
    "coffee": "Alice drinks her coffee black, no sugar",
}


@dataclass
class Seeded:
    """A fresh user of the running service, its team and what was stored for them."""

    url: str
    user: str
    key: str
    team: str
    insights: dict[str, str]  # name in INSIGHTS -> id
    team_insight: str
    skill: str
    log_session: str


class HoldingTransport(httpx.AsyncHTTPTransport):
    """A real HTTP transport that records the searches it sends, and holds back the answer to
    each request ``hold`` picks until ``release`` is set (a slow network, over the real socket)."""

    def __init__(self, hold: Callable[[httpx.Request], bool] | None = None) -> None:
        super().__init__()
        self.searches: list[str] = []
        self.hold = hold
        self.holding = asyncio.Event()  # an answer is being held back
        self.release = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/search":
            self.searches.append(json.loads(request.content)["query"])
        response = await super().handle_async_request(request)
        if self.hold is not None and self.hold(request):
            self.holding.set()
            await self.release.wait()
        return response


@pytest.fixture
async def seeded(cli_url: str) -> AsyncIterator[Seeded]:
    suffix = uuid.uuid4().hex[:8]
    async with AsyncMosaicClient(cli_url, ADMIN_KEY) as admin:
        created = await admin.create_user(f"tui-{suffix}")
        team = await admin.create_team(f"tui-team-{suffix}", members=[created.user.name])
    async with AsyncMosaicClient(cli_url, created.api_key) as mm:
        ids = {}
        for name, text in INSIGHTS.items():
            ids[name] = str((await mm.remember(text, tags=[name, "tui"], importance=0.4)).id)
        team_insight = await mm.remember("The platform team owns the staging cluster", owner=f"team:{team.name}")
        await mm.set_preference("editor_theme", "dark")
        await mm.set_preference("editor_theme", "solarized dark")
        skill = await mm.create_skill(
            "deploy-staging", "Deploy the current branch to staging", instructions="make deploy"
        )
        await mm.log_events([{"session_id": "tui-font", "content": text, "agent_id": "coder"} for text in FONT])
    yield Seeded(
        url=cli_url,
        user=created.user.name,
        key=created.api_key,
        team=team.name,
        insights=ids,
        team_insight=str(team_insight.id),
        skill=str(skill.id),
        log_session="tui-font",
    )


async def settle(pilot: Pilot[None]) -> None:
    """Wait until no request is pending or in flight and the screen has caught up.

    Idle must hold over a few turns: a dialog's answer reaches its callback a turn after the
    dialog closes, and that callback is what starts the request."""
    app = pilot.app
    assert isinstance(app, MosaicApp)
    idle = 0
    for _ in range(1200):  # a bound, not a timing assert: a hang fails instead of blocking CI
        await pilot.pause()
        idle = idle + 1 if not app.busy else 0
        if idle >= 3:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the TUI kept waiting on the service")


async def until(pilot: Pilot[None], condition: Callable[[], bool]) -> None:
    """Let the app run until ``condition`` holds, within a bound, without waiting for it to be idle."""
    for _ in range(600):
        if condition():
            return
        await pilot.pause(0.05)


async def wait_for(pilot: Pilot[None], condition: Callable[[], bool]) -> None:
    """Settle until ``condition`` holds, within a bound (the caller's assert then says what is wrong)."""
    for _ in range(100):
        await settle(pilot)
        if condition():
            return
        await asyncio.sleep(0.05)


def memory_screen(pilot: Pilot[None]) -> MemoryScreen:
    screen = pilot.app.screen
    assert isinstance(screen, MemoryScreen), type(screen)
    return screen


def shown_texts(pilot: Pilot[None]) -> list[str]:
    """The full text of each result row; each displayed cell must be that text, or its start."""
    screen = memory_screen(pilot)
    table = screen.query_one("#results", DataTable)
    column = [c.label.plain for c in table.columns.values()].index("text")
    cells = [str(table.get_row_at(i)[column]) for i in range(table.row_count)]
    texts = [r.text for r in screen.rows]
    assert len(cells) == len(texts)
    for cell, text in zip(cells, texts, strict=True):
        assert cell == text or (cell.endswith("…") and text.startswith(cell[:-1])), (cell, text)
    return texts


def plain(widget: Widget) -> str:
    """What a Static or Label shows, as plain text (markup and styles dropped)."""
    assert isinstance(widget, Static)
    out = Console(width=200, file=io.StringIO(), record=True, color_system=None)
    out.print(widget.content)
    return out.export_text()


def shown(pilot: Pilot[None], selector: str) -> str:
    """The plain text of the widget ``selector`` on the current screen."""
    return plain(pilot.app.screen.query_one(selector))


def screenshot(pilot: Pilot[None], name: str) -> Path:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    return Path(pilot.app.save_screenshot(f"{name}.svg", str(ARTEFACTS)))


__all__ = [
    "INSIGHTS",
    "REPLICA",
    "SIZE",
    "HoldingTransport",
    "Seeded",
    "memory_screen",
    "plain",
    "screenshot",
    "settle",
    "shown",
    "shown_texts",
    "until",
    "wait_for",
]
