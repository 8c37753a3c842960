"""Schemathesis over the served OpenAPI document: every operation, positive and negative cases,
with an admin key and with a user key, against a real HTTP server on loopback. Every response
must be below 500 and conform to the document (status declared, body matching its schema,
content type, headers), with all of Schemathesis's checks (unauthenticated access included).

The size is ``MOSAIC_FUZZ_CASES`` (cases over all operations, both keys and both modes; default
a short run). The full run (docs/reliability.md)::

    MOSAIC_FUZZ_CASES=10000 MOSAIC_SKIP_LINT=1 scripts/test tests/api/test_fuzz.py -s
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import hypothesis
import hypothesis.errors
import psycopg
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase
from pydantic import SecretStr
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance
from sqlalchemy.engine import make_url

from mosaic_memory.api.app import create_app
from mosaic_memory.config import LogSettings, Settings
from mosaic_memory.container import AppState
from tests.conftest import ADMIN_KEY, auth, free_port, start_in_thread

DEFAULT_CASES = 300
# POST /v1/import takes its file as the request body (a binary string in the document).
schemathesis.serializer.alias("application/x-ndjson", "application/octet-stream")


# How closely the document describes the validators (a schema-valid request refused, a
# schema-violating one accepted) rather than how the server answers: counted and reported, not a
# failure (the validators are stricter than JSON Schema can say: an NDJSON file, an opaque cursor,
# "expires_at or ttl_seconds, not both", no NUL characters).
PRECISION = [positive_data_acceptance, negative_data_rejection]


@dataclass
class Findings:
    cases: int = 0
    failures: list[str] = field(default_factory=list)
    imprecise: Counter[str] = field(default_factory=Counter)


def fuzz_operation(
    operation: Any, base_url: str, headers: dict[str, str], mode: GenerationMode, examples: int, found: Findings
) -> None:
    """Up to ``examples`` generated cases of one operation, into ``found``. Failures are collected
    rather than raised, so the run goes on and nothing is shrunk."""

    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def one(case: Any) -> None:
        found.cases += 1
        transport = {"base_url": base_url, "headers": headers, "timeout": 60}
        try:
            response = case.call(base_url=base_url, headers=headers, timeout=60)
            case.validate_response(response, excluded_checks=PRECISION, transport_kwargs=transport)
        except (Exception, BaseExceptionGroup) as exc:  # every check failure is a finding: report them all
            found.failures.append(f"{operation.label} [{mode.value}]: {type(exc).__name__}: {str(exc)[:1500]}")
            return
        try:
            case.validate_response(response, checks=PRECISION, transport_kwargs=transport)
        except (Exception, BaseExceptionGroup):
            found.imprecise[operation.label] += 1

    try:
        one()
    except hypothesis.errors.Unsatisfiable:
        # Nothing to get wrong: an operation without parameters or body has no negative cases.
        assert mode is GenerationMode.NEGATIVE, operation.label


def new_user_key(base_url: str) -> str:
    r = httpx.post(
        f"{base_url}/v1/admin/users", json={"name": f"fuzz-{uuid.uuid4().hex[:8]}"}, headers=auth(ADMIN_KEY), timeout=60
    )
    assert r.status_code == 201, r.text
    return str(r.json()["api_key"])


@pytest.fixture(scope="module")
def fuzz_url(settings: Settings, state: AppState) -> Iterator[str]:
    """A real HTTP server on loopback (a thread of its own, like ``cli_url``) on a database of its
    own in the suite's embedded server (migrated by the app at start), so the users, teams and rows
    the fuzzing creates stay out of every other test's way. The failed-auth budget is off:
    Schemathesis sends wrong keys to every operation, and the 429 that budget answers after a burst
    (tests/api/test_auth_matrix.py) is not what its unauthenticated-access check expects."""
    database = f"fuzz_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(state.database.url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    own = settings.model_copy(
        update={
            "tier": "standalone",
            "database_url": SecretStr(make_url(state.database.url).set(database=database).render_as_string(False)),
            "logs": LogSettings(background_embedder=False),
            "limits": settings.limits.model_copy(update={"auth_failures_per_minute": 0}),
        }
    )
    server = uvicorn.Server(uvicorn.Config(create_app(own), host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = start_in_thread(server)
    yield f"http://127.0.0.1:{server.config.port}"
    server.should_exit = True
    thread.join(timeout=60)
    with psycopg.connect(state.database.url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{database}" WITH (FORCE)')


def test_every_operation_answers_within_its_schema(fuzz_url: str) -> None:
    total = int(os.environ.get("MOSAIC_FUZZ_CASES", DEFAULT_CASES))
    schema = schemathesis.openapi.from_url(f"{fuzz_url}/v1/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # every operation of the document could be read
        operations.append(result.ok())
    assert len(operations) > 40  # the whole document was read
    keys = {"admin": ADMIN_KEY, "user": new_user_key(fuzz_url)}
    per_run = max(1, total // (len(operations) * len(keys) * 2))
    found = Findings()
    for operation in operations:
        for key in keys.values():
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                fuzz_operation(operation, fuzz_url, auth(key), mode, per_run, found)
    failures = found.failures
    for failure in failures:
        print(f"\n{failure}")
    print(
        f"\nfuzz: {found.cases} cases over {len(operations)} operations, admin and user keys; "
        f"{len(failures)} failures; imprecise-document cases (reported, not failures): "
        f"{sum(found.imprecise.values())} {dict(found.imprecise.most_common())}"
    )
    assert not failures, "\n\n".join(failures[:20]) + f"\n\n({len(failures)} failures)"
