"""The web UI under test: a real ``mosaic-memory serve`` process on the suite's database, driven by
a real headless Chromium (Debian's ``chromium`` through Playwright; one browser per session).

Screenshots of every main page go to ``$MOSAIC_ARTIFACTS`` (default ``/tmp/mosaic-ui-shots``),
outside the repository. Without Chromium (``scripts/test`` installs it where it can) or the
Playwright package, the browser tests are skipped with that reason, shown in the summary.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from mosaic_memory.container import AppState
from tests.conftest import ADMIN_KEY, auth, serve_process

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page

CHROMIUM = os.environ.get("MOSAIC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _why_no_browser() -> str | None:
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    if not os.access(CHROMIUM, os.X_OK):
        return f"Chromium is not installed at {CHROMIUM} (apt-get install chromium; scripts/test does it as root)"
    return None


@pytest.fixture(scope="session")
def shots() -> Path:
    """Where screenshots go: a directory outside the repository, kept after the run."""
    path = Path(os.environ.get("MOSAIC_ARTIFACTS", "/tmp/mosaic-ui-shots"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def ui_url(state: AppState) -> Iterator[str]:
    """A separate service process on the suite's embedded database; its jobs run only on demand."""
    with serve_process(state, "mosaic-ui-") as url:
        yield url


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    reason = _why_no_browser()
    if reason is not None:
        if os.environ.get("MOSAIC_REQUIRE_BROWSER") == "1":  # CI: a missing browser is a failure
            pytest.fail(f"web UI browser tests cannot run: {reason}")
        pytest.skip(f"web UI browser tests skipped: {reason}")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture
async def api(ui_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """Plain HTTP to the same service process (to set up data and to check what the UI did)."""
    async with httpx.AsyncClient(base_url=ui_url, timeout=120) as client:
        yield client


@dataclass
class Person:
    name: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return auth(self.key)


PersonFactory = Callable[..., Awaitable[Person]]


@pytest.fixture
def make_person(api: httpx.AsyncClient) -> PersonFactory:
    async def factory(prefix: str = "ui") -> Person:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        r = await api.post("/v1/admin/users", json={"name": name}, headers=auth(ADMIN_KEY))
        assert r.status_code == 201, r.text
        return Person(name, r.json()["api_key"])

    return factory


@pytest.fixture
async def context(browser: Browser, ui_url: str) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile (its own cookies) per test."""
    ctx = await browser.new_context(base_url=ui_url, viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(30_000)
    yield ctx
    await ctx.close()


async def sign_in(page: Page, key: str, *, then: str = "/ui/search") -> None:
    """Sign in through the form (going to ``then`` first, as a person following a link would)."""
    await page.goto(then)
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"**{then}*")


async def unlabelled_fields(page: Page) -> list[Any]:
    """Visible form fields without an accessible name (a label, aria-label or aria-labelledby)."""
    result: list[Any] = await page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
             .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                          && !e.getAttribute('aria-labelledby'))
             .map(e => e.name || e.id)"""
    )
    return result
