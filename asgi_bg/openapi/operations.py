"""One OpenAPI Operation Object per route and method, read from the route's plan.

Everything comes from what the route settled at registration: the request fields of its
injection plan (``request_fields``), its metadata (tags, summary, ``response_model``...)
and its response class. Nothing here runs per request.
"""

from __future__ import annotations

import enum
import http
import re
import typing
from collections.abc import Iterator, Mapping
from typing import Any

from ..injection import ParamField, Plan, body_embedded, request_fields
from ..params import ParamInfo
from ..responses import JSONResponse
from ..routing import Route
from ..security import SecurityBase
from .schema import (
    REF_PREFIX,
    Schema,
    SchemaRegistry,
    is_upload,
    json_value,
    refers,
    title_of,
)

# FastAPI lists parameters by where they come from, in this order.
_PARAM_ORDER = {"path": 0, "query": 1, "header": 2, "cookie": 3}
_FORM_SOURCES = ("form", "file")
_CHECK_KEYWORDS = {
    "gt": "exclusiveMinimum",
    "ge": "minimum",
    "lt": "exclusiveMaximum",
    "le": "maximum",
    "multiple_of": "multipleOf",
    "pattern": "pattern",
}
VALIDATION_ERROR_REF = {"$ref": REF_PREFIX + "HTTPValidationError"}


def default_operation_id(route: Route, method: str) -> str:
    """FastAPI's default: the route's name, its path and the method, as one identifier."""
    return re.sub(r"\W", "_", route.name + openapi_path(route.path)) + "_" + method.lower()


def openapi_path(path: str) -> str:
    """``/items/{item_id:int}`` → ``/items/{item_id}``: OpenAPI has no converters."""
    return re.sub(r"{([^}:]+):[^}]+}", r"{\1}", path)


class OperationBuilder:
    """Builds the operations of a document, sharing its schema registry and security
    schemes (``security_schemes`` collects every scheme an operation used)."""

    def __init__(self, registry: SchemaRegistry) -> None:
        self.registry = registry
        self.security_schemes: dict[str, Any] = {}
        self.validates = False  # whether any operation answers 422

    def operation(self, route: Route, method: str, operation_id: str) -> dict[str, Any]:
        """The Operation Object of ``route`` for ``method``."""
        op: dict[str, Any] = {}
        if route.tags:
            op["tags"] = [t.value if isinstance(t, enum.Enum) else str(t) for t in route.tags]
        op["summary"] = route.summary or title_of(route.name)
        if route.description:
            op["description"] = route.description
        op["operationId"] = operation_id
        fields = [f for f in request_fields(route.plan) if _shown(f)]
        parameters = self._parameters(route, fields)
        if parameters:
            op["parameters"] = parameters
        body = self._request_body(route.plan, fields, operation_id)
        if body:
            op["requestBody"] = body
        validates = bool(route.compiled.converters or fields)
        op["responses"] = self._responses(route, operation_id, validates)
        if route.deprecated:
            op["deprecated"] = True
        security = self._security(route.plan)
        if security:
            op["security"] = security
        return op

    # --- parameters -------------------------------------------------------------------

    def _parameters(self, route: Route, fields: list[ParamField]) -> list[dict[str, Any]]:
        params = [f for f in fields if f.source in _PARAM_ORDER]
        params.sort(key=lambda f: _PARAM_ORDER[f.source])
        out = [self._parameter(f) for f in params]
        declared = {f.key for f in params if f.source == "path"}
        # A path parameter the handler does not take is still part of the path: OpenAPI
        # requires it declared, with the type its converter matches.
        for name, converter in route.compiled.converters.items():
            if name not in declared:
                schema = self.registry.schema(converter.type) | {"title": title_of(name)}
                out.insert(0, {"name": name, "in": "path", "required": True, "schema": schema})
        return out

    def _parameter(self, field: ParamField) -> dict[str, Any]:
        param: dict[str, Any] = {
            "name": _wire_name(field),
            "in": field.source,
            "required": field.required or field.source == "path",
            "schema": self.field_schema(field),
        }
        info = field.info
        if info is not None and info.description:
            param["description"] = info.description
        if info is not None and info.deprecated:
            param["deprecated"] = True
        return param

    def field_schema(self, field: ParamField, *, in_object: bool = False) -> Schema:
        """The schema of one field: its type, checks, descriptions, default and title;
        ``in_object`` for a property of an embedded body."""
        schema = self.registry.schema(field.annotation)
        info = field.info
        if info is not None:
            _apply_checks(schema, info)
            for key, value in (
                ("description", info.description),
                ("examples", info.examples),
                ("deprecated", info.deprecated),
            ):
                if value:
                    schema[key] = value
        if not field.required and field.default is not None:
            # FastAPI writes no ``"default": null``: an optional parameter goes without.
            schema["default"] = json_value(field.default)
        # As FastAPI: a parameter's or a whole body's schema has a title unless it is a
        # bare reference; a property's (pydantic's rule) none when it refers to one at all.
        untitled = refers(schema) if in_object else "$ref" in schema
        title = info.title if info is not None else None
        if title or not untitled:
            schema["title"] = title or title_of(_wire_name(field))
        return schema

    # --- request body -----------------------------------------------------------------

    def _request_body(
        self, plan: Plan, fields: list[ParamField], operation_id: str
    ) -> dict[str, Any] | None:
        form = [f for f in fields if f.source in _FORM_SOURCES]
        body = [f for f in fields if f.source == "body"]
        if form:
            multipart = any(f.source == "file" or _is_upload(f.annotation) for f in form)
            media_type = "multipart/form-data" if multipart else "application/x-www-form-urlencoded"
            return self._embedded_body(form, operation_id, media_type)
        if not body:
            return None
        media_type = getattr(body[0].info, "media_type", None) or "application/json"
        if len(body) > 1 or body_embedded(plan):
            return self._embedded_body(body, operation_id, media_type)
        field = body[0]
        content = {media_type: {"schema": self.field_schema(field)}}
        return {"content": content, "required": True} if field.required else {"content": content}

    def _embedded_body(
        self, fields: list[ParamField], operation_id: str, media_type: str
    ) -> dict[str, Any]:
        """Several body fields, or form fields: one object schema named after the operation."""
        name = f"Body_{operation_id}"
        schema: Schema = {
            "properties": {f.key: self.field_schema(f, in_object=True) for f in fields},
            "type": "object",
        }
        required = [f.key for f in fields if f.required]
        if required:
            schema["required"] = required
        schema["title"] = name
        self.registry.components[name] = schema
        body: dict[str, Any] = {"content": {media_type: {"schema": {"$ref": REF_PREFIX + name}}}}
        if required:
            body["required"] = True
        return body

    # --- responses --------------------------------------------------------------------

    def _responses(self, route: Route, operation_id: str, validates: bool) -> dict[str, Any]:
        responses: dict[str, Any] = {
            str(route.status_code): self._main_response(route, operation_id)
        }
        if validates:
            self.validates = True
            responses["422"] = {
                "description": "Validation Error",
                "content": {"application/json": {"schema": dict(VALIDATION_ERROR_REF)}},
            }
        for code, extra in route.responses.items():
            responses[str(code)] = self._extra_response(code, extra, route)
        return responses

    def _main_response(self, route: Route, operation_id: str) -> dict[str, Any]:
        response: dict[str, Any] = {"description": "Successful Response"}
        if not _has_body(route.status_code):
            return response
        media_type = route.response_class.media_type or "application/json"
        if not issubclass(route.response_class, JSONResponse):
            response["content"] = {media_type: {"schema": {"type": "string"}}}
            return response
        schema: Schema = {}
        if route.response_model is not None:
            schema = self.registry.schema(route.response_model)
            if not refers(schema):
                schema["title"] = "Response " + title_of(operation_id)
        response["content"] = {media_type: {"schema": schema}}
        return response

    def _extra_response(self, code: Any, extra: Mapping[str, Any], route: Route) -> dict[str, Any]:
        """An entry of ``responses=``: ``description``, ``model`` and ``content`` merged."""
        response = {k: v for k, v in extra.items() if k != "model"}
        if "description" not in response:
            response["description"] = _status_phrase(code)
        model = extra.get("model")
        if model is not None:
            media_type = route.response_class.media_type or "application/json"
            content = response.setdefault("content", {})
            content.setdefault(media_type, {})["schema"] = self.registry.schema(model)
        return response

    # --- security ---------------------------------------------------------------------

    def _security(self, plan: Plan) -> list[dict[str, list[str]]]:
        requirements: list[dict[str, list[str]]] = []
        for scheme in _security_schemes(plan):
            self.security_schemes[scheme.scheme_name] = scheme.model
            requirement: dict[str, list[str]] = {scheme.scheme_name: []}
            if requirement not in requirements:
                requirements.append(requirement)
        return requirements


def _security_schemes(plan: Plan) -> Iterator[SecurityBase]:
    for _, dependency in plan.dependencies:
        if isinstance(dependency.plan.call, SecurityBase):
            yield dependency.plan.call
        yield from _security_schemes(dependency.plan)


def _shown(field: ParamField) -> bool:
    return field.info is None or field.info.include_in_schema


def _wire_name(field: ParamField) -> str:
    # The header's own spelling when an alias gives one; the plan keeps it lower-cased.
    alias = field.info.alias if field.info is not None else None
    return alias if field.source == "header" and alias else field.key


def _apply_checks(schema: Schema, info: ParamInfo) -> None:
    """Put the marker's checks on the schema: on each member of a union that the check
    applies to, as pydantic does (``ge`` on a ``Decimal``'s number, not on its string)."""
    checks = info.checks()
    for target in schema.get("anyOf", [schema]):
        kind = target.get("type")
        for name, value in checks.items():
            key = _check_keyword(name, kind)
            if key is not None:
                target[key] = value


def _check_keyword(check: str, kind: str | None) -> str | None:
    """The JSON Schema keyword of ``check`` on a schema of type ``kind``; None when the
    check does not apply to that type (a schema without a type takes every check)."""
    if check in ("min_length", "max_length"):
        if kind not in (None, "string", "array"):
            return None
        return ("min" if check == "min_length" else "max") + (
            "Items" if kind == "array" else "Length"
        )
    if check == "pattern":
        return "pattern" if kind in (None, "string") else None
    return _CHECK_KEYWORDS[check] if kind in (None, "integer", "number") else None


def _is_upload(annotation: Any) -> bool:
    return is_upload(annotation) or any(is_upload(a) for a in typing.get_args(annotation))


def _has_body(status: int) -> bool:
    return status >= 200 and status not in (204, 304)


def _status_phrase(code: Any) -> str:
    try:
        return http.HTTPStatus(int(code)).phrase
    except ValueError:
        return "Additional Response"
