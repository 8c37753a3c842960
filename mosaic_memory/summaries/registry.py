"""Summarizers by name (``jobs.summarizer``); an unknown name lists the known ones."""

from __future__ import annotations

from collections.abc import Callable

from mosaic_memory.config import Settings
from mosaic_memory.errors import ConfigurationError
from mosaic_memory.summaries.llm import LLMSummarizer
from mosaic_memory.summaries.summarizers import ExtractiveSummarizer, Summarizer

__all__ = ["SUMMARIZERS", "build_summarizer"]

SUMMARIZERS: dict[str, Callable[[Settings], Summarizer]] = {
    "extractive": lambda s: ExtractiveSummarizer(
        max_lines=s.jobs.max_lines_per_insight, max_logs=s.jobs.max_logs_per_insight
    ),
    "llm": lambda s: LLMSummarizer(s.jobs.llm, max_logs=s.jobs.max_logs_per_insight),
}


def build_summarizer(settings: Settings) -> Summarizer:
    """A fresh summarizer for one run (an LLM summarizer's budget counts per instance)."""
    factory = SUMMARIZERS.get(settings.jobs.summarizer)
    if factory is None:
        raise ConfigurationError(f"unknown summarizer {settings.jobs.summarizer!r}; known: {', '.join(SUMMARIZERS)}")
    return factory(settings)
