"""The whole OpenAPI 3.1 document of an app: info, servers, paths, components."""

from __future__ import annotations

import typing
from typing import Any

from .operations import OperationBuilder, default_operation_id, openapi_path
from .schema import REF_PREFIX, SchemaRegistry

if typing.TYPE_CHECKING:
    from ..applications import App

# The 422 answer's shape, as FastAPI declares it.
_VALIDATION_SCHEMAS: dict[str, Any] = {
    "HTTPValidationError": {
        "properties": {
            "detail": {
                "items": {"$ref": REF_PREFIX + "ValidationError"},
                "type": "array",
                "title": "Detail",
            }
        },
        "type": "object",
        "title": "HTTPValidationError",
    },
    "ValidationError": {
        "properties": {
            "loc": {
                "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                "type": "array",
                "title": "Location",
            },
            "msg": {"type": "string", "title": "Message"},
            "type": {"type": "string", "title": "Error Type"},
            "input": {"title": "Input"},
            "ctx": {"type": "object", "title": "Context"},
        },
        "type": "object",
        "required": ["loc", "msg", "type"],
        "title": "ValidationError",
    },
}


def build_document(app: App) -> dict[str, Any]:
    """The OpenAPI document of every route of ``app`` shown in the schema."""
    registry = SchemaRegistry()
    builder = OperationBuilder(registry)
    paths: dict[str, dict[str, Any]] = {}
    taken: set[str] = set()
    for route in app.router.routes:
        if not route.include_in_schema:
            continue
        for method in sorted(route.methods):
            operation_id = _unique(route.operation_id or default_operation_id(route, method), taken)
            operation = builder.operation(route, method, operation_id)
            paths.setdefault(openapi_path(route.path), {})[method.lower()] = operation
    document: dict[str, Any] = {"openapi": "3.1.0", "info": _info(app)}
    if app.servers:
        document["servers"] = [dict(s) for s in app.servers]
    document["paths"] = paths
    components: dict[str, Any] = {}
    if builder.validates:
        registry.components.update(_VALIDATION_SCHEMAS)
    if registry.components:
        components["schemas"] = dict(sorted(registry.components.items()))
    if builder.security_schemes:
        components["securitySchemes"] = builder.security_schemes
    if components:
        document["components"] = components
    if app.openapi_tags:
        document["tags"] = [dict(t) for t in app.openapi_tags]
    return document


def with_root_path(document: dict[str, Any], root_path: str) -> dict[str, Any]:
    """The document as served under ``root_path``: that prefix first in ``servers``."""
    servers = document.get("servers", [])
    if not root_path or any(s.get("url") == root_path for s in servers):
        return document
    return {**document, "servers": [{"url": root_path}, *servers]}


def _info(app: App) -> dict[str, Any]:
    info: dict[str, Any] = {"title": app.title, "version": app.version}
    if app.description:
        info["description"] = app.description
    return info


def _unique(operation_id: str, taken: set[str]) -> str:
    """``operation_id``, numbered when an earlier operation already has it (FastAPI only
    warns; a duplicate makes the document invalid, so it is numbered here)."""
    candidate, n = operation_id, 1
    while candidate in taken:
        n += 1
        candidate = f"{operation_id}_{n}"
    taken.add(candidate)
    return candidate
