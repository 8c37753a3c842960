"""Helpers shared by CLI commands: settings, error reporting, direct database access, output.

The CLI must start fast (``--help`` and ``version`` load none of the service), so the modules a
command needs are imported where they are used: the settings, the database, the client, the
embeddings. Names used only in annotations are imported under ``TYPE_CHECKING``; names that typer
reads from a command's signature (``JsonOpt``) stay here.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from mosaic_memory.errors import MosaicError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from mosaic_memory.client import AsyncMosaicClient
    from mosaic_memory.config import Settings

T = TypeVar("T")
console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """One readable line on stderr, then exit non-zero."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def settings() -> Settings:
    from mosaic_memory.config import load_settings  # pydantic-settings: only for a command that runs

    try:
        return load_settings()
    except MosaicError as exc:
        fail(exc.detail)
    except Exception as exc:  # pydantic ValidationError on a bad variable
        first = str(exc).splitlines()
        fail("invalid configuration: " + " ".join(line.strip() for line in first[:3]))


def _failure_line(exc: Exception) -> str | None:
    """The one line for an expected failure, or None for anything else (it propagates).

    An exception class whose module was never imported cannot have been raised, so each is looked
    up only when its module is loaded: a failing command never imports a library to name its error.
    """
    if "mosaic_memory.client_core" in sys.modules:
        from mosaic_memory.client_core import MosaicClientError

        if isinstance(exc, MosaicClientError):
            return f"{exc.error}: {exc.detail}" if exc.status else exc.detail
    if "embeddings.base" in sys.modules:
        from embeddings.base import EmbeddingError

        if isinstance(exc, EmbeddingError):
            return str(exc)
    if isinstance(exc, OSError):
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    if "sqlalchemy.exc" in sys.modules:
        from sqlalchemy.exc import OperationalError

        if isinstance(exc, OperationalError):
            # libpq's first line names host, port and user, never the password.
            reason = str(exc.orig or exc).strip().splitlines()[0]
            return f"the database is unreachable: {reason}"
    return None


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine, turning every expected failure into one line and exit code 1."""
    import asyncio

    try:
        return asyncio.run(coro)
    except MosaicError as exc:
        fail(exc.detail)
    except Exception as exc:
        line = _failure_line(exc)
        if line is None:
            raise
        fail(line)


async def embedding_dimensions(cfg: Settings) -> int:
    """The configured embedder's dimension; a remote provider that does not say is asked once."""
    from embeddings import EmbeddingConfigError, get_embedder

    embedder = get_embedder(cfg.embeddings.provider, **cfg.embeddings.provider_options())
    try:
        return embedder.dimensions
    except EmbeddingConfigError:
        await embedder.warm_up()
        return embedder.dimensions
    finally:
        await embedder.aclose()


@asynccontextmanager
async def direct_session(cfg: Settings, *, migrate: bool | None = None) -> AsyncIterator[AsyncSession]:
    """A transaction on the configured database, without the API (for admin commands: across
    owners, in the connecting role, outside row-level security)."""
    from mosaic_memory.db import create_engine_for, create_sessionmaker, run_migrations, unit_of_work
    from mosaic_memory.tiers import open_database

    database = open_database(cfg)
    engine = create_engine_for(database.url, pool_size=2, connect_timeout=cfg.db_connect_timeout)
    try:
        if migrate if migrate is not None else cfg.auto_migrate:
            await run_migrations(database.url, dimensions=await embedding_dimensions(cfg))
        async with unit_of_work(create_sessionmaker(engine)) as session:
            yield session
    finally:
        await engine.dispose()
        database.close()


def call_api(cfg: Settings, call: Callable[[AsyncMosaicClient], Awaitable[T]]) -> T:
    """Run one client call against the configured service; failures become one line and exit 1."""

    async def go() -> T:
        async with client(cfg) as mm:
            return await call(mm)

    return run(go())


def call_db(call: Callable[[AsyncSession], Awaitable[T]], *, migrate: bool | None = None) -> T:
    """Run one service call in a transaction on the configured database, without the API."""

    async def go() -> T:
        async with direct_session(settings(), migrate=migrate) as session:
            return await call(session)

    return run(go())


def client(cfg: Settings) -> AsyncMosaicClient:
    from mosaic_memory.client import AsyncMosaicClient

    key = cfg.api_key.get_secret_value() if cfg.api_key else None
    if not key:
        fail("no API key: set MOSAIC_API_KEY (or api_key in the config file)")
    return AsyncMosaicClient(cfg.url, key)


def note_redacted(count: int) -> None:
    """Tell the person, on stderr, that credentials were redacted from what was stored."""
    if count:
        noun = "secret was" if count == 1 else "secrets were"
        err_console.print(f"{count} {noun} redacted before storing ([REDACTED:<kind>])", markup=False)


def shorten(text: str, width: int = 100) -> str:
    """One line of at most ``width`` characters for a table cell."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def short_id(value: object) -> str:
    """A row's id in a table cell: its last 8 hex digits. Ids are UUIDv7 (``models/base.new_id``),
    whose first 8 digits are the time and were the same for every row written within a minute."""
    return str(value)[-8:]


def shown_as_json_or_empty(result: Any, items: Sequence[Any], as_json: bool, empty: str) -> bool:
    """Print ``result`` as JSON, or ``empty`` when there is nothing; True when the command is done."""
    if as_json:
        print_json(result.model_dump(mode="json"))
        return True
    if not items:
        console.print(empty)
        return True
    return False


def listed_as_json_or_empty(items: Sequence[Any], as_json: bool, empty: str) -> bool:
    """:func:`shown_as_json_or_empty` for a plain list of models (an answer that is a JSON array)."""
    if as_json:
        print_json([i.model_dump(mode="json") for i in items])
        return True
    if not items:
        console.print(empty)
        return True
    return False


JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON for scripts")]
"""The ``--json`` flag every listing and show command takes."""


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def redacted_settings(cfg: Settings) -> dict[str, Any]:
    from embeddings.urls import redact_url
    from mosaic_memory.tiers import redact_database_url

    data = cfg.model_dump(mode="json")
    if cfg.database_url is not None:
        data["database_url"] = redact_database_url(cfg.database_url.get_secret_value())
    data["url"] = redact_url(cfg.url)
    for group in (data["embeddings"], data["jobs"]["llm"]):
        if group.get("base_url"):
            group["base_url"] = redact_url(group["base_url"])
    data["effective_tier"] = cfg.effective_tier
    return data
