"""Smoke test of the benchmark harness: a tiny run, then the shape of what it wrote (never a timing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.report import write_results_md

ROOT = Path(__file__).resolve().parents[2]


def _is_ms(value: Any) -> bool:
    return isinstance(value, int | float) and value >= 0


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "MOSAIC_CONFIG_FILE": ""}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "run",
            "--size",
            "2k",
            "--cases",
            "a,f",
            "--out",
            str(out),
            "--no-results-md",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    files = list(out.glob("*-2k.json"))
    assert len(files) == 1, files
    doc: dict[str, Any] = json.loads(files[0].read_text())
    return doc


@pytest.mark.slow
def test_tiny_run_writes_the_expected_document(tiny_run: dict[str, Any]) -> None:
    doc = tiny_run
    assert doc["size"] == "2k"
    assert {"cpu", "cores", "memory_gib"} <= doc["machine"].keys()
    assert doc["versions"]["postgresql"] and doc["versions"]["pgvector_extension"] and doc["versions"]["python"]
    assert set(doc["cases"]) == {"a", "f"}

    a = doc["cases"]["a"]
    assert a["status"] == "ok", a
    ours = a["data"]["ours"]
    assert _is_ms(ours["p50_ms"]) and _is_ms(ours["p95_ms"]) and 0 <= ours["recall_at_10"] <= 1
    assert ours["n"] == doc["sizes"]["queries"]
    peers = a["data"]["peers"]
    assert {"numpy_exact", "pgvector_sql_only", "hnswlib", "chroma"} <= peers.keys()
    for name, peer in peers.items():
        # a peer library that is not installed is skipped, saying why; one that ran has figures
        if peer.get("skipped"):
            assert peer["reason"], name
        else:
            assert _is_ms(peer["p95_ms"]) and 0 <= peer["recall_at_10"] <= 1, name
    assert peers["numpy_exact"]["recall_at_10"] == 1.0

    f = doc["cases"]["f"]
    assert f["status"] == "ok", f
    table = f["data"]["selectivity"]
    assert list(table) == ["100%", "10%", "1%", "0.1%"]
    for label, row in table.items():
        for mode in ("ours", "hnsw_iterative", "hnsw_no_iterative", "exact_scan"):
            assert _is_ms(row[mode]["p95_ms"]) and 0 <= row[mode]["recall_at_10"] <= 1, (label, mode)
        # the service's own path returns k whenever k rows match (min(k, scope) here)
        assert row["ours"]["returns_k"] is True, (label, row["ours"])
        assert row["exact_scan"]["recall_at_10"] == 1.0, label
    assert "crossover_rows" in f["data"]["threshold_analysis"]


@pytest.mark.slow
def test_results_md_tables_are_regenerated_between_markers_keeping_prose(
    tiny_run: dict[str, Any], tmp_path: Path
) -> None:
    md = tmp_path / "RESULTS.md"
    md.write_text(
        "# Results\n\nHand-written prose.\n\n<!-- bench:2k:begin -->\nold table\n<!-- bench:2k:end -->\n\nMore prose.\n"
    )
    write_results_md(tiny_run, md)
    text = md.read_text()
    assert "Hand-written prose." in text and "More prose." in text
    assert "old table" not in text
    assert text.count("<!-- bench:2k:begin -->") == 1
    assert "**a. Vector search**" in text and "**f. Scoped search**" in text
    assert "| target |" in text
