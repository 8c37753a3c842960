"""One run's shared state: the embedded PostgreSQL in a temp dir, the service state, the data set."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from sqlalchemy import text

from benchmarks.common import DIM, Sizes, clustered_vectors, fact_texts
from mosaic_memory.common.indexes import create_hnsw_index
from mosaic_memory.config import Settings
from mosaic_memory.container import AppState, bootstrap_admin, build_state
from mosaic_memory.tiers import to_sync_url

ADMIN_KEY = "mm_0bench00_benchmark-admin-key-local-only"
HNSW_DDL = create_hnsw_index("insights")  # the migrations' index, rebuilt after a bulk load

# Owner layout (issue 3): 100 owners in one table; three of them hold 10 %, 1 % and 0.1 % of the
# rows, the other 97 share the rest. Owner 0 is a user who is a member of the 99 teams, so over
# HTTP that user's scope is the whole table.
SELECTIVE = {"10%": 0.10, "1%": 0.01, "0.1%": 0.001}


@dataclass
class Dataset:
    vectors: np.ndarray  # (rows, 384) unit float32
    queries: np.ndarray  # (queries, 384) unit float32, not in the table
    owner_of_row: np.ndarray  # index into owner_ids per row
    owner_ids: list[uuid.UUID]
    selective_owner: dict[str, int]  # "10%" → owner index
    contents: list[str]  # content per row; ends with "#<row>" so hits map back to rows

    def scope_mask(self, label: str) -> np.ndarray:
        if label == "100%":
            return np.ones(len(self.vectors), dtype=bool)
        mask: np.ndarray = self.owner_of_row == self.selective_owner[label]
        return mask

    def scope_owner_ids(self, label: str) -> list[uuid.UUID]:
        if label == "100%":
            return list(self.owner_ids)
        return [self.owner_ids[self.selective_owner[label]]]


def row_of(content: str) -> int:
    return int(content.rsplit("#", 1)[1])


@dataclass
class Context:
    sizes: Sizes
    workdir: Path
    settings: Settings
    state: AppState
    user_name: str
    user_token: str
    data: Dataset | None = None
    loaded: bool = False  # the data set is in the table
    indexed: bool = True  # the HNSW index exists
    notes: list[str] = field(default_factory=list)
    servers: dict[str, str] = field(default_factory=dict)  # provider → base URL of a running server
    server_pids: dict[str, int] = field(default_factory=dict)  # base URL → pid of its serve process
    keep_workdir: bool = False  # a kept data set (``reopen_context``): close() leaves it on disk
    stack: AsyncExitStack = field(default_factory=AsyncExitStack)

    @property
    def url(self) -> str:
        return self.state.database.url

    def psycopg_url(self) -> str:
        return to_sync_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)

    async def raw(self, *, autocommit: bool = True) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(self.psycopg_url(), autocommit=autocommit)

    async def execute(self, sql: str) -> None:
        async with await self.raw() as conn:
            await conn.execute(sql)

    async def scalar(self, sql: str) -> Any:
        async with self.state.sessionmaker() as session:
            return await session.scalar(text(sql))

    async def close(self) -> None:
        await self.stack.aclose()  # stops the servers first: they share the embedded database
        await self.state.aclose()
        if not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


async def open_context(sizes: Sizes, *, base: Path | None = None) -> Context:
    """Start an embedded PostgreSQL in a fresh temp dir (under ``base``, default
    ``$MOSAIC_BENCH_TMP`` or /tmp), migrate, load the model, make the owners."""
    base = base or Path(os.environ.get("MOSAIC_BENCH_TMP", "/tmp"))
    workdir = Path(tempfile.mkdtemp(prefix="mosaic-bench-", dir=base))
    workdir.chmod(0o755)  # the embedded server runs as another user when we are root
    settings, state = await _start(workdir)
    async with state.sessionmaker() as session, session.begin():
        user, token = await state.owners.create_user(session, "bench-user")
    return Context(sizes=sizes, workdir=workdir, settings=settings, state=state, user_name=user.name, user_token=token)


async def reopen_context(sizes: Sizes, workdir: Path, token: str) -> Context:
    """The data set an earlier run kept in ``workdir`` (loaded and indexed, ``token`` its user's
    key): started again, migrated if the schema moved on, and left on disk by close()."""
    settings, state = await _start(workdir)
    async with state.sessionmaker() as session, session.begin():
        principal = await state.owners.authenticate(session, token)
    ctx = Context(
        sizes=sizes, workdir=workdir, settings=settings, state=state, user_name=principal.user.name, user_token=token
    )
    ctx.loaded = ctx.keep_workdir = True
    return ctx


async def _start(workdir: Path) -> tuple[Settings, AppState]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    settings = Settings(data_dir=workdir, tier="local", admin_key=ADMIN_KEY)
    state = await build_state(settings)
    await bootstrap_admin(state)
    return settings, state


async def make_dataset(ctx: Context) -> Dataset:
    """The shared synthetic data set: vectors, queries, and the 100-owner layout."""
    if ctx.data is not None:
        return ctx.data
    n = ctx.sizes.rows
    rng = np.random.default_rng(7)
    clusters = max(10, int(n**0.5))
    vectors = clustered_vectors(n, rng, clusters=clusters)
    queries = clustered_vectors(ctx.sizes.queries, np.random.default_rng(8), clusters=clusters)
    async with ctx.state.sessionmaker() as session, session.begin():
        owners = [o for o in await ctx.state.owners.list_users(session) if o.name == ctx.user_name]
        owner_ids = [owners[0].id]
        for i in range(99):
            team = await ctx.state.owners.create_team(session, f"bench-team-{i:02d}", members=[ctx.user_name])
            owner_ids.append(team.id)
    # owners 1, 2, 3 are the selective ones; the rest split the remainder round-robin
    owner_of_row = np.empty(n, dtype=np.int32)
    start = 0
    selective: dict[str, int] = {}
    for idx, (label, share) in enumerate(SELECTIVE.items(), start=1):
        size = max(1, round(n * share))
        owner_of_row[start : start + size] = idx
        selective[label] = idx
        start += size
    others = [0, *range(4, 100)]
    owner_of_row[start:] = np.asarray(others, dtype=np.int32)[np.arange(n - start) % len(others)]
    texts = fact_texts(min(n, 20_000), seed=3)
    contents = [f"{texts[i % len(texts)]} #{i}" for i in range(n)]
    ctx.data = Dataset(vectors, queries, owner_of_row, owner_ids, selective, contents)
    assert vectors.shape[1] == DIM
    return ctx.data
