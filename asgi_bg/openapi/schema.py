"""JSON Schema (the OpenAPI 3.1 dialect) from Python annotations, without pydantic.

The mapping follows what pydantic's ``TypeAdapter(...).json_schema()`` writes for the
same types, so a document reads the way FastAPI users know. Named types (dataclasses,
``TypedDict``, Enums, pydantic models) become one component each, referenced with
``$ref``; that is also what makes recursive dataclasses finite.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import decimal
import enum
import inspect
import sys
import types
import typing
import uuid
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, Union

from .._convert import NONE_TYPE, is_typeddict

REF_PREFIX = "#/components/schemas/"
Schema = dict[str, Any]

_DECIMAL_PATTERN = r"^(?!^[-+.]*$)[+-]?0*\d*\.?\d*$"

_SCALARS: dict[Any, Schema] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    bytes: {"type": "string", "format": "binary"},
    uuid.UUID: {"type": "string", "format": "uuid"},
    datetime.datetime: {"type": "string", "format": "date-time"},
    datetime.date: {"type": "string", "format": "date"},
    datetime.time: {"type": "string", "format": "time"},
    datetime.timedelta: {"type": "string", "format": "duration"},
    decimal.Decimal: {
        "anyOf": [{"type": "number"}, {"type": "string", "pattern": _DECIMAL_PATTERN}]
    },
    NONE_TYPE: {"type": "null"},
    None: {"type": "null"},
    Any: {},
    object: {},
}

_JSON_TYPES: dict[type, str] = {str: "string", bool: "boolean", int: "integer", float: "number"}


def title_of(name: str) -> str:
    """pydantic's default title: ``item_id`` → ``Item Id``."""
    return name.replace("_", " ").title()


def is_upload(annotation: Any) -> bool:
    """True for the forms module's ``UploadFile`` (told by name: it is an optional part)."""
    return isinstance(annotation, type) and any(
        c.__name__ == "UploadFile" for c in annotation.__mro__
    )


class SchemaRegistry:
    """Schemas of annotations, collecting one component per named type.

    ``components`` maps each component's name to its schema; two different types with
    one ``__name__`` get distinct names (``Item``, ``Item2``).
    """

    def __init__(self) -> None:
        self.components: dict[str, Schema] = {}
        self._names: dict[Any, str] = {}

    def schema(self, annotation: Any) -> Schema:
        """The JSON Schema of ``annotation`` (a fresh dict the caller may extend)."""
        if typing.get_origin(annotation) is Annotated:
            return self._annotated(annotation)
        if _hashable(annotation) and annotation in _SCALARS:
            return copy.deepcopy(_SCALARS[annotation])  # callers add checks, even inside
        if is_upload(annotation):
            return {"type": "string", "format": "binary"}
        origin = typing.get_origin(annotation)
        if origin in (Union, types.UnionType):
            return {"anyOf": self._members(typing.get_args(annotation))}
        if origin is Literal:
            return _literal(typing.get_args(annotation))
        if _is_named(annotation):
            return {"$ref": REF_PREFIX + self._component(annotation)}
        return self._container(annotation, origin)

    def _members(self, options: tuple[Any, ...]) -> list[Schema]:
        """A union's schemas, a member that is itself only a union flattened into it
        (``Decimal | None``: number, string, null), as pydantic writes it."""
        members: list[Schema] = []
        for option in options:
            schema = self.schema(option)
            members.extend(schema["anyOf"] if list(schema) == ["anyOf"] else [schema])
        return members

    def _container(self, annotation: Any, origin: Any) -> Schema:
        args = typing.get_args(annotation)
        origin = origin or annotation
        if origin in (dict, Mapping) or annotation is dict:
            value = args[1] if len(args) == 2 else Any
            extra: Any = True if value in (Any, object) else self.schema(value)
            return {"type": "object", "additionalProperties": extra}
        if origin is tuple and args and args[-1] is not Ellipsis:
            items = [self.schema(a) for a in args]
            return {
                "type": "array",
                "prefixItems": items,
                "minItems": len(items),
                "maxItems": len(items),
            }
        if origin in (list, tuple, set, frozenset, Sequence):
            schema: Schema = {"type": "array", "items": self.schema(args[0]) if args else {}}
            if origin in (set, frozenset):
                schema["uniqueItems"] = True
            return schema
        return self._adapted(annotation)

    def _component(self, cls: Any) -> str:
        name = self._names.get(cls)
        if name is not None:
            return name
        name = _free_name(self.components, getattr(cls, "__name__", "Model"))
        self._names[cls] = name
        self.components[name] = {}  # reserved first: a recursive type refers to itself
        self.components[name] = self._named_schema(cls)
        return name

    def _named_schema(self, cls: Any) -> Schema:
        if isinstance(cls, type) and issubclass(cls, enum.Enum):
            return _enum_schema(cls)
        if _is_pydantic_model(cls):
            return self._pydantic_schema(cls)
        schema: Schema = {"properties": {}, "type": "object"}
        required = []
        for name, annotation, default in _fields(cls):
            prop = self.schema(annotation)
            if not refers(prop):
                prop["title"] = title_of(name)
            if default is _NO_DEFAULT:
                required.append(name)
            elif default is not None:  # as FastAPI writes it: no ``"default": null``
                prop["default"] = default
            schema["properties"][name] = prop
        if required:
            schema["required"] = required
        schema["title"] = cls.__name__
        doc = _own_doc(cls)
        if doc:
            schema["description"] = doc
        return schema

    def _annotated(self, annotation: Any) -> Schema:
        """``Annotated[T, ...]``: pydantic's reading when it holds pydantic's metadata
        (``Field(ge=1)``, say), else ``T``'s schema (asgi_bg's markers say nothing more
        here: the parameter's checks are applied from its marker)."""
        inner, *extras = typing.get_args(annotation)
        if any(type(e).__module__.startswith(("pydantic", "annotated_types")) for e in extras):
            adapted = self._adapted(annotation)
            if adapted:
                return adapted
        return self.schema(inner)

    def _pydantic_schema(self, model: Any) -> Schema:
        schema: Schema = model.model_json_schema(ref_template=REF_PREFIX + "{model}")
        return self._hoisted(schema)

    def _adapted(self, annotation: Any) -> Schema:
        """Another type: pydantic's schema when pydantic is loaded and knows it (the app
        then validates it with pydantic too), else ``{}``, any value."""
        pydantic = sys.modules.get("pydantic")
        if pydantic is None:
            return {}
        try:
            adapter = pydantic.TypeAdapter(annotation)
            schema: Schema = adapter.json_schema(ref_template=REF_PREFIX + "{model}")
        except Exception:  # pydantic cannot describe it either: any value
            return {}
        return self._hoisted(schema)

    def _hoisted(self, schema: Schema) -> Schema:
        for name, sub in schema.pop("$defs", {}).items():
            self.components.setdefault(name, _without_null_defaults(sub))
        return _without_null_defaults(schema)


def _without_null_defaults(schema: Schema) -> Schema:
    """pydantic's schema as FastAPI writes it: no ``"default": null`` on a field."""
    for prop in schema.get("properties", {}).values():
        if "default" in prop and prop["default"] is None:
            del prop["default"]
    return schema


_NO_DEFAULT: Any = object()


def _fields(cls: Any) -> list[tuple[str, Any, Any]]:
    """``(name, annotation, default)`` of a dataclass's or a ``TypedDict``'s fields."""
    hints = typing.get_type_hints(cls, include_extras=True)
    if dataclasses.is_dataclass(cls):
        return [
            (f.name, hints.get(f.name, Any), _json_default(f))
            for f in dataclasses.fields(cls)
            if f.init
        ]
    required = getattr(cls, "__required_keys__", frozenset(hints))
    return [(k, hints[k], _NO_DEFAULT if k in required else None) for k in hints]


def _json_default(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return json_value(field.default)
    # A factory's value is made per instance: optional, but no one default to show.
    return None if field.default_factory is not dataclasses.MISSING else _NO_DEFAULT


def json_value(value: Any) -> Any:
    """``value`` as JSON would carry it (Enums by value, UUIDs and dates as text)."""
    if isinstance(value, enum.Enum):
        return json_value(value.value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple | set | frozenset):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return str(value)


def _literal(choices: tuple[Any, ...]) -> Schema:
    values = [json_value(c) for c in choices]
    kinds = {_JSON_TYPES.get(type(v)) for v in values}
    schema: Schema = {"const": values[0]} if len(values) == 1 else {"enum": values}
    if len(kinds) == 1 and None not in kinds:
        schema["type"] = kinds.pop()
    return schema


def _enum_schema(cls: type[enum.Enum]) -> Schema:
    values = [json_value(m.value) for m in cls]
    kinds = {_JSON_TYPES.get(type(v)) for v in values}
    schema: Schema = {"enum": values, "title": cls.__name__}
    if len(kinds) == 1 and None not in kinds:
        schema["type"] = kinds.pop()
    doc = _own_doc(cls)
    if doc:
        schema["description"] = doc
    return schema


def _own_doc(cls: type) -> str | None:
    """The class's own docstring, not an inherited or a generated one."""
    doc = cls.__dict__.get("__doc__")
    if not doc or (dataclasses.is_dataclass(cls) and doc.startswith(cls.__name__ + "(")):
        return None
    if issubclass(cls, enum.Enum) and doc == enum.Enum.__doc__:
        return None
    return inspect.cleandoc(doc)


def _is_named(annotation: Any) -> bool:
    if not isinstance(annotation, type):
        return False
    if issubclass(annotation, enum.Enum) or dataclasses.is_dataclass(annotation):
        return True
    return is_typeddict(annotation) or _is_pydantic_model(annotation)


def _is_pydantic_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and hasattr(annotation, "model_json_schema")


def refers(schema: Schema) -> bool:
    """True for a reference or a union holding one: pydantic gives such a field no title."""
    if "$ref" in schema:
        return True
    members = schema.get("anyOf", ())
    return any("$ref" in m for m in members)


def _hashable(annotation: Any) -> bool:
    try:
        hash(annotation)
    except TypeError:
        return False
    return True


def _free_name(taken: Mapping[str, Any], name: str) -> str:
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}{n}"
    return candidate
