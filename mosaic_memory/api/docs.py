"""OpenAPI documentation shared by the routers: the error responses every /v1 route may give."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def error_doc(description: str, error: str, detail: str) -> dict[str, Any]:
    """One documented error response whose example is the ``{error, detail}`` body the app sends."""
    return {
        "description": description,
        "content": {"application/json": {"example": {"error": error, "detail": detail}}},
    }


INVALID = error_doc("bad input; nothing is stored", "InvalidInput", "content: String should have at least 1 character")
ERRORS: dict[int | str, dict[str, Any]] = {
    401: error_doc(
        "no key, an unknown key or a revoked key",
        "AuthenticationFailed",
        "the API key is not valid",
    ),
    403: error_doc(
        "the key lacks the scope this route needs", "PermissionDenied", "this API key lacks the 'write' scope"
    ),
    404: error_doc(
        "no such row among the caller's owners (another owner's id answers the same); the error names the kind",
        "InsightNotFound",
        "insight 2b9e4f71-6c3a-4d8e-9f12-a7b5c3d1e0f4 not found",
    ),
    422: INVALID,
    429: {
        "description": "the key is over its request rate, or this client failed too often on the key's prefix "
        "(limits, docs/security.md); retry after Retry-After seconds",
        "content": {
            "application/json": {
                "example": {
                    "error": "RateLimited",
                    "detail": "this API key is over its 18000 requests a minute",
                    "retry_after": 1,
                }
            }
        },
        "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
    },
}
"""Pass as ``APIRouter(responses=ERRORS)``; a route's own ``responses`` override these per status."""


def example_response(example: Any, description: str = "Successful Response") -> dict[str, Any]:
    """A ``responses`` entry documenting a JSON body that has no model of its own (lists, plain dicts)."""
    return {"description": description, "content": {"application/json": {"example": example}}}


def list_response(model: Any) -> dict[str, Any]:
    """A ``responses`` entry for ``list[model]``: a one-item list of the model's first example."""
    from mosaic_memory.common.schemas import item_examples

    return example_response(item_examples(model)[:1])


HEALTH_RESPONSES: dict[int | str, dict[str, Any]] = {200: example_response({"status": "ok"})}
_CHECKS = {"database": "ok", "migrations": "ok", "embedder": "sentence-transformers/all-MiniLM-L6-v2"}
READY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: example_response({"status": "ready", "tier": "local", "checks": _CHECKS}),
    503: example_response(
        {
            "error": "NotReady",
            "detail": "database: ok; migrations: at 0001, head 0002; embedder: sentence-transformers/all-MiniLM-L6-v2",
            "checks": {**_CHECKS, "migrations": "at 0001, head 0002"},
        },
        "the database is unreachable or its migrations are not at head",
    ),
}


def _accepts_null(schema: dict[str, Any]) -> bool:
    if schema.get("type") == "null" or any(o.get("type") == "null" for o in schema.get("anyOf", [])):
        return True
    return not any(k in schema for k in ("type", "$ref", "anyOf", "allOf", "oneOf", "enum", "const"))


def _fill_nulls(example: Any, schema: dict[str, Any], components: dict[str, Any]) -> None:
    """Put back, as null, the required nullable properties missing from ``example`` (recursively)."""
    if "$ref" in schema:
        schema = components.get(schema["$ref"].rsplit("/", 1)[-1], {})
    for option in schema.get("anyOf", []):
        if "$ref" in option and isinstance(example, dict):
            schema = components.get(option["$ref"].rsplit("/", 1)[-1], {})
    if isinstance(example, list) and "items" in schema:
        for item in example:
            _fill_nulls(item, schema["items"], components)
    if isinstance(example, dict):
        required = schema.get("required", [])
        for name, sub in schema.get("properties", {}).items():
            if name in example:
                _fill_nulls(example[name], sub, components)
            elif name in required and _accepts_null(sub):
                example[name] = None


def fill_example_nulls(doc: dict[str, Any]) -> dict[str, Any]:
    """FastAPI drops every null from the OpenAPI document, examples included, so ``valid_to: null``
    would vanish from an example although the field is required. Restore those nulls in place."""
    components = doc.get("components", {}).get("schemas", {})
    for schema in components.values():
        for example in schema.get("examples", []):
            _fill_nulls(example, schema, components)
    for operation in (op for ops in doc.get("paths", {}).values() for op in ops.values()):
        bodies = [operation.get("requestBody", {}), *operation.get("responses", {}).values()]
        for media in (m for body in bodies for m in body.get("content", {}).values()):
            values = [media["example"]] if "example" in media else []
            values += [entry.get("value") for entry in media.get("examples", {}).values()]
            for value in values:
                _fill_nulls(value, media.get("schema", {}), components)
    return doc


# Answers the app's middleware and error handlers give on any /v1 route, whatever the route
# declares: a JSON body that does not parse (400), a body of another media type (415) or over
# limits.max_request_bytes (413), a write that conflicts with a stored row (409), and the database
# or embedding provider unavailable (503).
MALFORMED = error_doc("the request body is not valid JSON", "MalformedJSON", "the request body is not valid JSON")
BODY_ERRORS: dict[str, dict[str, Any]] = {
    "413": error_doc(
        "the request body is over limits.max_request_bytes; nothing is stored",
        "ContentTooLarge",
        "the request body is over the 1048576-byte limit",
    ),
    "415": error_doc(
        "the body is not application/json",
        "UnsupportedMediaType",
        "send the body as application/json, not 'text/plain'",
    ),
}
CONFLICT = error_doc(
    "the change conflicts with what is stored (a name taken, an id stored with other content, a row "
    "already superseded, a concurrent change); nothing is written",
    "Conflict",
    "log event 2b9e4f71-6c3a-4d8e-9f12-a7b5c3d1e0f4 is already stored with other content",
)
UNAVAILABLE = error_doc(
    "the database or the embedding provider is unavailable; retry later",
    "EmbeddingUnavailable",
    "the embedding provider did not answer in time",
)


def add_common_errors(doc: dict[str, Any]) -> dict[str, Any]:
    """Declare, in place, the answers of :data:`BODY_ERRORS`, :data:`MALFORMED`, :data:`CONFLICT`
    and :data:`UNAVAILABLE` on every /v1 operation that can give them (a route's own declaration wins)."""
    for path, operations in doc.get("paths", {}).items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            body = operation.get("requestBody")
            extra: dict[str, dict[str, Any]] = {"503": UNAVAILABLE}
            if method in ("post", "put", "patch", "delete"):
                extra["409"] = CONFLICT
            if body is not None:
                extra |= BODY_ERRORS
                if "application/json" in body.get("content", {}):
                    extra["400"] = MALFORMED
            for status, response in extra.items():
                responses.setdefault(status, response)
    return doc


def keep_example_nulls(build: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """Wrap ``app.openapi`` so the served document keeps its examples' required nulls, declares
    the errors every route may give (:func:`add_common_errors`) and links each resource's
    operations (:func:`add_links`)."""

    def openapi() -> dict[str, Any]:
        return add_links(add_common_errors(fill_example_nulls(build())))

    return openapi


# OpenAPI links: how the resources relate, so a client (or a stateful fuzzer) can follow a created
# or listed row to the operations that read, change or delete it. Derived from the routes, not
# written per route: a path's first parameter names a resource (``/v1/insights/{insight_id}``) and
# every operation at or below that path acts on it.
FIELD_ALIASES = {"team": "name"}
"""A path parameter whose value is the resource's field of another name (teams go by name)."""


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components.get(schema["$ref"].rsplit("/", 1)[-1], {})
    return schema


def _json_schema(body: dict[str, Any]) -> dict[str, Any]:
    return dict(body.get("content", {}).get("application/json", {}).get("schema", {}))


def _field_pointer(schema: dict[str, Any], names: list[str], components: dict[str, Any], depth: int = 0) -> str | None:
    """The JSON pointer, in a body of ``schema``, of the first field named one of ``names``: at the
    top, else in the first item of a list (``/0/id``, a page's ``/items/0/id``) or in a nested
    object (a created key's ``/key/prefix``), one level down."""
    schema = _resolve(schema, components)
    if schema.get("type") == "array":
        inner = _field_pointer(schema.get("items", {}), names, components, depth)
        return None if inner is None else f"/0{inner}"
    properties = schema.get("properties", {})
    for name in names:
        if name in properties:
            return f"/{name}"
    if depth > 0:
        return None
    for field, sub in properties.items():
        sub = _resolve(sub, components)
        if sub.get("type") in ("object", "array"):
            inner = _field_pointer(sub, names, components, depth + 1)
            if inner is not None:
                return f"/{field}{inner}"
    return None


def _path_value_pointer(schema: dict[str, Any], name: str, components: dict[str, Any]) -> str | None:
    """Where a body of ``schema`` holds the value of the path parameter ``name``: the field of that
    name or its alias, else ``id`` (``ids``, a list of them, too) for an ``*_id``."""
    names = [name, FIELD_ALIASES.get(name, name)] + (["id"] if name.endswith("_id") else [])
    pointer = _field_pointer(schema, names, components)
    if pointer is None and name.endswith("_id") and "ids" in _resolve(schema, components).get("properties", {}):
        pointer = "/ids/0"
    return pointer


def resource_paths(paths: dict[str, Any]) -> dict[str, str]:
    """Each resource path (up to and including a path's first parameter) → its collection's path."""
    found: dict[str, str] = {}
    for path in paths:
        parts = path.split("/")
        for index, part in enumerate(parts):
            if part.startswith("{"):
                found["/".join(parts[: index + 1])] = "/".join(parts[:index])
                break
    return found


def _under(path: str, resource: str) -> bool:
    return path == resource or path.startswith(resource + "/")


def add_links(doc: dict[str, Any]) -> dict[str, Any]:
    """Declare, in place, an OpenAPI link from each successful response to every operation on a
    resource that response names: from its create (``POST`` on the collection, ``PUT`` on the
    resource), its list (``GET`` on the collection: the first item), any operation answering with
    the resource's own schema (``PATCH``, a job run started elsewhere) and every other operation on
    the same resource (so ``DELETE`` links to the ``GET`` that must then answer 404). A link is
    declared only where every path parameter of its target can be filled: from the producer's
    path, its response body or its request body. The query parameters the resource's ``GET`` takes
    narrow which row the path names (a preference's ``scope`` and ``owner``): they are carried the
    same way where the producer has them."""
    paths = doc.get("paths", {})
    components = doc.get("components", {}).get("schemas", {})
    operations = [(path, method, op) for path, ops in paths.items() for method, op in ops.items()]
    for resource, collection in resource_paths(paths).items():
        getter = paths.get(resource, {}).get("get", {})
        read = _json_schema(getter.get("responses", {}).get("200", {}))
        narrowing = {p["name"] for p in getter.get("parameters", []) if p["in"] == "query"}
        targets = [(path, method, op) for path, method, op in operations if _under(path, resource)]
        for path, method, op in operations:
            names = (method == "post" and path == collection) or (method == "get" and path == collection)
            names = names or (method == "put" and path == resource) or _under(path, resource)
            for status, response in op.get("responses", {}).items():
                body = _json_schema(response)
                returns = "$ref" in body and body.get("$ref") == read.get("$ref")
                if not status.startswith("2") or not (names or returns):
                    continue
                for target_path, target_method, target in targets:
                    if (target_path, target_method) == (path, method):
                        continue
                    parameters = _link_parameters(op, body, target, narrowing, components)
                    if parameters is not None:
                        link = {"operationId": target["operationId"], "parameters": parameters}
                        response.setdefault("links", {})[target["operationId"]] = link
    return doc


def _link_parameters(
    source: dict[str, Any],
    body: dict[str, Any],
    target: dict[str, Any],
    narrowing: set[str],
    components: dict[str, Any],
) -> dict[str, str] | None:
    """The runtime expressions filling ``target``'s path parameters and those of its query
    parameters in ``narrowing``, from the ``source`` operation's request and its response ``body``;
    None when a path parameter cannot be filled."""
    own = {p["name"]: p["in"] for p in source.get("parameters", []) if p["in"] in ("path", "query")}
    request_fields = _resolve(_json_schema(source.get("requestBody", {})), components).get("properties", {})
    parameters: dict[str, str] = {}
    for parameter in target.get("parameters", []):
        name, where = parameter["name"], parameter["in"]
        if where not in ("path", "query") or (where == "query" and name not in narrowing):
            continue
        if where == "path":
            pointer = _path_value_pointer(body, name, components) if body else None
        else:
            pointer = _field_pointer(body, [name], components) if body else None
        if own.get(name) == where == "path":
            parameters[f"path.{name}"] = f"$request.path.{name}"
        elif pointer is not None:
            parameters[f"{where}.{name}"] = f"$response.body#{pointer}"
        elif name in own:
            parameters[f"{where}.{name}"] = f"$request.{own[name]}.{name}"
        elif where == "path" and name in request_fields:
            parameters[f"path.{name}"] = f"$request.body#/{name}"
        elif where == "path":
            return None
    return parameters
