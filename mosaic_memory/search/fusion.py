"""Relevance scores and hybrid fusion: calibrated signals instead of ranks.

Each signal has its own scale: cosine similarity of the embedding model (about 0.1 for unrelated
short texts and 0.4–0.8 for a paraphrase with all-MiniLM-L6-v2), and the keyword side's
IDF-weighted coverage in 0..1 (``SearchRepository.keyword``). A logistic map of the signals a
mode has, fitted on every quality set together (``python -m benchmarks.quality_eval --fit``),
turns them into one relevance score in 0..1 whose midpoint 0.5 is where a hit is as likely
relevant as not. Hybrid uses both signals in one map, so a strong semantic match is never
outvoted by a weak keyword match on a common word (as reciprocal-rank fusion did: rank 1 in a
list counts the same however weak the match), and a score means the same in every mode and for
every query: callers can cut at ``search.relevance_cut`` and merge hits of several searches
(federation) by score.

In hybrid a hit's keyword evidence counts in full only where the semantic side cannot already
tell: for a row whose cosine stands above the query's baseline (a keyword match then separates
near neighbours: Maya's sister from Tom's), or for a query whose best cosine hardly stands out
(an error code or an order id, which the model reads as noise). A row the model finds no closer
than a typical candidate, for a query it does understand, gains nothing from sharing a word with
it: "what does she do for a living?" no longer ranks "the user lives in Lisbon" first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mosaic_memory.search.repository import Row

__all__ = ["Calibration", "Fused", "baseline_of", "fuse", "fuse_rrf", "keyword_share", "sigmoid"]

Key = tuple[str, object]
FloatArray = NDArray[np.float64]


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _ramp(x: ArrayLike, span: tuple[float, float]) -> FloatArray:
    """0 up to ``span[0]``, 1 from ``span[1]``, linear between."""
    lo, hi = span
    return np.clip((np.asarray(x, dtype=np.float64) - lo) / max(hi - lo, 1e-9), 0.0, 1.0)


def keyword_share(
    gap: ArrayLike, spread: float | None, gate: tuple[float, float], unsure: tuple[float, float]
) -> FloatArray:
    """How much of a hybrid hit's keyword evidence counts, 0..1, per hit of one query.

    ``gap``: each hit's cosine above the query's baseline; ``spread``: the best cosine's.
    Full for a hit standing ``gate[1]`` above the baseline (none up to ``gate[0]``), and full for
    every hit of a query whose best cosine stands less than ``unsure[0]`` above it (none from
    ``unsure[1]``). A hit without a cosine (gap NaN: no vector yet) and every hit of a query
    without semantic candidates (spread None) keep their keyword evidence: they have nothing to
    weigh the match against. Arrays in, arrays out: ``python -m benchmarks.quality_eval --fit``
    ranks with it, so the ranking it fits is the one search serves.
    """
    gaps = np.asarray(gap, dtype=np.float64)
    if spread is None:
        return np.ones_like(gaps)
    share = np.maximum(_ramp(gaps, gate), 1.0 - _ramp(spread, unsure))
    return np.where(np.isnan(gaps), 1.0, share)


@dataclass(frozen=True)
class Calibration:
    """Logistic maps from the raw signals to relevance: weights, then the bias.

    ``semantic``: (cosine, cosine above the query's baseline, bias); ``keyword``: (coverage,
    bias); ``hybrid``: (cosine, above baseline, coverage, bias); the coverage raised to
    ``keyword_power`` first. The baseline is the mean cosine
    of the query's semantic candidates: how far a hit stands out from the rest of the caller's
    rows says more about relevance than its cosine alone (distribution-based fusion), and it
    lets a small store answer "nothing relevant" when every row is about equally far.
    ``baseline_prior`` stands in for the candidates a small scope lacks (``baseline_of``).
    ``keyword_gate`` and ``keyword_unsure``: where hybrid counts the keyword evidence
    (``keyword_share``).
    """

    semantic: tuple[float, float, float]
    keyword: tuple[float, float]
    hybrid: tuple[float, float, float, float]
    keyword_power: float  # the coverage enters as coverage ** keyword_power
    baseline_prior: float
    keyword_gate: tuple[float, float]
    keyword_unsure: tuple[float, float]

    def score(
        self, mode: str, semantic: float | None, keyword: float | None, baseline: float, share: float = 1.0
    ) -> float:
        """Relevance in [0, 1] for a hit with these raw signals (a missing signal counts as 0).

        ``share``: how much of the keyword evidence hybrid counts (``keyword_shares``)."""
        cos, cov = semantic or 0.0, (keyword or 0.0) ** self.keyword_power
        gap = cos - baseline if semantic is not None else 0.0
        if mode == "semantic":
            a, g, c = self.semantic
            return sigmoid(a * cos + g * gap + c)
        if mode == "keyword":
            b, c = self.keyword
            return sigmoid(b * cov + c)
        a, g, b, c = self.hybrid
        return sigmoid(a * cos + g * gap + b * cov * share + c)

    def keyword_shares(self, cosines: Sequence[float | None], baseline: float, top: float | None) -> list[float]:
        """``keyword_share`` of each of a query's hybrid hits: ``cosines`` None for a hit without a
        vector, ``top`` the query's best cosine (None: no semantic candidates)."""
        gaps = [np.nan if c is None else c - baseline for c in cosines]
        spread = None if top is None else top - baseline
        return [float(v) for v in keyword_share(gaps, spread, self.keyword_gate, self.keyword_unsure)]


@dataclass
class Fused:
    row: Row
    score: float
    signals: dict[str, float]


def baseline_of(cosines: Sequence[float], *, candidates: int = 0, prior: float = 0.0) -> float:
    """The mean cosine of the query's semantic candidates, ``candidates`` of them at least.

    A scope holding fewer rows than the search asks for has the missing ones counted at
    ``prior``, the cosine of a typical unrelated row. Without it a store of four rows had a
    baseline of four, and the nearest row stood out from three unrelated ones far enough to
    score as relevant to any question (the airline asked of a store about themes, deploys, a
    cat and databases). A scope with ``candidates`` rows or more is unchanged.
    """
    missing = max(0, candidates - len(cosines))
    total = float(np.sum(cosines)) + missing * prior
    count = len(cosines) + missing
    return total / count if count else 0.0


def fuse(
    mode: str,
    semantic: Sequence[Row],
    keyword: Sequence[Row],
    calibration: Calibration,
    query_vector: np.ndarray | None = None,
    *,
    candidates: int = 0,
) -> list[Fused]:
    """Every row of either list once, scored by ``calibration`` for ``mode``, best first.

    ``candidates``: how many semantic candidates the search asked for (``baseline_of``).

    A row only the keyword side found gets its cosine from its embedding when the row carries one
    and ``query_vector`` is given; a row only the semantic side found has keyword coverage 0 (the
    keyword side returns every row matching a useful word, up to its limit).
    """
    # One entry per row: the row as its first list has it, and its signals. Keyed by the id's
    # integer: hashing a UUID is a Python call, and the two dicts this was hashed each key four times.
    merged: dict[Key, tuple[Row, dict[str, float]]] = {}
    for name, ranked in (("semantic", semantic), ("keyword", keyword)):
        for r in ranked:
            key: Key = (r.kind, r.id.int)
            entry = merged.get(key)
            if entry is None:
                merged[key] = (r, {name: r.score})
            else:
                entry[1][name] = r.score
    baseline = baseline_of([r.score for r in semantic], candidates=candidates, prior=calibration.baseline_prior)
    hybrid = mode == "hybrid"
    if hybrid and query_vector is not None:
        qv = np.asarray(query_vector, dtype=np.float32)
        qv = qv / (float(np.linalg.norm(qv)) or 1.0)
        for row, sig in merged.values():
            emb = row.embedding
            if "semantic" not in sig and emb is not None:
                # np.linalg.norm's own arithmetic (the same float) without its checks, a row at a time
                # as before: one matrix product for all rows may round the last bit differently
                sig["semantic"] = float(np.dot(emb, qv) / (float(np.sqrt(emb.dot(emb))) or 1.0))
    entries = list(merged.values())
    if hybrid:
        top = max((r.score for r in semantic), default=None)
        shares = calibration.keyword_shares([sig.get("semantic") for _, sig in entries], baseline, top)
    else:
        shares = [1.0] * len(entries)
    score = calibration.score
    out = [
        Fused(row, score(mode, sig.get("semantic"), sig.get("keyword"), baseline, share), _rounded(sig))
        for (row, sig), share in zip(entries, shares, strict=True)
    ]
    out.sort(key=lambda f: f.score, reverse=True)
    return out


def _rounded(signals: dict[str, float]) -> dict[str, float]:
    return {name: round(v, 6) for name, v in signals.items()}


def fuse_rrf(lists: Sequence[Sequence[Row]], k: int, weights: Sequence[float] | None = None) -> list[tuple[Row, float]]:
    """Weighted reciprocal-rank fusion, normalised so rank 1 in every list scores 1.0.

    No longer the search's fusion (ranks drop how much better a match is); kept for callers
    that only have ranks."""
    weights = weights or [1.0] * len(lists)
    scores: dict[Key, float] = {}
    rows: dict[Key, Row] = {}
    for ranked, weight in zip(lists, weights, strict=True):
        for rank, row in enumerate(ranked, start=1):
            key: Key = (row.kind, row.id)
            scores[key] = scores.get(key, 0.0) + weight / (k + rank)
            rows.setdefault(key, row)
    best = sum(weights) / (k + 1)
    fused = [(rows[key], score / best) for key, score in scores.items()]
    fused.sort(key=lambda pair: pair[1], reverse=True)
    return fused
