"""The OpenAPI document at /v1/openapi.json: every /v1 operation shows an example request and
response, each example is accepted by the pydantic model it illustrates, and errors are documented."""

from __future__ import annotations

import copy
import re
from typing import Any

import httpx
from pydantic import BaseModel, TypeAdapter

import mosaic_memory
from mosaic_memory.portability.format import EndRecord, parse_header, parse_record

JSON = "application/json"
NDJSON = "application/x-ndjson"  # export and import bodies: JSON Lines in the export format
ERROR_STATUSES = ("401", "403", "404", "422")


async def _doc(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/v1/openapi.json")
    assert response.status_code == 200
    doc: dict[str, Any] = response.json()
    return doc


def _operations(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", op)
        for path, ops in doc["paths"].items()
        if path.startswith("/v1/")
        for method, op in ops.items()
    ]


def _target(schema: dict[str, Any]) -> tuple[str | None, bool]:
    """The component a media type's schema names, and whether the body is a list of it."""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1], False
    if "$ref" in schema.get("items", {}):
        return schema["items"]["$ref"].rsplit("/", 1)[-1], True
    for option in schema.get("anyOf", []):
        if "$ref" in option:
            return option["$ref"].rsplit("/", 1)[-1], False
    return None, False


def _examples(content: dict[str, Any], components: dict[str, Any]) -> list[tuple[Any, str | None, bool]]:
    """Every example of a JSON body: (example, component it should match, whether it is a list of it).
    Examples on the media type come first, then the referenced component's own ``examples``.
    A JSON Lines body has its example on its own media type, checked by the export format's parser."""
    media = content.get(JSON)
    if media is None:
        lines = content.get(NDJSON, {})
        return [(lines["example"], None, False)] if "example" in lines else []
    name, is_list = _target(media.get("schema", {}))
    found = [(media["example"], name, is_list)] if "example" in media else []
    found += [(entry["value"], name, is_list) for entry in media.get("examples", {}).values()]
    if name is not None:
        found += [(example, name, False) for example in components.get(name, {}).get("examples", [])]
    return found


def undocumented(doc: dict[str, Any]) -> list[str]:
    """Request bodies and 2xx JSON responses of /v1 operations that carry no example."""
    components = doc["components"]["schemas"]
    missing = []
    for where, op in _operations(doc):
        body = op.get("requestBody")
        if body is not None and not _examples(body["content"], components):
            missing.append(f"{where} request")
        for status, response in op["responses"].items():
            content = response.get("content")
            if status.startswith("2") and content and not _examples(content, components):
                missing.append(f"{where} {status}")
    return missing


def _app_models() -> dict[str, type[BaseModel]]:
    """The project's pydantic models (generic parametrisations included) by OpenAPI component name."""
    models: dict[str, type[BaseModel]] = {}
    pending = list(BaseModel.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        # The job ledger's schemas live in the jobs package (jobs/ledger/schemas.py).
        if cls.__module__.startswith((mosaic_memory.__name__, "jobs.")):
            models[re.sub(r"[^a-zA-Z0-9.\-_]", "_", cls.__name__)] = cls
            models[re.sub(r"[^a-zA-Z0-9_]", "__", f"{cls.__module__}.{cls.__qualname__}")] = cls
    return models


async def test_every_v1_operation_has_example_request_and_response(http: httpx.AsyncClient) -> None:
    doc = await _doc(http)
    assert len(_operations(doc)) >= 30
    assert undocumented(doc) == []


async def test_json_lines_examples_are_valid_export_files(http: httpx.AsyncClient) -> None:
    doc = await _doc(http)
    bodies = [
        doc["paths"]["/v1/export"]["get"]["responses"]["200"]["content"][NDJSON]["example"],
        doc["paths"]["/v1/import"]["post"]["requestBody"]["content"][NDJSON]["example"],
    ]
    for body in bodies:
        first, *records, last = body.splitlines()
        assert parse_header(first).format == "mosaic-memory-export"
        assert records and all(parse_record(line) for line in records)
        assert parse_record(last) == EndRecord(type="end", records=len(records))


async def test_a_route_without_examples_is_reported(http: httpx.AsyncClient) -> None:
    doc = copy.deepcopy(await _doc(http))
    del doc["paths"]["/v1/me"]["get"]["responses"]["200"]["content"][JSON]["example"]
    del doc["components"]["schemas"]["InsightUpdate"]["examples"]
    del doc["components"]["schemas"]["KeyOut"]["examples"]
    doc["paths"]["/v1/admin/keys"]["get"]["responses"]["200"]["content"][JSON].pop("example")
    assert undocumented(doc) == [
        "GET /v1/admin/keys 200",
        "DELETE /v1/admin/keys/{prefix} 200",
        "GET /v1/me 200",
        "PATCH /v1/insights/{insight_id} request",
    ]


async def test_every_example_is_accepted_by_its_model(http: httpx.AsyncClient) -> None:
    doc = await _doc(http)
    components = doc["components"]["schemas"]
    models = _app_models()
    checked: set[str] = set()
    for name, schema in components.items():
        if "examples" in schema:
            assert name in models, f"component {name} has no pydantic model in mosaic_memory"
            for example in schema["examples"]:
                models[name].model_validate(example)
            for example in models[name].model_json_schema()["examples"]:  # as written, before serving
                models[name].model_validate(example)
            checked.add(name)
    for where, op in _operations(doc):
        bodies = [op["requestBody"]] if "requestBody" in op else []
        bodies += [r for status, r in op["responses"].items() if status.startswith("2")]
        for body in bodies:
            for example, name, is_list in _examples(body.get("content", {}), components):
                if name is None:
                    continue
                assert name in models, f"{where}: component {name} has no pydantic model in mosaic_memory"
                model = models[name]
                if is_list:
                    TypeAdapter(list[model]).validate_python(example)  # type: ignore[valid-type]
                else:
                    model.model_validate(example)
    assert {"InsightOut", "Page_InsightOut_", "SearchResponse", "KeyCreated", "JobRunOut", "RunRequest"} <= checked


async def test_page_examples_are_built_from_the_item_example(http: httpx.AsyncClient) -> None:
    components = (await _doc(http))["components"]["schemas"]
    pages = [name for name in components if name.startswith("Page_")]
    assert pages
    for name in pages:
        item = name.removeprefix("Page_").removesuffix("_")
        (example,) = components[name]["examples"]
        assert example["items"] == components[item]["examples"][:1], name
        assert example["next_cursor"]


async def test_every_v1_operation_documents_its_errors_as_json(http: httpx.AsyncClient) -> None:
    doc = await _doc(http)
    for where, op in _operations(doc):
        for status in ERROR_STATUSES:
            assert status in op["responses"], f"{where} does not document {status}"
            body = op["responses"][status]["content"][JSON]["example"]
            assert {"error", "detail"} <= body.keys(), (where, status)
    unauthenticated = await http.get("/v1/me")
    assert unauthenticated.status_code == 401
    documented = doc["paths"]["/v1/me"]["get"]["responses"]["401"]["content"][JSON]["example"]
    assert unauthenticated.json()["error"] == documented["error"]
