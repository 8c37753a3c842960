"""What the row-level security wall costs a search: ``POST /v1/search`` with and without the
owner scope (``db.enter_owner_scope``: one ``set_config`` statement per transaction, and the
policy's condition on every owner-scoped table read).

Builds a throw-away embedded PostgreSQL with the bundled model, 10 users of ``--rows`` insights
each (random unit vectors and a few words, written straight to the table: the timing is of the
read), then times the same searches through the in-process app, alternating *walled* (as the
service runs) and *unwalled* (the requests kept in the connecting role, as before migration 0008)
in rounds so that a busy neighbour on a shared machine weighs on both alike. Also times the scope
statement alone.

    python -m benchmarks.row_security [--rows 2000] [--calls 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ["MOSAIC_CONFIG_FILE"] = ""

ADMIN_KEY = "mm_0bench00_benchmark-admin-key-local-only"
WORDS = [
    "deploy",
    "staging",
    "backup",
    "editor",
    "theme",
    "release",
    "proxy",
    "database",
    "schedule",
    "review",
    "budget",
    "travel",
]
QUERIES = ("how do we deploy to staging?", "which editor theme?", "database backup schedule", "release review")


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def seed(state: Any, owner_ids: list[uuid.UUID], rows: int) -> None:
    from sqlalchemy import insert, text

    from mosaic_memory.models import Insight

    rng = np.random.default_rng(7)
    model = state.embedder.model_id
    for owner in owner_ids:
        vectors = rng.standard_normal((rows, state.embedder.dimensions)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        values = [
            {
                "owner_id": owner,
                "content": f"fact {i}: {' '.join(random.choices(WORDS, k=6))}",
                "content_hash": uuid.uuid4().hex * 2,
                "embedding": vectors[i],
                "embedding_model": model,
            }
            for i in range(rows)
        ]
        async with state.sessionmaker() as session, session.begin():
            await session.execute(insert(Insight), values)
    async with state.engine.begin() as conn:
        await conn.execute(text("ANALYZE insights"))


# The shapes of the two searches (full text, vector order) with the owner filter, to compare their
# plans in and out of the wall: a policy's condition comes before any qual that is not leakproof
# (``@@`` is not), which could keep such a qual from an index.
PLANS = {
    "keyword": "SELECT id FROM insights WHERE owner_id = ANY (:owners) "
    "AND search_tsv @@ plainto_tsquery('english', 'deploy staging') LIMIT 10",
    "semantic": "SELECT id FROM insights WHERE owner_id = ANY (:owners) "
    "ORDER BY embedding <=> (SELECT embedding FROM insights LIMIT 1) LIMIT 10",
}


async def explain(state: Any, owner: uuid.UUID) -> None:
    from sqlalchemy import text

    from mosaic_memory.db import enter_owner_scope

    for name, sql in PLANS.items():
        for walled in (False, True):
            async with state.sessionmaker() as session:
                if walled:
                    await enter_owner_scope(session, [owner])
                plan = await session.execute(
                    text(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {sql}"), {"owners": [owner]}
                )
                lines = [row[0] for row in plan]
            print(f"-- {name}, {'walled' if walled else 'unwalled'}:")
            print("\n".join(lines))


async def main(rows: int, calls: int, rounds: int) -> None:
    from sqlalchemy import select, text

    from mosaic_memory.api.app import create_app
    from mosaic_memory.config import Settings
    from mosaic_memory.container import bootstrap_admin, build_state
    from mosaic_memory.db import SCOPED_ROLE, enter_owner_scope
    from mosaic_memory.models import Owner
    from mosaic_memory.owners.service import OwnerService

    data = Path(tempfile.mkdtemp(prefix="mosaic-bench-rls-", dir="/tmp"))
    data.chmod(0o755)  # the embedded server refuses a 700 directory when run as root
    settings = Settings(data_dir=data, tier="local", admin_key=ADMIN_KEY)
    state = await build_state(settings)
    walled_scope = OwnerService.enter_scope
    try:
        assert state.row_security.up, state.row_security.why
        await bootstrap_admin(state)
        app = create_app(settings, state=state)
        app.state.mosaic = state
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench.test", timeout=120) as http:
            admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
            keys = []
            for n in range(10):
                r = await http.post("/v1/admin/users", json={"name": f"bench-{n}"}, headers=admin)
                keys.append(r.json()["api_key"])
            async with state.sessionmaker() as session:
                names = [f"bench-{n}" for n in range(10)]
                ids = list((await session.scalars(select(Owner.id).where(Owner.name.in_(names)))).all())
            started = time.perf_counter()
            await seed(state, ids, rows)
            print(f"seeded {10 * rows} insights in {time.perf_counter() - started:.0f} s; {os.cpu_count()} cores")
            h = {"Authorization": f"Bearer {keys[0]}"}

            async def unwalled(session: Any, principal: Any) -> None:
                return None

            async def search(mode: str, i: int) -> float:
                body = {"query": QUERIES[i % len(QUERIES)], "k": 10, "mode": mode}
                t = time.perf_counter()
                r = await http.post("/v1/search", json=body, headers=h)
                elapsed = (time.perf_counter() - t) * 1000
                assert r.status_code == 200 and len(r.json()["hits"]) == 10, r.text
                return elapsed

            print("| mode | requests | walled p50 ms | unwalled p50 ms | walled mean ms | unwalled mean ms |")
            print("| --- | --- | --- | --- | --- | --- |")
            for mode in ("semantic", "keyword", "hybrid") if calls else ():
                samples: dict[str, list[float]] = {"walled": [], "unwalled": []}
                for _ in range(10):  # warm-up: the model, the plans, the pool
                    await search(mode, 0)
                for rnd in range(rounds):
                    order = ("walled", "unwalled") if rnd % 2 == 0 else ("unwalled", "walled")
                    for condition in order:
                        OwnerService.enter_scope = walled_scope if condition == "walled" else unwalled  # type: ignore[method-assign]
                        for i in range(calls // rounds):
                            samples[condition].append(await search(mode, i))
                OwnerService.enter_scope = walled_scope  # type: ignore[method-assign]
                w, u = samples["walled"], samples["unwalled"]
                print(
                    f"| {mode} | {len(w)} + {len(u)} | {percentile(w, 0.5):.2f} | {percentile(u, 0.5):.2f} | "
                    f"{sum(w) / len(w):.2f} | {sum(u) / len(u):.2f} |",
                    flush=True,
                )
        # The statement alone: one round trip inside an open transaction.
        async with state.sessionmaker() as session, session.begin():
            await session.execute(text("SELECT 1"))
            scope = text("SELECT set_config('role', :r, true), set_config('mosaic.owner_ids', :o, true)")
            params = {"r": SCOPED_ROLE, "o": ",".join(str(i) for i in ids[:3])}
            times = []
            for _ in range(1000):
                t = time.perf_counter()
                await session.execute(scope, params)
                times.append((time.perf_counter() - t) * 1000)
            print(
                f"the scope statement alone: p50 {percentile(times, 0.5):.3f} ms, mean {sum(times) / len(times):.3f} ms"
            )
        async with state.sessionmaker() as session:
            await enter_owner_scope(session, ids[:1])
            count = await session.scalar(text("SELECT count(*) FROM insights"))
            print(f"rows visible to one user's scope: {count} of {10 * rows}")
        await explain(state, ids[0])
    finally:
        OwnerService.enter_scope = walled_scope  # type: ignore[method-assign]
        await state.aclose()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.row_security", description=__doc__)
    parser.add_argument("--rows", type=int, default=2000, help="insights per user (10 users)")
    parser.add_argument("--calls", type=int, default=200, help="timed searches per mode and condition (0: plans only)")
    parser.add_argument("--rounds", type=int, default=5, help="alternations of the two conditions")
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.calls, args.rounds))
