"""Nightly summarization throughput: N log lines across S sessions, embeddings already stored.

Builds a fresh embedded database (or uses MOSAIC_DATABASE_URL), inserts the logs with their
vectors (a pool of distinct lines is embedded once and shared, so set-up stays short), then
times one run of the ``summarize`` job and compares it with the time the model alone needs to
embed all N lines, measured on the pool and extrapolated.

    python benchmarks/summarize.py                         # 100,000 logs, 1,000 sessions
    python benchmarks/summarize.py --logs 10000 --sessions 100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert, select

# Run from a checkout: import this tree's packages, not an installed copy.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MOSAIC_CONFIG_FILE", "")

from jobs import build_runner
from mosaic_memory.config import Settings
from mosaic_memory.container import build_state
from mosaic_memory.models import AgentLog, Insight, Owner, utc_now

TOPICS = {
    "postgres replica": ["streaming replica", "pg_basebackup", "replication slot", "WAL sender", "standby lag"],
    "editor font": ["Iosevka", "JetBrains Mono", "ligatures", "font size 14", "terminal typeface"],
    "trip to Lisbon": ["flights to Lisbon", "hotel in Alfama", "Sintra day trip", "Lisboa Card", "seafood dinner"],
    "CI pipeline": ["GitHub Actions", "redis service container", "pip cache", "flaky integration test", "build time"],
    "kubernetes upgrade": ["node pool", "kubectl drain", "PodDisruptionBudget", "cluster 1.31", "ingress controller"],
    "tax return": ["receipts", "home office deduction", "tax advisor", "filing deadline", "pension contributions"],
    "kitchen renovation": ["oak worktop", "induction hob", "plumber visit", "tile samples", "budget overrun"],
    "marathon training": ["long run", "interval session", "shin splints", "carb loading", "race pace"],
    "react migration": ["class components", "hooks", "state management", "bundle size", "TypeScript types"],
    "job interview": ["system design round", "salary expectations", "take-home task", "reference check", "offer"],
}
ACTIONS = [
    "User asked about {x}",
    "Agent looked up {x} and summarised the options",
    "User decided to go with {x}",
    "Agent ran a check on {x}: all good",
    "User is worried about {x}",
    "Noted the user's preference regarding {x}",
    "Agent scheduled a follow-up on {x} for {d}",
    "Compared two approaches to {x}, user picked the simpler one",
    "Warning: {x} needs attention before {d}",
    "User confirmed {x} works now",
]
DAYS = ["Monday", "Tuesday", "next week", "the 12th", "Friday", "the end of the month"]


def pool_lines(per_topic: int, rng: random.Random) -> dict[str, list[str]]:
    pool: dict[str, list[str]] = {}
    for topic, things in TOPICS.items():
        lines: set[str] = set()
        while len(lines) < per_topic:
            thing = rng.choice(things)
            line = rng.choice(ACTIONS).format(x=thing, d=rng.choice(DAYS))
            lines.add(f"{line} ({topic}, step {rng.randint(1, 60)})")
        pool[topic] = sorted(lines)
    return pool


async def main(n_logs: int, n_sessions: int, per_topic: int, seed: int) -> None:
    rng = random.Random(seed)
    url = os.environ.get("MOSAIC_DATABASE_URL")
    tmp = Path(tempfile.mkdtemp(prefix="mosaic-bench-", dir="/tmp"))
    tmp.chmod(0o755)
    settings = (
        Settings(tier="standalone", database_url=url, data_dir=tmp) if url else Settings(tier="local", data_dir=tmp)
    )
    t0 = time.perf_counter()
    state = await build_state(settings)
    try:
        embedder = state.embedder
        pool = pool_lines(per_topic, rng)
        flat = [line for lines in pool.values() for line in lines]
        # the model alone: embed the distinct lines, time it, extrapolate to every log line
        await embedder.embed_documents(flat[:64])  # warm
        e0 = time.perf_counter()
        vectors = await embedder.embed_documents(flat)
        embed_s = time.perf_counter() - e0
        per_line = embed_s / len(flat)
        vec_of = dict(zip(flat, vectors, strict=True))

        n_owners = max(1, n_sessions // 10)
        owners = [uuid.uuid4() for _ in range(n_owners)]
        per_session = n_logs // n_sessions
        start = utc_now() - timedelta(hours=6)
        async with state.sessionmaker() as session, session.begin():
            await session.execute(
                insert(Owner), [{"id": o, "kind": "user", "name": f"bench-{o.hex[:12]}"} for o in owners]
            )
        rows = []
        for s in range(n_sessions):
            topic = rng.choice(list(TOPICS))
            owner = owners[s % n_owners]
            agent = f"agent-{s % 7}"
            for i in range(per_session):
                text = rng.choice(pool[topic])
                rows.append(
                    {
                        "owner_id": owner,
                        "id": uuid.uuid4(),
                        "session_id": f"sess-{s:05d}",
                        "agent_id": agent,
                        "level": "warning" if text.startswith("Warning") else "info",
                        "content": text,
                        "metadata_": {},
                        "occurred_at": start + timedelta(seconds=s * 7 + i),
                        "created_at": start + timedelta(seconds=s * 7 + i),
                        "content_hash": uuid.uuid4().hex,
                        "embedding": vec_of[text],
                        "embedding_model": embedder.model_id,
                        "tier": "hot",
                    }
                )
        for i in range(0, len(rows), 5000):
            async with state.sessionmaker() as session, session.begin():
                await session.execute(insert(AgentLog), rows[i : i + 5000])
        setup_s = time.perf_counter() - t0

        runner = build_runner(state)
        r0 = time.perf_counter()
        run = await runner.run("summarize", trigger="cli")
        wall_s = time.perf_counter() - r0
        async with state.sessionmaker() as session:
            sample = (
                await session.scalars(select(Insight.content).where(Insight.owner_id == owners[0]).limit(3))
            ).all()
        model_all_s = per_line * len(rows)
        result = {
            "logs": len(rows),
            "sessions": n_sessions,
            "owners": n_owners,
            "status": run.status,
            "counts": run.counts,
            "summarize_wall_s": round(wall_s, 2),
            "groups_per_s": round(run.counts.get("groups", 0) / wall_s, 1),
            "logs_per_s": round(len(rows) / wall_s, 1),
            "model_embed_sample_lines": len(flat),
            "model_embed_sample_s": round(embed_s, 2),
            "model_embed_all_estimated_s": round(model_all_s, 1),
            "ratio_summarize_to_embed_all": round(wall_s / model_all_s, 3),
            "setup_s": round(setup_s, 1),
            "sample_insights": list(sample),
        }
        print(json.dumps(result, indent=2))
        out = Path(__file__).parent / "results"
        out.mkdir(exist_ok=True)
        (out / f"summarize-{len(rows)}.json").write_text(json.dumps(result, indent=2))
    finally:
        await state.aclose()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logs", type=int, default=100_000)
    parser.add_argument("--sessions", type=int, default=1_000)
    parser.add_argument("--pool-per-topic", type=int, default=200, help="distinct lines embedded per topic")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(main(args.logs, args.sessions, args.pool_per_topic, args.seed))
