"""Helpers for the OpenAPI tests: a FastAPI twin of a module, and documents made comparable."""

from __future__ import annotations

import importlib.util
import re
import sys
import types
from typing import Any

from openapi_spec_validator import validate

# One import line, or a parenthesised block over several lines; any asgi_bg module whose
# FastAPI namesake exists (``asgi_bg.responses`` -> ``fastapi.responses``).
_IMPORT = re.compile(r"^from asgi_bg(\.\w+)? import (\([^)]*\)|.*)$", re.MULTILINE)


def fastapi_twin(module_name: str) -> types.ModuleType:
    """``module_name`` imported again with its import line changed to FastAPI's: the same
    source, as a FastAPI user would have written it (``App`` is ``FastAPI``, ``Router``
    is ``APIRouter``)."""
    spec = importlib.util.find_spec(module_name)
    assert spec is not None and spec.loader is not None and spec.origin is not None
    source = spec.loader.get_source(module_name)  # type: ignore[attr-defined]
    assert isinstance(source, str)

    def swap(found: re.Match[str]) -> str:
        names = re.sub(r"\bApp\b", "FastAPI as App", found[2])
        names = re.sub(r"\bRouter\b", "APIRouter as Router", names)
        return f"from fastapi{found[1] or ''} import {names}"

    twin_name = module_name + "_fastapi_twin"
    twin = types.ModuleType(twin_name)
    twin.__package__ = spec.parent
    twin.__file__ = spec.origin
    sys.modules[twin_name] = twin
    exec(compile(_IMPORT.sub(swap, source), spec.origin, "exec"), twin.__dict__)
    return twin


def checked(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` after openapi-spec-validator found it valid."""
    validate(document)
    return document


def comparable(document: dict[str, Any]) -> dict[str, Any]:
    """Per operation: its parameters, request body (references resolved) and response
    codes; what the issue asks to equal FastAPI's."""
    schemas = document.get("components", {}).get("schemas", {})
    out: dict[str, Any] = {}
    for path, item in document["paths"].items():
        for method, op in item.items():
            out[f"{method.upper()} {path}"] = {
                "parameters": sorted(
                    (inline(p, schemas) for p in op.get("parameters", [])),
                    key=lambda p: (p["in"], p["name"]),
                ),
                "requestBody": inline(op.get("requestBody"), schemas),
                "responses": sorted(op["responses"]),
            }
    return out


def inline(value: Any, schemas: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """``value`` with each ``$ref`` replaced by the schema it names; a recursive one is
    left as its name (FastAPI's ``-Input``/``-Output`` suffixes dropped)."""
    if isinstance(value, list):
        return [inline(v, schemas, seen) for v in value]
    if not isinstance(value, dict):
        return value
    ref = value.get("$ref")
    if ref is not None:
        name = ref.rsplit("/", 1)[1]
        plain = re.sub(r"-(Input|Output)$", "", name)
        if plain in seen:
            return {"$ref": plain}
        rest = {k: v for k, v in value.items() if k != "$ref"}
        return {**inline(schemas[name], schemas, (*seen, plain)), **inline(rest, schemas, seen)}
    return {k: inline(v, schemas, seen) for k, v in value.items()}
