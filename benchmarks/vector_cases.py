"""Cases on synthetic vectors: d (bulk load), e (HNSW build), a (vector search), f (scoped search)."""

from __future__ import annotations

import gc
import itertools
import os
import re
import time
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
from pgvector.psycopg import register_vector_async

from benchmarks.common import DIM, CaseResult, K, Skip, now_ms, ratio, stats
from benchmarks.context import HNSW_DDL, Context, Dataset, make_dataset, row_of
from embeddings import content_hash
from mosaic_memory.common.indexes import HNSW_EF_CONSTRUCTION, HNSW_M, HNSW_OPTIONS
from mosaic_memory.insights.repository import InsightRepository
from mosaic_memory.models import utc_now
from mosaic_memory.search.repository import SearchRepository
from mosaic_memory.search.schemas import SearchFilters

MODEL_ID = "synthetic/clustered-gaussian-384"
COLUMNS = "owner_id, id, content, content_hash, embedding, embedding_model, source_type"
CURRENT = "superseded_by IS NULL AND valid_to IS NULL AND (expires_at IS NULL OR expires_at > now())"


# --- loading ----------------------------------------------------------------------------------


async def truncate(ctx: Context) -> None:
    await ctx.execute("TRUNCATE insights CASCADE")
    ctx.loaded = False


async def drop_index(ctx: Context) -> None:
    await ctx.execute("DROP INDEX IF EXISTS ix_insights_embedding_hnsw")
    ctx.indexed = False


async def build_index(ctx: Context, maintenance_work_mem: str = "512MB") -> dict[str, Any]:
    """(Re)create the migration's HNSW index; returns seconds, settings and pgvector's notices."""
    notices: list[str] = []
    async with await ctx.raw() as conn:
        conn.add_notice_handler(lambda d: notices.append(str(d.message_primary)))
        await conn.execute("DROP INDEX IF EXISTS ix_insights_embedding_hnsw")
        default_mwm = (await (await conn.execute("SHOW maintenance_work_mem")).fetchone())[0]  # type: ignore[index]
        workers = (await (await conn.execute("SHOW max_parallel_maintenance_workers")).fetchone())[0]  # type: ignore[index]
        await conn.execute(f"SET maintenance_work_mem = '{maintenance_work_mem}'")
        t0 = time.perf_counter()
        await conn.execute(HNSW_DDL)
        seconds = time.perf_counter() - t0
        await conn.execute("ANALYZE insights")
    ctx.indexed = True
    return {
        "seconds": round(seconds, 2),
        "maintenance_work_mem": maintenance_work_mem,
        "server_default_maintenance_work_mem": default_mwm,
        "max_parallel_maintenance_workers": int(workers),
        "notices": notices,
    }


async def load_ours(ctx: Context, data: Dataset, rows: Sequence[int]) -> float:
    """Our import path (InsightRepository.bulk_load), one transaction; returns seconds."""
    idx = np.asarray(rows)
    t0 = time.perf_counter()
    async with ctx.state.sessionmaker() as session, session.begin():
        repo = InsightRepository(session)
        for owner in np.unique(data.owner_of_row[idx]):
            sel = idx[data.owner_of_row[idx] == owner]
            await repo.bulk_load(
                data.owner_ids[int(owner)],
                [data.contents[i] for i in sel],
                data.vectors[sel],
                embedding_model=MODEL_ID,
            )
    ctx.loaded = len(idx) == len(data.vectors)
    return time.perf_counter() - t0


async def load_plain(ctx: Context, data: Dataset, rows: Sequence[int]) -> float:
    """The peer: a plain binary COPY with pgvector.psycopg's adapters; hashes computed beforehand."""
    idx = np.asarray(rows)
    prepared = [
        (
            data.owner_ids[int(data.owner_of_row[i])],
            uuid.uuid4(),
            data.contents[i],
            content_hash(data.contents[i]),
            data.vectors[i],
            MODEL_ID,
            "import",
        )
        for i in idx
    ]
    seconds = await copy_insights(ctx, prepared)
    ctx.loaded = len(idx) == len(data.vectors)
    return seconds


async def copy_insights(ctx: Context, rows: Sequence[tuple[Any, ...]]) -> float:
    """One binary ``COPY`` of ``rows`` (the :data:`COLUMNS`, hashes computed beforehand) in one
    transaction, through pgvector.psycopg's adapters: the plain peer of our loaders. Returns seconds."""
    t0 = time.perf_counter()
    async with await ctx.raw(autocommit=False) as conn:
        await register_vector_async(conn)
        async with (
            conn.cursor() as cur,
            cur.copy(f"COPY insights ({COLUMNS}) FROM STDIN WITH (FORMAT BINARY)") as copy,
        ):
            copy.set_types(["uuid", "uuid", "text", "varchar", "vector", "varchar", "varchar"])
            for row in rows:
                await copy.write_row(row)
        await conn.commit()
    return time.perf_counter() - t0


async def ensure_loaded(ctx: Context) -> Dataset:
    """The data set in the table with its HNSW index (loaded untimed when case d did not run)."""
    data = await make_dataset(ctx)
    if not ctx.loaded:
        await truncate(ctx)
        await drop_index(ctx)
        await load_ours(ctx, data, range(len(data.vectors)))
    if not ctx.indexed:
        await build_index(ctx)
    return data


# --- d: bulk load -----------------------------------------------------------------------------


async def case_d(ctx: Context) -> CaseResult:
    data = await make_dataset(ctx)
    n = len(data.vectors)
    res = CaseResult("d", "Bulk load of vectors that come with their embeddings (binary COPY)")
    # With the HNSW index in place every row is inserted into the graph: a smaller load.
    small = list(range(min(2_000, max(100, n // 10))))
    await truncate(ctx)
    if not ctx.indexed:
        await build_index(ctx)
    plain_small = await load_plain(ctx, data, small)
    await truncate(ctx)
    ours_small = await load_ours(ctx, data, small)
    await truncate(ctx)
    # Without it (drop, load, build: the way to import many rows; case e times the build).
    await drop_index(ctx)
    everything = range(n)
    plain_all = await load_plain(ctx, data, everything)
    await truncate(ctx)
    ours_all = await load_ours(ctx, data, everything)
    res.data = {
        "rows": n,
        "with_hnsw_index": {
            "rows": len(small),
            "ours_rows_per_s": round(len(small) / ours_small),
            "plain_copy_rows_per_s": round(len(small) / plain_small),
            "ratio_ours_to_plain": ratio(plain_small, ours_small),
        },
        "without_hnsw_index": {
            "rows": n,
            "ours_rows_per_s": round(n / ours_all),
            "plain_copy_rows_per_s": round(n / plain_all),
            "ratio_ours_to_plain": ratio(plain_all, ours_all),
        },
    }
    res.notes.append(
        "ours = InsightRepository.bulk_load (one COPY per owner, content_hash computed inside); "
        "plain = one binary COPY through pgvector.psycopg's adapters with the hashes computed beforehand. "
        "Both fill the same columns of the same table (B-tree, GIN tags and full-text indexes maintained)."
    )
    return res


# --- e: HNSW build ----------------------------------------------------------------------------


async def case_e(ctx: Context) -> CaseResult:
    data = await make_dataset(ctx)
    if not ctx.loaded:
        await truncate(ctx)
        await drop_index(ctx)
        await load_ours(ctx, data, range(len(data.vectors)))
    res = CaseResult("e", f"HNSW index build ({HNSW_OPTIONS}) on a loaded table")
    built = await build_index(ctx)
    hnsw = _hnswlib_build_seconds(data)
    res.data = {"rows": len(data.vectors), "pgvector": built, "hnswlib_peer": hnsw}
    if isinstance(hnsw, dict) and "seconds" in hnsw:
        res.data["ratio_pgvector_to_hnswlib"] = ratio(built["seconds"], hnsw["seconds"])
    return res


def _hnswlib_index(data: Dataset) -> tuple[Any, float] | dict[str, Any]:
    """hnswlib's index of ``data``, built with the migrations' options on every core, and the
    seconds the build took; or a skip when hnswlib is not installed."""
    try:
        import hnswlib
    except ImportError:
        return Skip("hnswlib is not installed (pip install -e '.[bench]')").as_dict()
    index = hnswlib.Index(space="cosine", dim=DIM)
    t0 = time.perf_counter()
    index.init_index(max_elements=len(data.vectors), ef_construction=HNSW_EF_CONSTRUCTION, M=HNSW_M)
    index.add_items(data.vectors, np.arange(len(data.vectors)), num_threads=os.cpu_count() or 1)
    return index, time.perf_counter() - t0


def _hnswlib_build_seconds(data: Dataset) -> dict[str, Any]:
    built = _hnswlib_index(data)
    if isinstance(built, dict):
        return built
    return {"seconds": round(built[1], 2), "threads": os.cpu_count()}


# --- a: vector search -------------------------------------------------------------------------


def exact_top(data: Dataset, mask: np.ndarray | None = None) -> tuple[list[np.ndarray], list[float]]:
    """Exact top-k row numbers per query (numpy), and the time each query took."""
    rows = np.arange(len(data.vectors)) if mask is None else np.flatnonzero(mask)
    matrix = data.vectors if mask is None else data.vectors[rows]
    tops: list[np.ndarray] = []
    times: list[float] = []
    for q in data.queries:
        t0 = now_ms()
        sims = matrix @ q
        k = min(K, len(sims))
        part = np.argpartition(-sims, k - 1)[:k]
        top = part[np.argsort(-sims[part])]
        times.append(now_ms() - t0)
        tops.append(rows[top])
    return tops, times


def recall(found: Sequence[Sequence[int]], truth: Sequence[np.ndarray]) -> float:
    total = 0.0
    for got, want in zip(found, truth, strict=True):
        if len(want) == 0:
            total += 1.0
            continue
        total += len(set(got) & set(int(x) for x in want)) / len(want)
    return round(total / len(truth), 4)


async def ours_search(ctx: Context, owner_ids: list[uuid.UUID], q: np.ndarray) -> tuple[float, list[int]]:
    """One search through the service's SearchRepository, in its own transaction like a request."""
    cfg = ctx.settings.search
    t0 = now_ms()
    async with ctx.state.sessionmaker() as session, session.begin():
        rows = await SearchRepository(session).semantic(
            ["insights"],
            owner_ids,
            q,
            SearchFilters(),
            limit=K,
            now=utc_now(),
            include_history=False,
            scan=cfg.scan_policy(),
            ef_search=cfg.hnsw_ef_search,
        )
    return now_ms() - t0, [row_of(r.content) for r in rows]


async def run_ours(ctx: Context, data: Dataset, owner_ids: list[uuid.UUID]) -> tuple[list[float], list[list[int]]]:
    for q in data.queries[: min(10, len(data.queries))]:  # warm the cache and the pool
        await ours_search(ctx, owner_ids, q)
    times, found = [], []
    for q in data.queries:
        ms, rows = await ours_search(ctx, owner_ids, q)
        times.append(ms)
        found.append(rows)
    return times, found


async def case_a(ctx: Context) -> CaseResult:
    data = await ensure_loaded(ctx)
    n = len(data.vectors)
    res = CaseResult("a", f"Vector search, {n:,} × 384-dim vectors, k=10")
    truth, exact_times = exact_top(data)
    peers: dict[str, Any] = {"numpy_exact": {**stats(exact_times), "recall_at_10": 1.0}}

    times, found = await run_ours(ctx, data, data.owner_ids)
    ours = {**stats(times), "recall_at_10": recall(found, truth)}
    raw_times, raw_found = await _raw_sql(ctx, data, ctx.settings.search.hnsw_ef_search)
    peers["pgvector_sql_only"] = {**stats(raw_times), "recall_at_10": recall(raw_found, truth)}
    peers["hnswlib"] = _hnswlib(data, truth, ctx.settings.search.hnsw_ef_search)
    peers["chroma"] = _chroma(ctx, data, truth)
    for peer in peers.values():
        if "p50_ms" in peer:
            peer["ours_p50_over_peer"] = ratio(ours["p50_ms"], peer["p50_ms"])
    res.data = {
        "rows": n,
        "queries": len(data.queries),
        "ef_search": ctx.settings.search.hnsw_ef_search,
        "ours": ours,
        "peers": peers,
    }
    res.notes.append(
        "ours = SearchRepository.semantic over the user's 100 owners (the whole table), each query in its own "
        "transaction as in a request; pgvector_sql_only = the bare ORDER BY embedding <=> q LIMIT 10 over one "
        "psycopg connection (no owner filter, no ORM) to show what the repository adds."
    )
    return res


async def _raw_sql(ctx: Context, data: Dataset, ef_search: int) -> tuple[list[float], list[list[int]]]:
    async with await ctx.raw() as conn:
        await register_vector_async(conn)
        await conn.execute(f"SET hnsw.ef_search = {int(ef_search)}")
        sql = "SELECT content FROM insights ORDER BY embedding <=> %s LIMIT 10"
        for q in data.queries[:10]:
            await conn.execute(sql, (q,))
        times, found = [], []
        for q in data.queries:
            t0 = now_ms()
            rows = await (await conn.execute(sql, (q,))).fetchall()
            times.append(now_ms() - t0)
            found.append([row_of(r[0]) for r in rows])
    return times, found


def _hnswlib(data: Dataset, truth: list[np.ndarray], ef: int) -> dict[str, Any]:
    built_index = _hnswlib_index(data)
    if isinstance(built_index, dict):
        return built_index
    index, build = built_index
    index.set_ef(ef)
    index.set_num_threads(1)
    times, found = [], []
    for q in data.queries:
        t = now_ms()
        labels, _ = index.knn_query(q, k=K)
        times.append(now_ms() - t)
        found.append([int(x) for x in labels[0]])
    del index
    gc.collect()
    built = {"build_seconds": round(build, 2), "M": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION, "ef": ef}
    return {**stats(times), "recall_at_10": recall(found, truth), **built}


def _chroma(ctx: Context, data: Dataset, truth: list[np.ndarray]) -> dict[str, Any]:
    if len(data.vectors) > ctx.sizes.chroma_max_rows:
        return Skip(
            f"Chroma is skipped above {ctx.sizes.chroma_max_rows:,} rows (its build alone takes too long)"
        ).as_dict()
    try:
        import chromadb
        from chromadb.config import Settings as ChromaSettings
    except Exception as exc:  # any import failure means "cannot run here"
        return Skip(f"chromadb is not importable: {type(exc).__name__}: {exc}").as_dict()
    try:
        client = chromadb.PersistentClient(
            path=str(ctx.workdir / "chroma"), settings=ChromaSettings(anonymized_telemetry=False)
        )
        coll = client.create_collection(
            "bench",
            embedding_function=None,
            metadata={"hnsw:space": "cosine", "hnsw:M": 16, "hnsw:construction_ef": 64, "hnsw:search_ef": 100},
        )
        batch = min(5_000, client.get_max_batch_size())
        t0 = time.perf_counter()
        for start in range(0, len(data.vectors), batch):
            stop = min(start + batch, len(data.vectors))
            coll.add(ids=[str(i) for i in range(start, stop)], embeddings=data.vectors[start:stop])
        build = time.perf_counter() - t0
        times, found = [], []
        for q in data.queries:
            t = now_ms()
            out = coll.query(query_embeddings=[q], n_results=K, include=[])
            times.append(now_ms() - t)
            found.append([int(x) for x in out["ids"][0]])
        return {
            **stats(times),
            "recall_at_10": recall(found, truth),
            "build_seconds": round(build, 2),
            "version": chromadb.__version__,
        }
    except Exception as exc:
        return Skip(f"Chroma failed to run: {type(exc).__name__}: {exc}").as_dict()


# --- f: scoped search -------------------------------------------------------------------------

RAW_MODES = {
    "hnsw_iterative": ("SET hnsw.iterative_scan = relaxed_order", "embedding <=> %(q)s"),
    "hnsw_no_iterative": ("SET hnsw.iterative_scan = off", "embedding <=> %(q)s"),
    "exact_scan": ("SET hnsw.iterative_scan = off", "(embedding <=> %(q)s) + 0"),
}


async def case_f(ctx: Context) -> CaseResult:
    data = await ensure_loaded(ctx)
    n = len(data.vectors)
    cfg = ctx.settings.search
    res = CaseResult("f", f"Scoped search: 100 owners in one table of {n:,} rows, k=10")
    table: dict[str, Any] = {}
    for label in ("100%", "10%", "1%", "0.1%"):
        mask = data.scope_mask(label)
        owners = data.scope_owner_ids(label)
        truth, _ = exact_top(data, mask)
        scope_rows = int(mask.sum())
        want = min(K, scope_rows)
        times, found = await run_ours(ctx, data, owners)
        row: dict[str, Any] = {
            "scope_rows": scope_rows,
            "ours": {
                **stats(times),
                "recall_at_10": recall(found, truth),
                "min_returned": min(len(f) for f in found),
                "returns_k": all(len(f) == want for f in found),
                "path": "exact scan" if scope_rows <= cfg.exact_scan_threshold else "HNSW, iterative scan",
            },
        }
        for mode, (setting, order) in RAW_MODES.items():
            m_times, m_found, plan = await _raw_scoped(ctx, data, owners, setting, order, cfg.hnsw_ef_search)
            row[mode] = {
                **stats(m_times),
                "recall_at_10": recall(m_found, truth[: len(m_found)]),
                "min_returned": min(len(f) for f in m_found),
                "returns_k": all(len(f) == want for f in m_found),
                "plan": plan,
            }
        table[label] = row
    unscoped_p95 = table["100%"]["ours"]["p95_ms"]
    for row in table.values():
        row["ours"]["p95_over_unscoped"] = ratio(row["ours"]["p95_ms"], unscoped_p95)
    res.data = {
        "rows": n,
        "owners": len(data.owner_ids),
        "exact_scan_threshold": cfg.exact_scan_threshold,
        "ef_search": cfg.hnsw_ef_search,
        "max_scan_tuples": 50_000,
        "selectivity": table,
        "threshold_analysis": _threshold(table),
    }
    res.notes.append(
        "ours = SearchRepository.semantic (exact scan at or below search.exact_scan_threshold rows, HNSW with "
        "relaxed_order iterative scans above it, exact again when HNSW comes back short); the three raw modes are "
        "the same WHERE clause over psycopg with the planner's own choice of plan (shown)."
    )
    return res


async def _raw_scoped(
    ctx: Context, data: Dataset, owners: list[uuid.UUID], setting: str, order: str, ef: int
) -> tuple[list[float], list[list[int]], str]:
    sql = (
        f"SELECT content FROM insights WHERE owner_id = ANY(%(owners)s) AND embedding IS NOT NULL AND {CURRENT} "
        f"ORDER BY {order} LIMIT {K}"
    )
    async with await ctx.raw() as conn:
        await register_vector_async(conn)
        await conn.execute(setting)
        await conn.execute(f"SET hnsw.ef_search = {int(ef)}")
        await conn.execute("SET hnsw.max_scan_tuples = 50000")
        params = {"owners": owners, "q": data.queries[0]}
        plan_rows = await (await conn.execute("EXPLAIN (COSTS OFF) " + sql, params)).fetchall()
        plan = re.sub(r"'\[[^']*\]'", "q", " / ".join(str(r[0]).strip() for r in plan_rows[:4]))
        for q in data.queries[:5]:
            await conn.execute(sql, {"owners": owners, "q": q})
        times, found = [], []
        # an exact scan of a large scope is slow and its latency steady: fewer samples suffice
        queries = data.queries[:50] if "+ 0" in order and len(owners) > 1 else data.queries
        for q in queries:
            t0 = now_ms()
            rows = await (await conn.execute(sql, {"owners": owners, "q": q})).fetchall()
            times.append(now_ms() - t0)
            found.append([row_of(r[0]) for r in rows])
    return times, found, plan


def _threshold(table: dict[str, Any]) -> dict[str, Any]:
    """Where an exact scan stops being cheaper than HNSW with iterative scans (at equal or better recall)."""
    points = sorted(
        (
            row["scope_rows"],
            row["exact_scan"]["p95_ms"],
            row["hnsw_iterative"]["p95_ms"],
            row["hnsw_iterative"]["recall_at_10"],
        )
        for row in table.values()
    )
    ms_per_1k_rows = None
    if len(points) >= 2 and points[-1][0] > points[0][0]:
        (r0, e0, _, _), (r1, e1, _, _) = points[0], points[-1]
        ms_per_1k_rows = round((e1 - e0) / (r1 - r0) * 1000, 4)
    crossover = None
    for (ra, ea, ha, _), (rb, eb, hb, recall_b) in itertools.pairwise(points):
        if ea <= ha and eb > hb and recall_b >= 0.95:
            # linear interpolation of (exact − hnsw) between the two scope sizes
            da, db = ea - ha, eb - hb
            crossover = int(ra + (rb - ra) * (-da) / (db - da))
            break
    return {
        "points": [
            {"scope_rows": r, "exact_p95_ms": e, "hnsw_iterative_p95_ms": h, "hnsw_iterative_recall": rc}
            for r, e, h, rc in points
        ],
        "exact_scan_ms_per_1k_rows": ms_per_1k_rows,
        "crossover_rows": crossover,
    }
