"""Converters from request strings and decoded JSON to annotated Python types.

Each converter is chosen once, when a route is registered, from the parameter's
annotation; per request it is one call. A converter raises ``Invalid`` with a
pydantic-style error type and message, so 422 answers read the way FastAPI users know.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
import types
import typing
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Union

from .exceptions import ConfigurationError

Converter = Callable[[Any], Any]

NONE_TYPE = type(None)


class Invalid(Exception):
    """A value failed conversion; ``loc`` is relative to the parameter."""

    def __init__(self, type_: str, msg: str, value: Any, loc: tuple[Any, ...] = ()) -> None:
        super().__init__(msg)
        self.type = type_
        self.msg = msg
        self.value = value
        self.loc = loc


def unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    """``X | None`` → ``(X, True)``; anything else → ``(annotation, False)``."""
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not NONE_TYPE]
        if len(args) < len(typing.get_args(annotation)):
            inner = args[0] if len(args) == 1 else Union[tuple(args)]  # noqa: UP007
            return inner, True
    return annotation, False


def is_sequence(annotation: Any) -> bool:
    """True for ``list[X]``, ``tuple[X, ...]``, ``set[X]`` and ``Sequence[X]``."""
    origin = typing.get_origin(annotation) or annotation
    return origin in (list, tuple, set, frozenset, Sequence)


def item_type(annotation: Any) -> Any:
    """The element type of a sequence annotation (``str`` when unparameterised)."""
    args = typing.get_args(annotation)
    return args[0] if args else str


# --- strings (path, query, header, cookie) -------------------------------------------


# Python's int() and float() also read Unicode digits (fullwidth "12"), "1_000" and surrounding
# spaces. A proxy, WAF or cache in front of the app reads those as text, so asgi_bg
# does too: ASCII digits with an optional sign, nothing else (issue 11, finding 11).
_ASCII_INT = re.compile(r"[+-]?[0-9]+")
_ASCII_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# Spelled-out specials keep their own error ("finite_number") rather than a parse error.
_SPECIAL_FLOAT = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)


def _to_int(value: str) -> int:
    try:
        if _ASCII_INT.fullmatch(value) is None:
            raise ValueError(value)
        return int(value)  # still refuses more than 4300 digits
    except ValueError:
        raise Invalid(
            "int_parsing",
            "Input should be a valid integer, unable to parse string as an integer",
            value,
        ) from None


def finite_float(text: str) -> float:
    """``float(text)``, refusing what overflows to infinity (``1e999``, 400 nines) and
    ``nan``/``inf`` spelled out: no JSON answer could carry them back."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text!r} is out of range")
    return value


def _to_float(value: str) -> float:
    try:
        if _ASCII_FLOAT.fullmatch(value) is None and _SPECIAL_FLOAT.fullmatch(value) is None:
            raise ValueError(value)
        number = float(value)
    except ValueError:
        raise Invalid(
            "float_parsing",
            "Input should be a valid number, unable to parse string as a number",
            value,
        ) from None
    if not math.isfinite(number):
        # "nan" and "inf" parse, but no JSON answer could carry them back.
        raise Invalid("finite_number", "Input should be a finite number", value)
    return number


_TRUE = frozenset({"1", "true", "on", "yes", "t", "y"})
_FALSE = frozenset({"0", "false", "off", "no", "f", "n"})


def _to_bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise Invalid(
        "bool_parsing", "Input should be a valid boolean, unable to interpret input", value
    )


def _to_uuid(value: Any) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise Invalid("uuid_parsing", "Input should be a valid UUID", value) from None


def _identity(value: Any) -> Any:
    return value


def _enum_converter(enum_type: type[enum.Enum]) -> Converter:
    by_value = {str(m.value): m for m in enum_type}
    expected = " or ".join(repr(v) for v in by_value)

    def convert(value: Any) -> enum.Enum:
        member = by_value.get(str(value))
        if member is None:
            raise Invalid("enum", f"Input should be {expected}", value)
        return member

    return convert


def _literal_converter(choices: tuple[Any, ...]) -> Converter:
    by_text = {str(c): c for c in choices}
    expected = " or ".join(repr(c) for c in choices)

    def convert(value: Any) -> Any:
        if str(value) not in by_text:
            raise Invalid("literal_error", f"Input should be {expected}", value)
        return by_text[str(value)]

    return convert


_STRING_CONVERTERS: dict[Any, Converter] = {
    str: _identity,
    Any: _identity,
    int: _to_int,
    float: _to_float,
    bool: _to_bool,
    uuid.UUID: _to_uuid,
}


def string_converter(annotation: Any, where: str) -> Converter:
    """The converter from a request string to ``annotation``; raises ``ConfigurationError``.

    ``where`` names the parameter in the error message.
    """
    if annotation in _STRING_CONVERTERS:
        return _STRING_CONVERTERS[annotation]
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return _enum_converter(annotation)
    if typing.get_origin(annotation) is Literal:
        return _literal_converter(typing.get_args(annotation))
    raise ConfigurationError(
        f"{where}: cannot read a {_type_name(annotation)} from a request string; "
        "use str, int, float, bool, UUID, an Enum, a Literal, or mark it Body()"
    )


# --- decoded JSON (bodies) ------------------------------------------------------------


def _json_scalar(type_: type, name: str, label: str) -> Converter:
    def convert(value: Any) -> Any:
        if isinstance(value, type_) and not (isinstance(value, bool) and type_ is not bool):
            return value
        if type_ is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if type_ is int and isinstance(value, float) and value.is_integer():
            return int(value)
        raise Invalid(f"{name}_type", f"Input should be a valid {label}", value)

    return convert


_JSON_SCALARS: dict[Any, Converter] = {
    str: _json_scalar(str, "string", "string"),
    int: _json_scalar(int, "int", "integer"),
    float: _json_scalar(float, "float", "number"),
    bool: _json_scalar(bool, "bool", "boolean"),
    Any: _identity,
    object: _identity,
    uuid.UUID: _to_uuid,
}


def json_converter(annotation: Any, where: str) -> Converter:
    """The converter from decoded JSON to ``annotation``; raises ``ConfigurationError``."""
    inner, optional = unwrap_optional(annotation)
    convert = _json_required(inner, where)
    return _allow_none(convert) if optional else convert


def _allow_none(convert: Converter) -> Converter:
    def optional(value: Any) -> Any:
        return None if value is None else convert(value)

    return optional


def _json_required(annotation: Any, where: str) -> Converter:
    if annotation in _JSON_SCALARS:
        return _JSON_SCALARS[annotation]
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        return _dataclass_converter(annotation, where)
    origin = typing.get_origin(annotation) or annotation
    if origin in (dict, Mapping):
        return _dict_converter(annotation, where)
    if is_sequence(annotation):
        args = typing.get_args(annotation)  # a bare ``list`` body holds any JSON values
        return _list_converter(json_converter(args[0] if args else Any, where), origin)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return _enum_converter(annotation)
    if origin is Literal:
        return _literal_converter(typing.get_args(annotation))
    raise ConfigurationError(f"{where}: cannot read a {_type_name(annotation)} from a JSON body")


def _list_converter(convert_item: Converter, origin: Any) -> Converter:
    build = origin if origin in (tuple, set, frozenset) else list

    def convert(value: Any) -> Any:
        if not isinstance(value, list):
            raise Invalid("list_type", "Input should be a valid list", value)
        return build(_each(convert_item, enumerate(value)))

    return convert


def _dict_converter(annotation: Any, where: str) -> Converter:
    args = typing.get_args(annotation)
    convert_value = json_converter(args[1], where) if len(args) == 2 else _identity

    def convert(value: Any) -> Any:
        if not isinstance(value, dict):
            raise Invalid("dict_type", "Input should be a valid dictionary", value)
        return dict(zip(value, _each(convert_value, value.items()), strict=True))

    return convert


def _each(convert: Converter, items: Any) -> list[Any]:
    """Convert every item; the first failure is re-raised with the item's key in ``loc``."""
    out = []
    for key, item in items:
        try:
            out.append(convert(item))
        except Invalid as exc:
            raise Invalid(exc.type, exc.msg, exc.value, (key, *exc.loc)) from None
    return out


def _dataclass_converter(cls: type, where: str) -> Converter:
    try:
        hints = typing.get_type_hints(cls)
    except NameError as exc:
        msg = f"{where}: cannot resolve the fields of {cls.__name__}: {exc}"
        raise ConfigurationError(msg) from exc
    fields = [
        (f.name, json_converter(hints[f.name], f"{where}.{f.name}"), _has_default(f))
        for f in dataclasses.fields(cls)
        if f.init
    ]

    def convert(value: Any) -> Any:
        if not isinstance(value, dict):
            raise Invalid("model_type", f"Input should be an object ({cls.__name__})", value)
        return cls(**_dataclass_kwargs(fields, value))

    return convert


def _dataclass_kwargs(
    fields: list[tuple[str, Converter, bool]], value: dict[str, Any]
) -> dict[str, Any]:
    kwargs = {}
    for name, convert, has_default in fields:
        if name not in value:
            if has_default:
                continue
            raise Invalid("missing", "Field required", None, (name,))
        try:
            kwargs[name] = convert(value[name])
        except Invalid as exc:
            raise Invalid(exc.type, exc.msg, exc.value, (name, *exc.loc)) from None
    return kwargs


def _has_default(field: dataclasses.Field[Any]) -> bool:
    missing = dataclasses.MISSING
    return field.default is not missing or field.default_factory is not missing


def is_body_type(annotation: Any) -> bool:
    """Annotations read from the JSON body by default: dataclasses, dicts, lists of those."""
    inner, _ = unwrap_optional(annotation)
    if dataclasses.is_dataclass(inner) and isinstance(inner, type):
        return True
    origin = typing.get_origin(inner) or inner
    if origin in (dict, Mapping):
        return True
    if is_sequence(inner):
        # A bare ``list`` is a JSON array; ``list[str]`` is a repeated query parameter.
        args = typing.get_args(inner)
        return not args or is_body_type(args[0])
    return False


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or repr(annotation)
