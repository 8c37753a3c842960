"""The export record format: version, kinds, header, vector encoding, JSON Lines reading and writing."""

from __future__ import annotations

FORMAT_NAME = "mosaic-memory-export"
FORMAT_VERSION = 1
# Export order: logs before insights so insight source links refer to logs already imported.
KINDS: tuple[str, ...] = ("logs", "insights", "preferences", "skills")
