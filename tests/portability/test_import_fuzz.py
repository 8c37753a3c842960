"""Hypothesis over the import file format: a real export, mutated (fields set to any JSON value or
removed, lines replaced by any bytes, cut short or repeated), sent to ``POST /v1/import`` over
real HTTP. Never a 5xx; a refused file stores nothing; an accepted one stores exactly the rows its
report counts as added (a failed line stores nothing)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ADMIN_KEY, auth

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def new_user(http: httpx.Client) -> tuple[str, dict[str, str]]:
    name = f"fuzzimport-{uuid.uuid4().hex[:8]}"
    r = http.post("/v1/admin/users", json={"name": name}, headers=auth(ADMIN_KEY))
    assert r.status_code == 201, r.text
    return f"user:{name}", auth(r.json()["api_key"])


def records(http: httpx.Client, headers: dict[str, str]) -> list[bytes]:
    r = http.get("/v1/export", headers=headers)
    assert r.status_code == 200, r.text
    return [line + b"\n" for line in r.content.splitlines()]


def stored(http: httpx.Client, headers: dict[str, str]) -> int:
    """Rows of the key's user: the record lines of its export (no header, no end record)."""
    return sum(1 for line in records(http, headers) if json.loads(line)["type"] not in ("header", "end"))


@pytest.fixture(scope="module")
def source(cli_url: str) -> tuple[str, list[bytes]]:
    """An export of a user holding one row of each kind."""
    with httpx.Client(base_url=cli_url, timeout=120) as http:
        _, headers = new_user(http)
        for path, body in (
            ("/v1/insights", {"content": "the staging database is rebuilt every Monday", "tags": ["ops"]}),
            ("/v1/logs", {"events": [{"session_id": "s1", "content": "ran the migrations on staging"}]}),
            ("/v1/skills", {"name": "rebuild-staging", "description": "rebuild the staging database"}),
        ):
            r = http.post(path, json=body, headers=headers)
            assert r.status_code in (200, 201), r.text
        r = http.put("/v1/preferences/editor.theme", json={"value": "dark"}, headers=headers)
        assert r.status_code in (200, 201), r.text
        lines = records(http, headers)
    assert len(lines) >= 6  # header, four rows (and a preference's history), end
    return cli_url, lines


def mutate(data: st.DataObject, lines: list[bytes]) -> list[bytes]:
    out = list(lines)
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(out) - 1))
        how = data.draw(st.sampled_from(["set", "drop", "bytes", "cut", "repeat"]))
        try:
            record: Any = json.loads(out[i])
        except ValueError:
            record = None
        if how in ("set", "drop") and isinstance(record, dict) and record:
            key = data.draw(st.sampled_from(sorted(record)) | st.text(max_size=8))
            if how == "set":
                record[key] = data.draw(JSON_VALUES)
            else:
                record.pop(key, None)
            out[i] = json.dumps(record, allow_nan=True).encode() + b"\n"
        elif how == "bytes":
            out[i] = data.draw(st.binary(max_size=60)) + b"\n"
        elif how == "cut":
            out[i] = out[i][: data.draw(st.integers(0, len(out[i])))]
        else:
            out.insert(i, out[i])
    return out


@settings(max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_mutated_export_never_errors_and_stores_only_what_it_reports(
    source: tuple[str, list[bytes]], data: st.DataObject
) -> None:
    url, lines = source
    body = b"".join(mutate(data, lines))
    with httpx.Client(base_url=url, timeout=120) as http:
        owner, headers = new_user(http)
        r = http.post(
            "/v1/import",
            params={"as": owner},
            content=body,
            headers={**headers, "Content-Type": "application/x-ndjson"},
        )
        assert r.status_code < 500, r.text
        after = stored(http, headers)
        if r.status_code != 200:
            assert r.json()["error"], r.text  # a machine-readable refusal
            assert after == 0, "a refused file stored rows"
            return
        report = r.json()
        added = sum(kind["added"] for kind in report["counts"].values())
        assert after == added, report


def test_the_unmutated_export_adds_every_row(source: tuple[str, list[bytes]]) -> None:
    """The baseline of the property above: with nothing mutated, every row is added and counted."""
    url, lines = source
    with httpx.Client(base_url=url, timeout=120) as http:
        owner, headers = new_user(http)
        r = http.post(
            "/v1/import",
            params={"as": owner},
            content=b"".join(lines),
            headers={**headers, "Content-Type": "application/x-ndjson"},
        )
        assert r.status_code == 200, r.text
        report = r.json()
        assert not report["errors"] and report["complete"]
        assert stored(http, headers) == sum(kind["added"] for kind in report["counts"].values()) == len(lines) - 2


def test_an_export_filter_the_database_cannot_match_is_refused_before_the_stream(cli_url: str) -> None:
    """Found by the fuzzing: a NUL in ``tags`` reached the query after the 200 had been sent."""
    r = httpx.get(f"{cli_url}/v1/export", params={"tags": "ops\x00x"}, headers=auth(ADMIN_KEY), timeout=60)
    assert r.status_code == 422 and r.json()["error"] == "InvalidInput", r.text
