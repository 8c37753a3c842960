"""Context at session start: the packed block of memory (``service``), its route, and the marker
lines that enclose it (``markers``: light, for whatever captures sessions)."""

from mosaic_memory.context.markers import CONTEXT_CLOSE, CONTEXT_OPEN, strip_injected

__all__ = ["CONTEXT_CLOSE", "CONTEXT_OPEN", "strip_injected"]
