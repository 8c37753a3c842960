"""The export record format: version, kinds, records, vector encoding, JSON Lines in and out.

One JSON object per line. The first line is the header (``type: "header"``); each further line
is one record whose ``type`` names its kind: ``log``, ``insight``, ``preference``,
``preference_change``, ``skill``. Times are ISO 8601 with offset; ids are UUIDs; a vector, when
exported, is base64 of little-endian float32 (exact, a third the size of a JSON float list).
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Annotated, Any, Literal, cast

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from mosaic_memory.common.pgvector_binary import from_vector_send
from mosaic_memory.errors import InvalidInput

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "KINDS",
    "MAX_LINE_BYTES",
    "BadRecord",
    "EndRecord",
    "Header",
    "Record",
    "UnsupportedFormat",
    "decode_vector",
    "dump_line",
    "encode_vector",
    "kind_of",
    "open_for_read",
    "open_for_write",
    "parse_header",
    "parse_owner_map",
    "parse_record",
    "split_lines",
]

FORMAT_NAME = "mosaic-memory-export"
FORMAT_VERSION = 1
# Export order: logs before insights, so an insight's source links name logs already imported,
# and preferences before their changes, so a change can follow its preference's id.
KINDS: tuple[str, ...] = ("logs", "insights", "preferences", "skills")
TYPE_KIND = {
    "log": "logs",
    "insight": "insights",
    "preference": "preferences",
    "preference_change": "preferences",
    "skill": "skills",
}
MAX_LINE_BYTES = 16 * 1024 * 1024
_OWNER_LABEL = re.compile(r"^(user|team):\S+$")
TOO_LONG = b"\x00line too long"  # stands in for a line past MAX_LINE_BYTES; fails to parse


class UnsupportedFormat(InvalidInput):
    """The file is not an export this version can read (no header, another format, a newer version)."""


def parse_owner_map(pairs: Sequence[str]) -> dict[str, str]:
    """``["user:alice=user:alice2"]`` → ``{"user:alice": "user:alice2"}``; InvalidInput names a bad pair."""
    out: dict[str, str] = {}
    for pair in pairs:
        source, sep, target = (part.strip() for part in pair.partition("="))
        if not sep or not all(_OWNER_LABEL.match(x) for x in (source, target)):
            raise InvalidInput(f"owner mapping {pair!r} must look like 'user:NAME=user:OTHER' (or team:NAME)")
        out[source] = target
    return out


def kind_of(record_type: str) -> str:
    return TYPE_KIND[record_type]


def check_kinds(kinds: Any) -> tuple[str, ...]:
    """``kinds`` as a tuple in export order; InvalidInput names the known ones."""
    if kinds is None:
        return KINDS
    wanted = {k.strip() for k in kinds if k.strip()}
    unknown = sorted(wanted - set(KINDS))
    if unknown:
        raise InvalidInput(f"unknown kinds {unknown}; known: {list(KINDS)}")
    return tuple(k for k in KINDS if k in wanted)


def encode_vector(vector: Any) -> str:
    """Base64 of little-endian float32s, from an array or from pgvector's binary form (``bytes``
    as ``vector_send`` gives it: two big-endian int16s, dimension and zero, then big-endian float4s)."""
    if isinstance(vector, bytes | memoryview):
        return base64.b64encode(from_vector_send(vector).astype("<f4").tobytes()).decode()
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()


def decode_vector(text: str) -> np.ndarray:
    """Raises ValueError for anything but base64 of float32s."""
    raw = base64.b64decode(text, validate=True)
    if len(raw) % 4:
        raise ValueError("a vector is base64 of float32s; the length is not a multiple of 4")
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def dump_line(record: dict[str, Any]) -> bytes:
    return json.dumps(record, default=_json_default, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


# records ------------------------------------------------------------------------------------
class _Rec(BaseModel):
    model_config = ConfigDict(extra="ignore")  # a newer minor writer may add fields; they are ignored

    owner: str = Field(min_length=3)
    id: uuid.UUID
    embedding_model: str | None = None
    vector: str | None = None


class EmbedInfo(BaseModel):
    model: str | None = None
    dimensions: int | None = None


class Header(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["header"]
    format: str
    version: int
    instance: str
    exported_at: datetime
    embedding: EmbedInfo = Field(default_factory=EmbedInfo)
    with_vectors: bool = False
    kinds: list[str] = Field(default_factory=lambda: list(KINDS))
    owners: list[str] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)


class LogRecord(_Rec):
    type: Literal["log"]
    session_id: str | None = None
    agent_id: str | None = None
    level: str = "info"
    content: str = Field(min_length=1)
    metadata: dict[str, Any] = Field(default_factory=dict)
    occurred_at: datetime
    created_at: datetime
    tier: Literal["hot", "warm", "cold"] = "hot"
    tier_changed_at: datetime | None = None
    summarized_at: datetime | None = None


class InsightRecord(_Rec):
    type: Literal["insight"]
    content: str = Field(min_length=1)
    category: str | None = None
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    importance: float = Field(default=0.5, ge=0.0, le=1.0)
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)
    pinned: bool = False
    valid_from: datetime
    valid_to: datetime | None = None
    superseded_by: uuid.UUID | None = None
    expires_at: datetime | None = None
    access_count: int = 0
    last_accessed_at: datetime | None = None
    source_type: str = "import"
    source_ref: str | None = None
    sources: list[uuid.UUID] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


class PreferenceRecord(_Rec):
    type: Literal["preference"]
    key: str = Field(min_length=1, max_length=256)
    scope: str = Field(default="", max_length=256)
    value: Any
    mutable: bool = True
    source: str = "user"
    created_at: datetime
    updated_at: datetime


class PreferenceChangeRecord(_Rec):
    type: Literal["preference_change"]
    preference_id: uuid.UUID
    key: str = Field(min_length=1, max_length=256)
    scope: str = Field(default="", max_length=256)
    old_value: Any = None
    new_value: Any = None
    action: str
    changed_by: str | None = None
    source: str = "user"
    changed_at: datetime


class SkillRecord(_Rec):
    type: Literal["skill"]
    name: str = Field(min_length=1, max_length=256)
    description: str
    instructions: str = ""
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime


class EndRecord(BaseModel):
    """The last line: how many records precede it (a file cut at a line boundary lacks it)."""

    type: Literal["end"]
    records: int


Record = LogRecord | InsightRecord | PreferenceRecord | PreferenceChangeRecord | SkillRecord
_ANY = Record | EndRecord
_RECORD = TypeAdapter[_ANY](Annotated[_ANY, Field(discriminator="type")])


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    # The first element of a discriminated union's location is the tag ("insight"): leave it out.
    where = ".".join(str(p) for p in err["loc"][1:])
    return f"{where}: {err['msg']}" if where else str(err["msg"])


def _load(line: bytes | str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(line, dict):
        return line
    if line == TOO_LONG:
        raise ValueError(f"the line is longer than {MAX_LINE_BYTES // (1024 * 1024)} MiB")
    try:
        data = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else exc.reason
        raise ValueError(f"not valid JSON ({reason})") from None
    if not isinstance(data, dict):
        raise ValueError("a record is a JSON object")
    return data


def parse_header(line: bytes | str | dict[str, Any]) -> Header:
    """Raises UnsupportedFormat when ``line`` is not a header this version can read."""
    try:
        data = _load(line)
    except ValueError as exc:
        raise UnsupportedFormat(f"line 1 is not an export header: {exc}") from None
    if data.get("type") != "header" or data.get("format") != FORMAT_NAME:
        raise UnsupportedFormat(
            f"line 1 is not a {FORMAT_NAME} header; a file made by 'mosaic-memory export' starts with one"
        )
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise UnsupportedFormat("the header has no integer format version")
    if version > FORMAT_VERSION:
        raise UnsupportedFormat(
            f"the file is format version {version}, newer than this Mosaic Memory reads ({FORMAT_VERSION}); "
            "upgrade Mosaic Memory to import it"
        )
    try:
        return Header.model_validate(data)
    except ValidationError as exc:
        raise UnsupportedFormat(f"the header is malformed: {_first_error(exc)}") from None


class BadRecord(ValueError):
    """A line that is not a valid record; ``kind`` is its kind when the line says it."""

    def __init__(self, reason: str, kind: str | None = None) -> None:
        super().__init__(reason)
        self.kind = kind


def parse_record(line: bytes | str | dict[str, Any]) -> Record | EndRecord:
    """Raises BadRecord with a one-line reason for a malformed record."""
    try:
        data = _load(line)
    except ValueError as exc:
        raise BadRecord(str(exc)) from None
    kind = data.get("type")
    if not isinstance(kind, str) or (kind not in TYPE_KIND and kind != "end"):  # a list is unhashable
        raise BadRecord(f"unknown record type {kind!r}; known: {sorted(TYPE_KIND)}")
    try:
        return _RECORD.validate_python(data)
    except ValidationError as exc:
        raise BadRecord(_first_error(exc), TYPE_KIND.get(str(kind))) from None


async def split_lines(chunks: AsyncIterable[bytes | str | dict[str, Any]]) -> AsyncIterator[bytes | dict[str, Any]]:
    """Lines of an NDJSON byte stream cut anywhere (HTTP bodies), without their newline.

    Dicts pass through as they are. A last line without a newline (a truncated file) is
    yielded too, so it is reported rather than silently dropped. A line longer than
    :data:`MAX_LINE_BYTES` is dropped and stands as a marker that fails to parse with that reason.
    """
    buffer = b""
    for_skipping = False
    async for chunk in chunks:
        if isinstance(chunk, dict):
            yield chunk
            continue
        data = chunk.encode() if isinstance(chunk, str) else chunk
        buffer += data
        while True:
            cut = buffer.find(b"\n")
            if cut < 0:
                break
            line, buffer = buffer[:cut], buffer[cut + 1 :]
            if for_skipping:
                for_skipping = False
                yield TOO_LONG
                continue
            yield line
        if len(buffer) > MAX_LINE_BYTES:
            buffer = b""
            for_skipping = True
    if for_skipping:
        yield TOO_LONG
    elif buffer:
        yield buffer


def open_for_write(path: Path) -> IO[bytes]:
    """A binary file for an export; gzip when the name ends in ``.gz``."""
    if path.name.endswith(".gz"):
        return cast(IO[bytes], gzip.open(path, "wb", compresslevel=6))
    return path.open("wb")


def open_for_read(path: Path) -> IO[bytes]:
    if path.name.endswith(".gz"):
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


def iter_file_chunks(handle: IO[bytes], size: int = 256 * 1024) -> Iterator[bytes]:
    while chunk := handle.read(size):
        yield chunk
