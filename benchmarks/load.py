"""A bounded load test: clients in closed loops against a real ``mosaic-memory serve`` on loopback.

    python -m benchmarks.load --duration 600 --clients 16 --rows 100000 [--warmup 60]
        [--data-dir DIR] [--out DIR] [--no-results-md]

Each client (asyncio + httpx, one keep-alive connection each) sends its next request as soon as
the last one is answered: 80 % searches (hybrid, semantic and keyword over a mix of kinds, with
questions people ask) and 20 % adds (insights, preferences, agent logs). The service is a real
``serve`` process on 127.0.0.1 backed by the embedded PostgreSQL, its table seeded through the
binary COPY of case d (``InsightRepository.bulk_load``). ``--data-dir`` keeps the seeded instance
there (``info.json`` names it and its user's key) and reuses it on the next run.

Reported: throughput (operations/s overall and per operation), p50/p95/p99 per operation after
the warm-up, errors by status (any non-2xx answer or transport error is one), every acknowledged
add read back afterwards, and the resident memory of the serve process and its children sampled
through the run: after the warm-up vs at the end. The peer, run side by side: the same clients
against ``/healthz`` (an HTTP round trip through the same server and client, no work behind it).

:func:`run_load` is the part ``tests/reliability/test_load.py`` runs for a few seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

from benchmarks.common import (
    Sizes,
    fact_texts,
    library_versions,
    machine,
    process_tree_sum,
    question_texts,
    ratio,
    stats,
)
from benchmarks.corpus import IDENTIFIERS, TOPICS
from benchmarks.report import _table, write_section

RESULTS_DIR = Path(__file__).parent / "results"
SEARCH_MODES = (("hybrid", 0.5), ("semantic", 0.3), ("keyword", 0.2))
# None: every kind the caller may read (the default of the API)
SEARCH_KINDS: tuple[tuple[list[str] | None, float], ...] = (
    (None, 0.4),
    (["insights"], 0.3),
    (["insights", "preferences"], 0.1),
    (["logs"], 0.1),
    (["insights", "skills"], 0.1),
)
ADD_KINDS = (("insight", 0.5), ("preference", 0.25), ("log", 0.25))
PREFERENCE_NAMES = ("code_review_style", "editor_theme", "units", "reply_length", "meeting_hours", "language")
PREFERENCE_VALUES = (
    "short and direct",
    "dark",
    "metric",
    "tabs, never spaces",
    "after 10am",
    "German",
    "examples first",
)
LOG_TOOLS = ("bash", "pytest", "git", "search_files", "http_get")
LOG_LINES = (
    "pytest failed: connection refused on port {n}",
    "retrying the migration after a lock timeout ({n} ms)",
    "deployed build {n} to staging",
    "tool search_files('config {n}') returned 3 matches",
    "user asked to rename the branch to feature-{n}",
    "the flaky integration test passed on retry {n}",
)


@dataclass(frozen=True)
class LoadPlan:
    """One run: ``clients`` closed loops for ``duration_s`` (the first ``warmup_s`` not measured),
    after the ``/healthz`` peer for ``peer_s``; RSS sampled every ``rss_every_s``."""

    duration_s: float
    clients: int
    warmup_s: float
    peer_s: float
    search_share: float = 0.8
    rss_every_s: float = 1.0
    seed: int = 0

    @property
    def rss_window_s(self) -> float:
        """The span averaged for the RSS after the warm-up and at the end (1 to 10 s)."""
        return max(1.0, min(10.0, self.duration_s / 30))


@dataclass(frozen=True)
class Ack:
    """An add the service acknowledged (2xx): ``ref`` (an id, or a preference key) must read back
    ``expect`` (content or value), or, where ``expect`` is None (a merged near-duplicate), exist."""

    kind: str
    ref: str
    expect: str | None


@dataclass
class Sample:
    op: str
    status: str  # "200", or "transport:ReadTimeout"
    ms: float
    at: float  # seconds since the phase started, when the answer came


@dataclass
class Outcome:
    """What one phase recorded."""

    seconds: float
    samples: list[Sample] = field(default_factory=list)
    acks: list[Ack] = field(default_factory=list)
    error_samples: list[dict[str, Any]] = field(default_factory=list)
    rss: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, bytes)
    load_avg: list[float] = field(default_factory=list)  # the machine's 1-minute load, beside each RSS sample


Request = tuple[str, str, str, dict[str, Any] | None]  # op, method, path, JSON body


def _pick(rng: random.Random, weighted: Sequence[tuple[Any, float]]) -> Any:
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


class Workload:
    """The requests of the mixed phase; adds carry what they must read back."""

    def __init__(self, plan: LoadPlan) -> None:
        self.plan = plan
        self.questions = [
            *question_texts(300, seed=plan.seed + 11),
            *(q for t in TOPICS for q in t.questions),
            *(q for _, q in IDENTIFIERS),
        ]
        self.facts = fact_texts(20_000, seed=plan.seed + 97)
        self.next_fact = 0

    def next_request(self, rng: random.Random, client: int, n: int) -> Request:
        if rng.random() < self.plan.search_share:
            mode = _pick(rng, SEARCH_MODES)
            body: dict[str, Any] = {"query": rng.choice(self.questions), "k": rng.choice((5, 10, 10, 20)), "mode": mode}
            kinds = _pick(rng, SEARCH_KINDS)
            if kinds is not None:
                body["kinds"] = kinds
            return f"search.{mode}", "POST", "/v1/search", body
        kind = _pick(rng, ADD_KINDS)
        if kind == "insight":
            content = self.facts[self.next_fact % len(self.facts)]
            self.next_fact += 1
            tags = rng.sample(("work", "home", "travel", "code", "food"), k=rng.randint(0, 2))
            return "add.insight", "POST", "/v1/insights", {"content": content, "tags": tags}
        if kind == "preference":
            key = f"load.c{client:02d}.{rng.choice(PREFERENCE_NAMES)}"
            return "add.preference", "PUT", f"/v1/preferences/{key}", {"value": f"{rng.choice(PREFERENCE_VALUES)} #{n}"}
        events = [
            {
                "session_id": f"load-c{client:02d}-s{n // 25}",
                "agent_id": "load-agent",
                "level": rng.choice(("info", "info", "warning", "error")),
                "content": rng.choice(LOG_LINES).format(n=rng.randrange(100_000)),
                "metadata": {"tool": rng.choice(LOG_TOOLS), "step": n},
            }
            for _ in range(rng.randint(1, 3))
        ]
        return "add.log", "POST", "/v1/logs", {"events": events}


def acks_of(op: str, path: str, body: dict[str, Any] | None, answer: dict[str, Any], status: int) -> list[Ack]:
    """What an acknowledged add must read back."""
    assert body is not None
    if op == "add.insight":
        # 200: merged into an existing near-duplicate, whose content is the older text
        return [Ack("insight", str(answer["id"]), body["content"] if status == 201 else None)]
    if op == "add.preference":
        return [Ack("preference", path.rsplit("/", 1)[1], str(body["value"]))]
    if op == "add.log":
        return [Ack("log", str(i), e["content"]) for i, e in zip(answer["ids"], body["events"], strict=True)]
    return []


def process_tree_rss(pid: int, *, proportional: bool = False) -> int:
    """Resident bytes of ``pid`` and all its descendants (0 once it is gone); ``proportional``: PSS,
    each shared page divided among the processes that map it (PostgreSQL's backends all map the
    shared buffers, so their RSS summed counts the buffers once per backend)."""

    def resident(p: psutil.Process) -> float:
        return float(p.memory_full_info().pss if proportional else p.memory_info().rss)

    return int(process_tree_sum(pid, resident))


async def _closed_loops(
    base_url: str,
    headers: dict[str, str],
    plan: LoadPlan,
    seconds: float,
    next_request: Callable[[random.Random, int, int], Request],
    rss_pid: int | None,
) -> Outcome:
    out = Outcome(seconds=seconds)
    limits = httpx.Limits(max_connections=plan.clients, max_keepalive_connections=plan.clients)
    started = time.monotonic()
    stop_at = started + seconds

    async def client_loop(client: int, http: httpx.AsyncClient) -> None:
        rng = random.Random(plan.seed * 1_000 + client)
        n = 0
        while time.monotonic() < stop_at:
            op, method, path, body = next_request(rng, client, n)
            n += 1
            t0 = time.perf_counter()
            try:
                r = await http.request(method, path, json=body, headers=headers)
                status = str(r.status_code)
                ok = 200 <= r.status_code < 300
                detail = "" if ok else r.text[:300]
            except httpx.TransportError as exc:
                status, ok, detail = f"transport:{type(exc).__name__}", False, str(exc)[:300]
            ms = (time.perf_counter() - t0) * 1000
            out.samples.append(Sample(op, status, ms, time.monotonic() - started))
            if not ok:
                if len(out.error_samples) < 20:
                    out.error_samples.append({"op": op, "path": path, "status": status, "detail": detail})
            elif op.startswith("add."):
                out.acks.extend(acks_of(op, path, body, r.json(), r.status_code))

    async def sample_rss() -> None:
        assert rss_pid is not None
        while True:
            out.rss.append((round(time.monotonic() - started, 2), process_tree_rss(rss_pid)))
            out.load_avg.append(round(psutil.getloadavg()[0], 2))
            if time.monotonic() >= stop_at:
                return
            await asyncio.sleep(min(plan.rss_every_s, max(0.0, stop_at - time.monotonic())))

    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as http:
        tasks: list[Awaitable[None]] = [client_loop(i, http) for i in range(plan.clients)]
        if rss_pid is not None:
            tasks.append(sample_rss())
        await asyncio.gather(*tasks)
    out.seconds = time.monotonic() - started
    return out


def _ok(s: Sample) -> bool:
    return s.status.isdigit() and 200 <= int(s.status) < 300


def _phase_figures(samples: Sequence[Sample], seconds: float) -> dict[str, Any]:
    """Throughput and latency per operation, over answers in a window of ``seconds``."""
    by_op: dict[str, list[float]] = defaultdict(list)
    for s in samples:
        by_op[s.op].append(s.ms)
        if "." in s.op:
            by_op[s.op.split(".", 1)[0]].append(s.ms)  # "search", "add": the totals
    ops = {
        op: {**stats(times), "per_s": round(len(times) / seconds, 2)}
        for op, times in sorted(by_op.items(), key=lambda kv: (kv[0].count("."), kv[0]))
    }
    return {
        "seconds": round(seconds, 1),
        "operations": len(samples),
        "per_s": round(len(samples) / seconds, 2),
        "latency": stats([s.ms for s in samples]),
        "ops": ops,
    }


def _rss_figures(rss: Sequence[tuple[float, int]], plan: LoadPlan) -> dict[str, Any]:
    def mean_between(lo: float, hi: float) -> float | None:
        values = [b for t, b in rss if lo <= t <= hi and b > 0]
        return sum(values) / len(values) if values else None

    end_t = rss[-1][0] if rss else 0.0
    after_warmup = mean_between(plan.warmup_s - plan.rss_window_s, plan.warmup_s)
    at_end = mean_between(end_t - plan.rss_window_s, end_t)
    mib = 1024 * 1024
    growth = None
    if after_warmup and at_end:
        growth = round((at_end - after_warmup) / after_warmup * 100, 2)
    return {
        "samples": len(rss),
        "window_s": plan.rss_window_s,
        "first_mib": round(rss[0][1] / mib, 1) if rss else None,
        "after_warmup_mib": round(after_warmup / mib, 1) if after_warmup else None,
        "end_mib": round(at_end / mib, 1) if at_end else None,
        "max_mib": round(max(b for _, b in rss) / mib, 1) if rss else None,
        "growth_after_warmup_pct": growth,
        "series_mib": [(t, round(b / mib, 1)) for t, b in rss],
    }


async def run_load(
    base_url: str, token: str, plan: LoadPlan, *, rss_pid: int | None
) -> tuple[dict[str, Any], list[Ack]]:
    """The ``/healthz`` peer, then the mixed phase; returns the figures and the acknowledged adds.

    ``rss_pid``: the serve process whose resident memory (with its children) is sampled.
    Latency and throughput count the answers after ``plan.warmup_s``; errors count them all.
    """
    headers = {"Authorization": f"Bearer {token}"}
    peer = await _closed_loops(
        base_url, {}, plan, plan.peer_s, lambda _rng, _c, _n: ("healthz", "GET", "/healthz", None), None
    )
    workload = Workload(plan)
    mixed = await _closed_loops(base_url, headers, plan, plan.duration_s, workload.next_request, rss_pid)

    measured = [s for s in mixed.samples if s.at >= plan.warmup_s and _ok(s)]
    figures = _phase_figures(measured, max(mixed.seconds - plan.warmup_s, 1e-9))
    peer_figures = _phase_figures([s for s in peer.samples if _ok(s)], peer.seconds)
    errors: dict[str, Counter[str]] = defaultdict(Counter)
    for s in [*peer.samples, *mixed.samples]:
        if not _ok(s):
            errors[s.op][s.status] += 1
    healthz = peer_figures["ops"].get("healthz", {})
    search = figures["ops"].get("search", {})
    doc = {
        "plan": {**plan.__dict__, "rss_window_s": plan.rss_window_s},
        "mixed": figures,
        "all_answers": len(mixed.samples),
        "warmup_answers": sum(1 for s in mixed.samples if s.at < plan.warmup_s),
        "errors": {op: dict(c) for op, c in errors.items()},
        "error_count": sum(sum(c.values()) for c in errors.values()),
        "error_samples": [*peer.error_samples, *mixed.error_samples],
        "peer_healthz": peer_figures,
        "ratios_to_healthz": {
            "ops_per_s": ratio(figures["per_s"], peer_figures["per_s"]),
            "search_p50": ratio(search.get("p50_ms"), healthz.get("p50_ms")),
            "search_p99": ratio(search.get("p99_ms"), healthz.get("p99_ms")),
            "all_p50": ratio(figures["latency"]["p50_ms"], healthz.get("p50_ms")),
        },
        "rss": _rss_figures(mixed.rss, plan) if rss_pid is not None else None,
        "load_avg_1min_during": {
            "min": min(mixed.load_avg, default=None),
            "mean": round(sum(mixed.load_avg) / len(mixed.load_avg), 2) if mixed.load_avg else None,
            "max": max(mixed.load_avg, default=None),
        },
        "acknowledged_adds": len(mixed.acks),
    }
    return doc, mixed.acks


async def verify_acks(base_url: str, token: str, acks: Sequence[Ack], *, concurrency: int = 8) -> list[str]:
    """Read every acknowledged add back; returns what is missing or different (empty: all there)."""
    latest: dict[tuple[str, str], Ack] = {}
    for ack in acks:
        latest[(ack.kind, ack.ref)] = ack  # a preference rewritten later must read its last value
    headers = {"Authorization": f"Bearer {token}"}
    problems: list[str] = []
    queue = list(latest.values())
    paths = {"insight": "/v1/insights/{}", "preference": "/v1/preferences/{}", "log": "/v1/logs/{}"}
    fields = {"insight": "content", "preference": "value", "log": "content"}

    async def reader(http: httpx.AsyncClient) -> None:
        while queue:
            ack = queue.pop()
            r = await http.get(paths[ack.kind].format(ack.ref), headers=headers)
            if r.status_code != 200:
                problems.append(f"{ack.kind} {ack.ref}: {r.status_code}")
            elif ack.expect is not None and r.json()[fields[ack.kind]] != ack.expect:
                problems.append(f"{ack.kind} {ack.ref}: reads {r.json()[fields[ack.kind]]!r}, not {ack.expect!r}")

    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        await asyncio.gather(*(reader(http) for _ in range(concurrency)))
    return problems


# --- the long run -----------------------------------------------------------------------------


def render(doc: dict[str, Any]) -> str:
    """The markdown section of one run (RESULTS.md, and printed)."""
    m, plan, mixed, peer = doc["machine"], doc["plan"], doc["mixed"], doc["peer_healthz"]
    rss, ratios = doc["rss"] or {}, doc["ratios_to_healthz"]
    lines = [
        f"### Load test — {doc['date']}",
        "",
        f"`{doc['command']}`: {plan['clients']} clients in closed loops for {plan['duration_s']:g} s "
        f"(first {plan['warmup_s']:g} s warm-up, not in the latencies) against {doc['rows_at_start']:,} insights; "
        f"peer: the same clients on `/healthz` for {plan['peer_s']:g} s just before. Machine: {m['cpu']}, "
        f"{m['cores']} cores, shared; load average at start {m['load_avg_at_start']}, at end {doc['load_avg_at_end']}, "
        f"1-minute load during the run {doc['load_avg_1min_during']}.",
        "",
    ]
    rows = [
        [op, d["n"], d["per_s"], d["p50_ms"], d["p95_ms"], d["p99_ms"]]
        for op, d in [("all", {**mixed["latency"], "per_s": mixed["per_s"]}), *mixed["ops"].items()]
    ]
    rows.append(["peer: /healthz", peer["latency"]["n"], peer["per_s"], *_p(peer["latency"])])
    lines += _table(["operation", "answers", "per s", "p50 ms", "p95 ms", "p99 ms"], rows)
    missing = doc["adds_missing"]
    readback = f"{len(missing)} missing or different" if missing else "all"
    errors = ", ".join(f"{op} {st}×{c}" for op, by in doc["errors"].items() for st, c in by.items()) or "none"
    lines += [
        f"Errors (any non-2xx or transport error, warm-up and peer included): **{doc['error_count']}** ({errors}). "
        f"Records acknowledged by the adds (insights, preference writes, log events): {doc['acknowledged_adds']:,}; "
        f"read back afterwards with the acknowledged content (a preference written again: its last value): "
        f"{readback}.",
        "",
        f"Resident memory of the serve process and its children: {rss.get('first_mib')} MiB at the start, "
        f"{rss.get('after_warmup_mib')} MiB after the warm-up, {rss.get('end_mib')} MiB at the end "
        f"(each a {rss.get('window_s')} s mean), max {rss.get('max_mib')} MiB: growth after the warm-up "
        f"**{rss.get('growth_after_warmup_pct')} %**. The embedded PostgreSQL (postmaster and backends, proportional "
        f"set size: shared buffers counted once; they fill as the table is read): {doc['database_pss_mib']} MiB.",
        "",
        f"Ratios to the `/healthz` peer: operations/s {ratios['ops_per_s']}, search p50 {ratios['search_p50']}, "
        f"search p99 {ratios['search_p99']}.",
        "",
    ]
    return "\n".join(lines)


def _p(d: dict[str, Any]) -> list[Any]:
    return [d["p50_ms"], d["p95_ms"], d["p99_ms"]]


def _database_pss(workdir: Path, when: str) -> dict[str, Any]:
    try:
        pid = int((workdir / "pg" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return {when: None}
    return {when: round(process_tree_rss(pid, proportional=True) / 1024 / 1024, 1)}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.context import open_context, reopen_context
    from benchmarks.service_cases import server_for
    from benchmarks.vector_cases import ensure_loaded

    sizes = Sizes("load", rows=args.rows, queries=0, ingest=0, quality_filler=0, concurrency_seconds=0)
    info = args.data_dir / "info.json" if args.data_dir else None
    if info is not None and info.exists():
        kept = json.loads(info.read_text())
        ctx = await reopen_context(sizes, Path(kept["workdir"]), kept["token"])
        print(f"[load] reusing the instance in {kept['workdir']}", flush=True)
    else:
        if args.data_dir:
            args.data_dir.mkdir(parents=True, exist_ok=True)
        ctx = await open_context(sizes, base=args.data_dir)
        print(f"[load] seeding {args.rows:,} rows …", flush=True)
        t0 = time.perf_counter()
        await ensure_loaded(ctx)
        print(f"[load] seeded in {time.perf_counter() - t0:.0f} s", flush=True)
        if info is not None:
            ctx.keep_workdir = True
            info.write_text(json.dumps({"workdir": str(ctx.workdir), "token": ctx.user_token}))
            info.chmod(0o600)
    plan = LoadPlan(
        duration_s=args.duration, clients=args.clients, warmup_s=args.warmup, peer_s=args.peer, rss_every_s=2.0
    )
    started = datetime.now(UTC)
    try:
        rows = int(await ctx.scalar("SELECT count(*) FROM insights"))
        base = await server_for(ctx)
        host = machine()
        db_before = _database_pss(ctx.workdir, "start")
        print(f"[load] {rows:,} insights; {plan.clients} clients for {plan.duration_s:g} s …", flush=True)
        doc, acks = await run_load(base, ctx.user_token, plan, rss_pid=ctx.server_pids[base])
        db_after = _database_pss(ctx.workdir, "end")
        missing = await verify_acks(base, ctx.user_token, acks)
    finally:
        await ctx.close()
    doc = {
        "schema": 1,
        "date": started.strftime("%Y-%m-%d"),
        "started_at": started.isoformat(timespec="seconds"),
        "command": "python -m benchmarks.load " + " ".join(sys.argv[1:]),
        "machine": host,
        "load_avg_at_end": [round(x, 2) for x in psutil.getloadavg()],
        "versions": library_versions(),
        "rows_at_start": rows,
        **doc,
        "adds_missing": missing[:50],
        "database_pss_mib": {**db_before, **db_after},
    }
    out_dir = args.out or RESULTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{doc['date']}-load.json"
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    text = render(doc)
    print(text, flush=True)
    if not args.no_results_md:
        write_section(args.results_md, "load", text)
    print(f"[load] wrote {path}", flush=True)
    return doc


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600, help="seconds of mixed load (default 600)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rows", type=int, default=100_000, help="insights seeded (ignored when reusing)")
    parser.add_argument("--warmup", type=float, default=60, help="seconds not measured at the start (default 60)")
    parser.add_argument("--peer", type=float, default=30, help="seconds of the /healthz peer (default 30)")
    parser.add_argument("--data-dir", type=Path, default=None, help="keep the seeded instance here and reuse it")
    parser.add_argument("--out", type=Path, default=None, help="folder for the JSON (default benchmarks/results)")
    parser.add_argument("--results-md", type=Path, default=Path(__file__).parent / "RESULTS.md")
    parser.add_argument("--no-results-md", action="store_true", help="write the JSON only")
    args = parser.parse_args(argv)
    if args.warmup >= args.duration:
        parser.error("--warmup must be shorter than --duration")
    return args


if __name__ == "__main__":
    doc = asyncio.run(main(parse_args()))
    sys.exit(1 if doc["error_count"] or doc["adds_missing"] else 0)
