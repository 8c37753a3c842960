"""Response bodies for export/import."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

REPORT_EXAMPLE: dict[str, Any] = {
    "dry_run": False,
    "origin": "laptop",
    "format_version": 1,
    "reembed_reason": "the file has no vectors",
    "counts": {
        "logs": {"added": 120, "merged": 0, "duplicate": 0, "conflict": 0, "failed": 0},
        "insights": {"added": 41, "merged": 2, "duplicate": 5, "conflict": 0, "failed": 1},
        "preferences": {"added": 9, "merged": 1, "duplicate": 3, "conflict": 1, "failed": 0},
        "skills": {"added": 2, "merged": 0, "duplicate": 0, "conflict": 0, "failed": 0},
    },
    "errors": [{"line": 57, "kind": "insights", "reason": "id: Input should be a valid UUID"}],
    "errors_truncated": False,
    "warnings": [],
    "lines": 187,
    "records_seen": 185,
    "complete": True,
    "secrets_redacted": 0,
}


class KindCountsOut(BaseModel):
    added: int = Field(description="new rows, under their original id where it was free")
    merged: int = Field(description="folded into an existing row (near-duplicate insight, newer value)")
    duplicate: int = Field(description="already here (same content hash, or same id and content): nothing written")
    conflict: int = Field(description="the existing row holds a different, newer value, which is kept")
    failed: int = Field(description="not imported; see errors")


class LineErrorOut(BaseModel):
    line: int
    kind: str | None
    reason: str


class ImportReportOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [REPORT_EXAMPLE]})

    dry_run: bool
    origin: str | None = Field(description="the instance the records came from (stamped as metadata.origin)")
    format_version: int | None
    reembed_reason: str | None = Field(description="why vectors were computed here rather than taken from the file")
    counts: dict[str, KindCountsOut]
    errors: list[LineErrorOut] = Field(description="failed lines with their number and reason (at most 1,000)")
    errors_truncated: bool
    warnings: list[str]
    lines: int
    records_seen: int
    complete: bool = Field(description="the end record was seen (a file cut at a line boundary lacks it)")
    secrets_redacted: int = Field(
        default=0, description="credentials in imported text, stored as [REDACTED:<kind>] (MOSAIC_SECRETS__MODE)"
    )
