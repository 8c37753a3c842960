"""What the durability tests check once the killing is over, read straight from PostgreSQL.

* every acknowledged write is there, exactly once, with what was acknowledged;
* no row is partial: every insight, preference and log event has its vector, from the
  configured model, over the text its ``content_hash`` names; every preference value has the
  history row that recorded it;
* the HNSW index agrees with the heap: each stored row is found by the index as its own nearest
  neighbour, and random queries get the same top-k from the index (at a high ``hnsw.ef_search``)
  as from a sequential scan.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from embeddings import content_hash
from mosaic_memory.common.indexes import hnsw_index_name
from mosaic_memory.common.schemas import Kind
from mosaic_memory.kinds import KIND_SPECS
from mosaic_memory.models import PreferenceHistory
from tests.reliability.harness import Ledger

TABLES = ("insights", "preferences", "agent_logs")
SELF_EF_SEARCH = 200  # each row looks for itself: an exact vector is near any entry point's path
TOPK_EF_SEARCH = 1000  # pgvector's maximum: over tables of a few thousand rows, the index is exact
TOPK = 10


@dataclass
class Findings:
    """Each list names what failed; all empty is a pass."""

    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)
    index_misses: list[str] = field(default_factory=list)
    topk_mismatches: list[str] = field(default_factory=list)
    rows: Counter[str] = field(default_factory=Counter)
    unacknowledged_present: int = 0

    def failures(self) -> dict[str, list[str]]:
        named = {
            "lost": self.lost,
            "duplicated": self.duplicated,
            "partial": self.partial,
            "index misses": self.index_misses,
            "top-k mismatches": self.topk_mismatches,
        }
        return {k: v[:10] for k, v in named.items() if v}

    def line(self) -> str:
        stored = ", ".join(f"{n} {t}" for t, n in sorted(self.rows.items()))
        return (
            f"rows checked: {stored}; lost {len(self.lost)}, duplicated {len(self.duplicated)}, "
            f"partial {len(self.partial)}, index misses {len(self.index_misses)}, "
            f"top-k mismatches {len(self.topk_mismatches)}; unacknowledged writes found stored: "
            f"{self.unacknowledged_present}"
        )


async def _kind_rows(conn: AsyncConnection, kind: Kind, owner: uuid.UUID) -> list[Any]:
    spec = KIND_SPECS[kind]
    m = spec.model
    stmt = select(
        m.id,
        spec.text_sql.label("text"),
        m.content_hash,
        m.embedding.is_not(None).label("embedded"),
        m.embedding_model,
    ).where(m.owner_id == owner)
    if kind == "preferences":
        stmt = stmt.add_columns(m.key, m.value)
    return list((await conn.execute(stmt)).all())


def _whole(kind: str, row: Any, model: str, findings: Findings) -> None:
    if not row.embedded or row.embedding_model != model:
        findings.partial.append(f"{kind} {row.id}: no vector of {model} (has {row.embedding_model})")
    elif row.content_hash != content_hash(row.text):
        findings.partial.append(f"{kind} {row.id}: content_hash is not the hash of its text")


async def check_writes(engine: AsyncEngine, owner: uuid.UUID, ledger: Ledger, model: str) -> Findings:
    """Every acknowledged write present exactly once, and no partial row of ``owner``."""
    found = Findings()
    async with engine.connect() as conn:
        insights = await _kind_rows(conn, "insights", owner)
        prefs = await _kind_rows(conn, "preferences", owner)
        logs = await _kind_rows(conn, "logs", owner)
        history = (
            await conn.execute(
                select(
                    PreferenceHistory.preference_id,
                    PreferenceHistory.key,
                    PreferenceHistory.new_value,
                    PreferenceHistory.action,
                ).where(PreferenceHistory.owner_id == owner)
            )
        ).all()
    found.rows.update(insights=len(insights), preferences=len(prefs), logs=len(logs), history=len(history))

    by_token: dict[str, list[Any]] = defaultdict(list)
    for row in insights:
        _whole("insight", row, model, found)
        by_token[row.text.split(" ", 1)[0]].append(row)
    ids = {str(row.id) for row in insights}
    for token, rows in by_token.items():
        if len(rows) > 1:
            found.duplicated.append(f"insight {token} stored {len(rows)} times")
        if token not in ledger.insights:
            found.unacknowledged_present += 1
    for token, insight_id in ledger.insights.items():
        rows = by_token.get(token, [])
        if not rows or str(rows[0].id) != insight_id:
            found.lost.append(f"insight {token} (acknowledged as {insight_id})")
    for token, insight_id in ledger.merged.items():
        if insight_id not in ids:
            found.lost.append(f"insight {insight_id} that {token} merged into")

    values_set: dict[uuid.UUID, list[Any]] = defaultdict(list)
    set_by_key: dict[str, list[Any]] = defaultdict(list)
    for h in history:
        if h.action != "delete":
            values_set[h.preference_id].append(h.new_value)
            set_by_key[h.key].append(h.new_value)
    by_key = {row.key: row for row in prefs}
    for row in prefs:
        _whole("preference", row, model, found)
        if row.value not in values_set[row.id]:
            found.partial.append(f"preference {row.key}: its value has no history row")
        if row.key not in ledger.prefs_acked:
            found.unacknowledged_present += 1
    for key, acked in ledger.prefs_acked.items():
        row = by_key.get(key)
        sent = ledger.prefs_sent[key]
        # The last acknowledged value, or one sent after it whose answer was lost.
        possible = sent[max(i for i, v in enumerate(sent) if v == acked[-1]) :]
        if row is None or row.value not in possible:
            found.lost.append(f"preference {key}: {row.value if row else None!r}, acknowledged {acked[-1]!r}")
        missing = [v for v in acked if v not in set_by_key[key]]
        if missing:
            found.lost.append(f"preference {key}: acknowledged values missing from its history: {missing}")

    stored = {str(row.id): row for row in logs}
    contents = Counter(row.text for row in logs)
    for row in logs:
        _whole("log", row, model, found)
        if str(row.id) not in ledger.logs_acked:
            found.unacknowledged_present += 1
    found.duplicated += [f"log content stored {n} times: {c[:40]}" for c, n in contents.items() if n > 1]
    for event_id, content in ledger.logs_acked.items():
        log_row = stored.get(event_id)
        if log_row is None or log_row.text != content:
            found.lost.append(f"log {event_id}")
    return found


async def check_index(engine: AsyncEngine, owner: uuid.UUID, findings: Findings, *, seed: int) -> None:
    """Each of ``owner``'s rows found by its table's HNSW index as its own nearest neighbour, and
    five random queries answered alike by the index and by a sequential scan."""
    rng = random.Random(seed)
    for table in TABLES:
        index = hnsw_index_name(table)
        nearest = (
            f"SELECT t.id, n.id AS found, n.distance FROM {table} t CROSS JOIN LATERAL ("
            f"SELECT u.id, u.embedding <=> t.embedding AS distance FROM {table} u "
            f"ORDER BY u.embedding <=> t.embedding LIMIT 1) n "
            f"WHERE t.owner_id = :owner AND t.embedding IS NOT NULL"
        )
        async with engine.connect() as conn, conn.begin():
            await conn.execute(text("SET LOCAL enable_seqscan = off"))
            await conn.execute(text(f"SET LOCAL hnsw.ef_search = {SELF_EF_SEARCH}"))
            plan = "\n".join(r[0] for r in await conn.execute(text(f"EXPLAIN {nearest}"), {"owner": owner}))
            assert index in plan, f"the self-lookup does not use {index}:\n{plan}"
            for row in await conn.execute(text(nearest), {"owner": owner}):
                # Another row with the very same vector is as near: the index still works.
                if row.found != row.id and row.distance > 1e-6:
                    findings.index_misses.append(f"{table} {row.id}: the index found {row.found} first")
            queries = [
                r[0]
                for r in await conn.execute(
                    text(
                        f"SELECT (a.embedding + b.embedding)::text FROM "
                        f"(SELECT embedding FROM {table} WHERE owner_id = :owner AND embedding IS NOT NULL "
                        f"ORDER BY md5(id::text || :salt) LIMIT 5) a, "
                        f"(SELECT embedding FROM {table} WHERE owner_id = :owner AND embedding IS NOT NULL "
                        f"ORDER BY md5(id::text || :salt || 'b') LIMIT 1) b"
                    ),
                    {"owner": owner, "salt": str(rng.random())},
                )
            ]
        top = (
            f"SELECT id, embedding <=> CAST(:q AS vector) AS d FROM {table} "
            f"ORDER BY embedding <=> CAST(:q AS vector) LIMIT {TOPK}"
        )
        for q in queries:
            async with engine.connect() as conn, conn.begin():
                await conn.execute(text("SET LOCAL enable_seqscan = off"))
                await conn.execute(text(f"SET LOCAL hnsw.ef_search = {TOPK_EF_SEARCH}"))
                plan = "\n".join(r[0] for r in await conn.execute(text(f"EXPLAIN {top}"), {"q": q}))
                assert index in plan, plan
                by_index = (await conn.execute(text(top), {"q": q})).all()
            async with engine.connect() as conn, conn.begin():
                await conn.execute(text("SET LOCAL enable_indexscan = off"))
                await conn.execute(text("SET LOCAL enable_bitmapscan = off"))
                plan = "\n".join(r[0] for r in await conn.execute(text(f"EXPLAIN {top}"), {"q": q}))
                assert index not in plan, plan
                by_scan = (await conn.execute(text(top), {"q": q})).all()
            # The same distances in the same order: the same rows, up to the order of ties (a
            # query halfway between two rows is as far from each; float rounding may swap them).
            same = len(by_index) == len(by_scan) and all(
                abs(a.d - b.d) < 1e-5 for a, b in zip(by_index, by_scan, strict=True)
            )
            if not same:
                findings.topk_mismatches.append(
                    f"{table}: index {[(str(r.id)[-8:], round(r.d, 6)) for r in by_index]} "
                    f"scan {[(str(r.id)[-8:], round(r.d, 6)) for r in by_scan]}"
                )
