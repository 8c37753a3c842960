"""Run the selected cases in a fixed order, write the JSON, regenerate RESULTS.md."""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import CaseResult, Sizes, library_versions, machine
from benchmarks.context import Context, open_context

RESULTS_DIR = Path(__file__).parent / "results"
ALL_CASES = ("d", "e", "a", "f", "b", "c", "q")  # run order: d loads the table that e, a, f use

CaseFn = Callable[[Context], Awaitable[CaseResult]]


def case_functions() -> dict[str, CaseFn]:
    from benchmarks import quality, service_cases, vector_cases

    return {
        "a": vector_cases.case_a,
        "b": service_cases.case_b,
        "c": service_cases.case_c,
        "d": vector_cases.case_d,
        "e": vector_cases.case_e,
        "f": vector_cases.case_f,
        "q": quality.case_q,
    }


async def server_versions(ctx: Context) -> dict[str, Any]:
    return {
        "postgresql": await ctx.scalar("SHOW server_version"),
        "pgvector_extension": await ctx.scalar("SELECT extversion FROM pg_extension WHERE extname = 'vector'"),
        "embedding_model": ctx.state.embedder.model_id,
    }


async def run(sizes: Sizes, cases: list[str], out_dir: Path | None = None, results_md: Path | None = None) -> Path:
    """Run ``cases`` at ``sizes``; returns the path of the JSON written."""
    from benchmarks.report import write_results_md

    started = datetime.now(UTC)
    t_start = time.perf_counter()
    fns = case_functions()
    host = machine()  # load average as the run starts
    ctx = await open_context(sizes)
    results: dict[str, Any] = {}
    try:
        versions = {**library_versions(), **await server_versions(ctx)}
        for name in ALL_CASES:
            if name not in cases:
                continue
            print(f"[bench] case {name} …", flush=True)
            t0 = time.perf_counter()
            try:
                res = await fns[name](ctx)
                entry: dict[str, Any] = {"title": res.title, "status": "ok", "data": res.data, "notes": res.notes}
            except Exception as exc:  # one broken case must not lose the others' figures
                traceback.print_exc()
                entry = {"title": name, "status": "error", "error": f"{type(exc).__name__}: {exc}", "data": {}}
            entry["seconds"] = round(time.perf_counter() - t0, 1)
            results[name] = entry
            print(f"[bench] case {name} done in {entry['seconds']} s ({entry['status']})", flush=True)
    finally:
        await ctx.close()
    doc = {
        "schema": 1,
        "size": sizes.label,
        "date": started.strftime("%Y-%m-%d"),
        "started_at": started.isoformat(timespec="seconds"),
        "total_seconds": round(time.perf_counter() - t_start, 1),
        "sizes": sizes.__dict__,
        "machine": host,
        "versions": versions,
        "settings": {
            "search": ctx.settings.search.model_dump(),
            "insights_dedup_threshold": ctx.settings.policy.insights.dedup_threshold,
            "embeddings_provider": ctx.settings.embeddings.provider,
        },
        "cases": results,
        "notes": ctx.notes,
    }
    out_dir = out_dir or RESULTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{doc['date']}-{sizes.label}.json"
    _keep_cases_not_rerun(doc, path)
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    write_results_md(doc, results_md)
    print(f"[bench] wrote {path} in {doc['total_seconds']} s", flush=True)
    return path


def _keep_cases_not_rerun(doc: dict[str, Any], path: Path) -> None:
    """A run of a few cases keeps the other cases of the same day and size, each with its start time."""
    for entry in doc["cases"].values():
        entry.setdefault("started_at", doc["started_at"])
    if not path.exists():
        return
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    kept = {name: entry for name, entry in old.get("cases", {}).items() if name not in doc["cases"]}
    for entry in kept.values():
        entry.setdefault("started_at", old.get("started_at"))
    merged = {**kept, **doc["cases"]}
    doc["cases"] = {name: merged[name] for name in ALL_CASES if name in merged}
