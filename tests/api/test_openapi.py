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


def _links(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], str, dict[str, Any]]]:
    """Every declared link: (source label, status, source operation, link name, link)."""
    return [
        (f"{method.upper()} {path}", status, op, name, link)
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        for status, response in op["responses"].items()
        for name, link in response.get("links", {}).items()
    ]


def _at_pointer(schema: dict[str, Any], pointer: str, components: dict[str, Any]) -> dict[str, Any] | None:
    """The schema of the value at ``pointer`` in a body of ``schema``; None if no such value can exist."""
    for part in pointer.strip("/").split("/"):
        while "$ref" in schema:
            schema = components[schema["$ref"].rsplit("/", 1)[-1]]
        if part.isdigit() and schema.get("type") == "array":
            schema = schema.get("items", {})
        elif part in schema.get("properties", {}):
            schema = schema["properties"][part]
        else:
            return None
    return schema


async def test_every_link_names_values_its_source_has_and_parameters_its_target_takes(
    http: httpx.AsyncClient,
) -> None:
    doc = await _doc(http)
    components = doc["components"]["schemas"]
    by_id = {op["operationId"]: op for ops in doc["paths"].values() for op in ops.values()}
    links = _links(doc)
    assert len(links) > 50
    for source, status, op, name, link in links:
        where = f"{source} {status} → {name}"
        target = by_id.get(link["operationId"])
        assert target is not None, where
        taken = {f"{p['in']}.{p['name']}" for p in target.get("parameters", [])}
        required = {f"path.{p['name']}" for p in target.get("parameters", []) if p["in"] == "path"}
        assert required <= link["parameters"].keys() <= taken, where
        own = {f"{p['in']}.{p['name']}" for p in op.get("parameters", [])}
        for expression in link["parameters"].values():
            if expression.startswith("$response.body#"):
                body = op["responses"][status]["content"][JSON]["schema"]
                assert _at_pointer(body, expression.split("#", 1)[1], components) is not None, (where, expression)
            elif expression.startswith("$request.body#"):
                body = op["requestBody"]["content"][JSON]["schema"]
                assert _at_pointer(body, expression.split("#", 1)[1], components) is not None, (where, expression)
            else:
                assert expression.removeprefix("$request.") in own, (where, expression)


async def test_every_operation_on_a_resource_is_the_target_of_a_link(http: httpx.AsyncClient) -> None:
    doc = await _doc(http)
    reached = {link["operationId"] for *_, link in _links(doc)}
    with_parameters = [
        where
        for where, op in _operations(doc)
        if any(p["in"] == "path" for p in op.get("parameters", [])) and op["operationId"] not in reached
    ]
    assert with_parameters == []


async def test_links_follow_a_created_row_and_a_deleted_one(http: httpx.AsyncClient) -> None:
    paths = (await _doc(http))["paths"]
    created = paths["/v1/insights"]["post"]["responses"]["201"]["links"]
    assert {link["parameters"]["path.insight_id"] for link in created.values()} == {"$response.body#/id"}
    assert {p for p, ops in paths.items() for op in ops.values() if op["operationId"] in created} == {
        "/v1/insights/{insight_id}",
        "/v1/insights/{insight_id}/sources",
        "/v1/insights/{insight_id}/history",
    }
    deleted = paths["/v1/insights/{insight_id}"]["delete"]["responses"]["204"]["links"]
    read = paths["/v1/insights/{insight_id}"]["get"]["operationId"]
    assert deleted[read]["parameters"] == {"path.insight_id": "$request.path.insight_id"}
    put = paths["/v1/preferences/{key}"]["put"]["responses"]["201"]["links"]
    assert put[paths["/v1/preferences/{key}"]["get"]["operationId"]]["parameters"] == {
        "path.key": "$request.path.key",
        "query.scope": "$response.body#/scope",
        "query.owner": "$response.body#/owner",
    }
    logs = paths["/v1/logs"]["post"]["responses"]["201"]["links"]
    assert [link["parameters"] for link in logs.values()] == [{"path.log_id": "$response.body#/ids/0"}]
    keys = paths["/v1/admin/keys"]["post"]["responses"]["201"]["links"]
    assert [link["parameters"] for link in keys.values()] == [{"path.prefix": "$response.body#/key/prefix"}]
    teams = paths["/v1/admin/teams"]["post"]["responses"]["201"]["links"]
    assert [link["parameters"] for link in teams.values()] == [{"path.team": "$response.body#/name"}]
