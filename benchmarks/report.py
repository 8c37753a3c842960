"""Regenerate the tables of RESULTS.md from a results document, between per-size markers.

Everything outside ``<!-- bench:<size>:begin -->`` … ``<!-- bench:<size>:end -->`` is hand-written
prose and is kept as it is; a size seen for the first time gets its section appended.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _f(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != value:
            return "–"
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    out += ["| " + " | ".join(_f(c) for c in row) + " |" for row in rows]
    return [*out, ""]


def _case(doc: dict[str, Any], name: str) -> dict[str, Any] | None:
    case = doc["cases"].get(name)
    if not case or case.get("status") != "ok":
        return None
    data: dict[str, Any] = case["data"]
    return data


def _lat(d: dict[str, Any]) -> tuple[Any, Any]:
    return d.get("p50_ms"), d.get("p95_ms")


def render(doc: dict[str, Any]) -> str:
    m, v = doc["machine"], doc["versions"]
    lines = [
        f"### Run `{doc['size']}` — {doc['date']}",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; load average at start "
        f"{m.get('load_avg_at_start')} (the machine is shared). PostgreSQL {v.get('postgresql')}, pgvector "
        f"{v.get('pgvector_extension')}, Python {v.get('python')}, psycopg {v.get('psycopg')}, SQLAlchemy "
        f"{v.get('sqlalchemy')}, torch {v.get('torch')}, sentence-transformers {v.get('sentence-transformers')}, "
        f"onnxruntime {v.get('onnxruntime')}, hnswlib {v.get('hnswlib')}, chromadb {v.get('chromadb')}. "
        f"Total {doc['total_seconds']} s. Settings: {doc['settings']['search']}.",
        "",
    ]
    earlier = sorted(
        {c["started_at"] for c in doc["cases"].values() if c.get("started_at", doc["started_at"]) != doc["started_at"]}
    )
    if earlier:
        kept = [n for n, c in doc["cases"].items() if c.get("started_at", doc["started_at"]) != doc["started_at"]]
        lines += [f"Cases {', '.join(kept)} are kept from an earlier run of the same size ({', '.join(earlier)}).", ""]
    for name, case in doc["cases"].items():
        if case.get("status") != "ok":
            lines += [f"**{name}** failed: `{case.get('error')}`", ""]
    lines += _targets(doc)
    a = _case(doc, "a")
    if a:
        lines += [f"**a. Vector search** ({a['rows']:,} rows, {a['queries']} queries, ef_search {a['ef_search']})", ""]
        rows = [["ours (SearchRepository)", *_lat(a["ours"]), a["ours"]["recall_at_10"], 1.0]]
        for peer, d in a["peers"].items():
            if d.get("skipped"):
                rows.append([peer, None, None, None, f"skipped: {d['reason']}"])
            else:
                rows.append([peer, *_lat(d), d["recall_at_10"], d.get("ours_p50_over_peer")])
        lines += _table(["engine", "p50 ms", "p95 ms", "recall@10", "ours p50 ÷ this p50"], rows)
    f = _case(doc, "f")
    if f:
        lines += [
            f"**f. Scoped search** ({f['rows']:,} rows, {f['owners']} owners; exact-scan threshold "
            f"{f['exact_scan_threshold']:,})",
            "",
        ]
        rows = []
        for label, row in f["selectivity"].items():
            for mode in ("ours", "hnsw_iterative", "hnsw_no_iterative", "exact_scan"):
                d = row[mode]
                rows.append(
                    [
                        label,
                        row["scope_rows"],
                        mode,
                        *_lat(d),
                        d["recall_at_10"],
                        d["returns_k"],
                        d.get("path") or d.get("plan", "")[:60],
                    ]
                )
        lines += _table(["selectivity", "rows", "path", "p50 ms", "p95 ms", "recall@10", "returns k", "plan"], rows)
        th = f["threshold_analysis"]
        lines += [
            f"Exact scan costs about {_f(th['exact_scan_ms_per_1k_rows'], 3)} ms per 1,000 scoped rows (p95); "
            f"crossover with HNSW + iterative scans: {_f(th['crossover_rows'])} rows.",
            "",
        ]
    d = _case(doc, "d")
    if d:
        lines += ["**d. Bulk load with embeddings** (binary COPY)", ""]
        rows = []
        for key, label in (("with_hnsw_index", "HNSW index present"), ("without_hnsw_index", "HNSW index dropped")):
            x = d[key]
            rows.append([label, x["rows"], x["ours_rows_per_s"], x["plain_copy_rows_per_s"], x["ratio_ours_to_plain"]])
        lines += _table(["table state", "rows", "ours rows/s", "plain COPY rows/s", "ours ÷ plain"], rows)
    e = _case(doc, "e")
    if e:
        p, h = e["pgvector"], e["hnswlib_peer"]
        lines += [
            f"**e. HNSW build** ({e['rows']:,} rows): pgvector {p['seconds']} s with maintenance_work_mem "
            f"{p['maintenance_work_mem']} (server default {p['server_default_maintenance_work_mem']}), "
            f"{p['max_parallel_maintenance_workers']} parallel workers; hnswlib {h.get('seconds', h.get('reason'))} s "
            f"on {h.get('threads', '–')} threads; ratio {_f(e.get('ratio_pgvector_to_hnswlib'))}.",
            "",
        ]
    b = _case(doc, "b")
    if b:
        lines += [f"**b. Text search over HTTP** ({b['rows_in_scope']:,} rows in scope, {b['queries']} queries)", ""]
        rows = [
            ["GET /healthz", *_lat(b["healthz"]), "", ""],
            ["embed_query alone", *_lat(b["embed_query_alone"]), "", ""],
            ["bump_access (10 rows)", *_lat(b["bump_access_10_rows"]), "", ""],
        ]
        for mode, x in b["modes"].items():
            rows.append([f"{mode}: service + SQL in-process", *_lat(x["database_and_service_in_process"]), "", ""])
            rows.append(
                [
                    f"{mode}: HTTP total",
                    *_lat(x["http_total"]),
                    x["service_overhead_p50_ms"],
                    x["http_p50_over_model_alone"],
                ]
            )
        lines += _table(["what", "p50 ms", "p95 ms", "service overhead p50 ms", "÷ model alone"], rows)
        c8 = b["concurrent"]
        lines += [
            f"Concurrent: {c8['clients']} clients, {c8['mode']}: {c8['searches_per_s']} searches/s "
            f"(p50 {c8['latency']['p50_ms']} ms, p95 {c8['latency']['p95_ms']} ms, {c8['errors']} errors).",
            "",
        ]
        # runs before 2026-12-07 did not split the CPU nor load the other modes
        for run in [c8, *b.get("concurrent_other_modes", {}).values()]:
            if "cpu" not in run:
                continue
            per, cores = run["cpu"]["cpu_ms_per_unit"], run["cpu"]["cores"]
            lines += [
                f"CPU per {run['mode']} search under that load ({run['searches_per_s']}/s): {per['machine']} ms on "
                f"the machine ({per['server']} server, {per['postgres']} PostgreSQL, {per['client']} the "
                f"benchmark's clients, {per['other']} other), the {cores} cores "
                f"{run['cpu']['machine_busy_share']:.0%} busy; at full load that allows "
                f"{1000 * cores / max(per['machine'], 0.01):.0f} searches/s.",
                "",
            ]
    c = _case(doc, "c")
    if c:
        lines += [f"**c. Ingest with embedding** ({c['insights']:,} insights through POST /v1/insights/batch)", ""]
        rows = []
        for provider, x in c["providers"].items():
            if x.get("skipped"):
                rows.append([provider, None, None, None, None, None, f"skipped: {x['reason']}"])
                continue
            rows.append(
                [
                    provider,
                    x["model_alone_texts_per_s"],
                    x["ingest_per_s"],
                    x["ratio_ingest_to_model"],
                    x["single_write"]["p50_ms"],
                    x["single_write"]["p95_ms"],
                    f"{x['search_at_this_size_hybrid']['p50_ms']} / {x['search_at_this_size_hybrid']['p95_ms']}",
                ]
            )
        lines += _table(
            [
                "provider",
                "model alone texts/s",
                "ingest/s",
                "ingest ÷ model",
                "single write p50",
                "p95",
                "search p50 / p95 ms",
            ],
            rows,
        )
    q = _case(doc, "q")
    if q:
        lines += _quality(q)
    return "\n".join(lines).rstrip() + "\n"


def _quality(q: dict[str, Any]) -> list[str]:
    c = q["corpus"]
    lines = [
        f"**q. Retrieval quality** ({c['topics']} topics, {c['stored']} stored facts + {c['filler']} filler, "
        f"{c['questions']} questions; hybrid calibration {q['config'].get('calibration_hybrid')}, candidate multiplier "
        f"{q['config']['candidate_multiplier']})",
        "",
    ]

    def metrics(label: str, x: dict[str, Any]) -> list[Any]:
        return [
            label,
            x["recall_at_1"],
            x["recall_at_5"],
            x["recall_at_10"],
            x["mrr"],
            x.get("paraphrase_mrr"),
            x.get("identifier_mrr"),
        ]

    rows = [metrics(f"mode {k}", x) for k, x in q["modes"].items()]
    rows += [metrics(f"hybrid rrf_k={k}", x) for k, x in q.get("hybrid_by_rrf_k", {}).items()]
    rows += [metrics(f"hybrid multiplier={k}", x) for k, x in q["hybrid_by_candidate_multiplier"].items()]
    rows += [metrics(f"hybrid keyword weight x{k}", x) for k, x in q.get("hybrid_by_keyword_weight", {}).items()]
    for name, x in q["providers_exact_semantic"].items():
        if x.get("skipped"):
            rows.append([f"exact cosine, {name}", None, None, None, f"skipped: {x['reason']}", None, None])
        else:
            rows.append(metrics(f"exact cosine, {name}", x))
    lines += _table(
        ["configuration", "recall@1", "recall@5", "recall@10", "MRR", "MRR paraphrase", "MRR exact token"], rows
    )
    rows = []
    summaries = []
    for name, x in q["dedup"].items():
        cur = x.get("at_configured_threshold") or {}
        for kind in ("paraphrase_pairs", "distinct_pairs"):
            s = x[kind]
            rows.append([name, kind, s["n"], s["min"], s["p5"], s["p50"], s["p95"], s["max"]])
        summaries += [
            f"- {name}: best separating threshold {x['best_threshold']} "
            f"(balanced accuracy {x['best_balanced_accuracy']}); at {cur.get('threshold')}: "
            f"{cur.get('paraphrases_merged')} of paraphrase pairs merged, {cur.get('distinct_merged_wrongly')} of "
            f"distinct pairs merged wrongly. Distinct pairs: {x['examples_distinct']}",
        ]
    lines += ["Near-duplicate threshold: cosine of pairs", ""]
    lines += _table(["model", "pairs", "n", "min", "p5", "p50", "p95", "max"], rows)
    lines += [*summaries, ""]
    return lines


def _targets(doc: dict[str, Any]) -> list[str]:
    rows: list[list[Any]] = []
    a, b, c, d, e, f = (_case(doc, x) for x in "abcdef")
    size = doc["size"]

    def add(tid: str, goal: str, measured: str, met: bool | None, miss: str = "") -> None:
        rows.append([tid, goal, measured, "–" if met is None else ("met" if met else "missed"), miss])

    if a:
        p95, rec = a["ours"]["p95_ms"], a["ours"]["recall_at_10"]
        tid, goal_ms, goal_rec = ("T2", 6.0, 0.97) if a["rows"] >= 1_000_000 else ("T1", 3.0, 0.98)
        add(
            tid,
            f"SQL vector search p95 ≤ {goal_ms} ms, recall ≥ {goal_rec} ({a['rows']:,} rows)",
            f"p95 {p95} ms, recall {rec}",
            p95 <= goal_ms and rec >= goal_rec,
            f"{p95 / goal_ms:.1f}× the latency" if p95 > goal_ms else "",
        )
    if b:
        h = b["modes"]["hybrid"]
        p95 = h["http_total"]["p95_ms"]
        over = h["overhead_minus_healthz_p50_ms"]
        add(
            "T3",
            "text search over HTTP p95 ≤ 15 ms; overhead ≤ /healthz + 2 ms",
            f"hybrid p95 {p95} ms; overhead − healthz {over} ms",
            p95 <= 15 and over <= 2,
            f"{p95 / 15:.1f}× the latency" if p95 > 15 else "",
        )
        sps = b["concurrent"]["searches_per_s"]
        add("T4", "≥ 250 text searches/s, 8 clients", f"{sps}/s", sps >= 250, f"{sps / 250:.2f}× the goal")
    if f:
        sel = f["selectivity"]
        ok_k = all(r["ours"]["returns_k"] for r in sel.values())
        min_rec = min(r["ours"]["recall_at_10"] for r in sel.values())
        worst = max((r["ours"]["p95_over_unscoped"] or 0) for r in sel.values())
        add(
            "T5",
            "scoped search returns k, recall ≥ 0.95, p95 ≤ 2× unscoped",
            f"returns k {ok_k}; min recall {min_rec}; worst p95 {worst}× unscoped",
            ok_k and min_rec >= 0.95 and worst <= 2,
        )
    if c:
        for provider, x in c["providers"].items():
            if x.get("skipped"):
                continue
            p95 = x["single_write"]["p95_ms"]
            add(
                "T6",
                f"single write p95 ≤ 20 ms ({provider})",
                f"{p95} ms",
                p95 <= 20,
                f"{p95 / 20:.1f}×" if p95 > 20 else "",
            )
        x = c["providers"].get("onnx", {})
        if x and not x.get("skipped"):
            ok = x["ingest_per_s"] >= 500 and (x["ratio_ingest_to_model"] or 0) >= 0.8
            add(
                "T7",
                "bulk ingest ≥ 500/s on the fast CPU path and ≥ 0.8× the model",
                f"{x['ingest_per_s']}/s, {x['ratio_ingest_to_model']}× the model",
                ok,
            )
    if d:
        x = d["without_hnsw_index"]
        ok = x["ours_rows_per_s"] >= 30_000 and (x["ratio_ours_to_plain"] or 0) >= 0.75
        add(
            "T8",
            "vectors with embeddings ≥ 30,000 rows/s and ≥ 0.75× plain COPY",
            f"{x['ours_rows_per_s']:,} rows/s, {x['ratio_ours_to_plain']}× plain (index dropped)",
            ok,
        )
    if e:
        sec = e["pgvector"]["seconds"]
        scaled = sec * 100_000 / e["rows"] if e["rows"] else sec
        add(
            "T9",
            "HNSW build of 100k rows ≤ 30 s",
            f"{sec} s for {e['rows']:,} rows"
            + ("" if e["rows"] == 100_000 else f" (≈ {scaled:.0f} s per 100k, linear)"),
            sec <= 30 if e["rows"] >= 100_000 else None,
        )
    if not rows:
        return []
    return [
        f"Targets as measured in this `{size}` run:",
        "",
        *_table(["target", "goal", "measured", "status", "miss"], rows),
    ]


def write_results_md(doc: dict[str, Any], path: Path | None) -> None:
    if path is None:
        return
    write_section(path, doc["size"], render(doc))


def write_section(path: Path, label: str, rendered: str) -> None:
    """Put ``rendered`` between ``<!-- bench:LABEL:begin/end -->`` in ``path``, keeping the prose
    around it; a label seen for the first time gets its section appended."""
    begin, end = f"<!-- bench:{label}:begin -->", f"<!-- bench:{label}:end -->"
    body = f"{begin}\n{rendered}{end}"
    text = path.read_text() if path.exists() else "# Benchmark results\n\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + body + tail
    else:
        text = text.rstrip() + "\n\n" + body + "\n"
    path.write_text(text)
