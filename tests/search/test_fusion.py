"""Where hybrid counts a hit's keyword evidence (fusion.keyword_share), with the configured span.

The cosines are those the bundled model gives two questions of benchmarks/quality_sets.py."""

from __future__ import annotations

import numpy as np

from mosaic_memory.config import Settings
from mosaic_memory.search.fusion import keyword_share
from mosaic_memory.search.service import calibration_of


def test_a_row_the_model_finds_unrelated_gains_nothing_from_a_shared_word() -> None:
    cal = calibration_of(Settings())
    # "what does she do for a living?": the job row at 0.570, "the user lives in Lisbon" at 0.254
    # under the baseline 0.276 matches the one useful word
    job, lisbon = cal.keyword_shares([0.570, 0.254], baseline=0.276, top=0.570)
    assert (job, lisbon) == (1.0, 0.0)
    assert cal.score("hybrid", 0.254, 1.0, 0.276, lisbon) < 0.5 < cal.score("hybrid", 0.570, 0.0, 0.276, job)


def test_a_query_the_model_cannot_place_keeps_its_keyword_evidence_everywhere() -> None:
    cal = calibration_of(Settings())
    # "E4784": the best cosine 0.381 hardly stands out; the error's own row is at the baseline
    assert cal.keyword_shares([0.381, 0.269], baseline=0.271, top=0.381) == [1.0, 1.0]


def test_a_hit_without_a_vector_keeps_its_keyword_evidence() -> None:
    cal = calibration_of(Settings())
    assert cal.keyword_shares([0.254, None], baseline=0.276, top=0.570) == [0.0, 1.0]
    assert cal.keyword_shares([None], baseline=0.1, top=None) == [1.0]
    # the array form --fit ranks with: a NaN gap is a hit without a vector
    shares = keyword_share([-0.022, np.nan], 0.294, cal.keyword_gate, cal.keyword_unsure)
    assert shares.tolist() == [0.0, 1.0]
