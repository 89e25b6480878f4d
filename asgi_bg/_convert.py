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
from typing import Annotated, Any, Literal, Union

from ._invalid import Invalid, together
from ._models import holds_model, is_model, model_converter
from ._models import pydantic_available as _pydantic_available
from ._scalars import SCALAR_PARSERS
from .exceptions import ConfigurationError

__all__ = ["Converter", "Invalid", "json_converter", "string_converter"]

Converter = Callable[[Any], Any]

NONE_TYPE = type(None)


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


def _expected(choices: list[Any]) -> str:
    """pydantic's list of the allowed values: ``'a', 'b' or 'c'``."""
    shown = [repr(choice) for choice in choices]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"


def _enum_converter(enum_type: type[enum.Enum]) -> Converter:
    by_value = {str(m.value): m for m in enum_type}
    expected = _expected([m.value for m in enum_type])

    def convert(value: Any) -> enum.Enum:
        member = by_value.get(str(value))
        if member is None:
            msg = f"Input should be {expected}"
            raise Invalid("enum", msg, value, ctx={"expected": expected})
        return member

    return convert


def _literal_converter(choices: tuple[Any, ...]) -> Converter:
    by_text = {str(c): c for c in choices}
    expected = _expected(list(choices))

    def convert(value: Any) -> Any:
        if str(value) not in by_text:
            msg = f"Input should be {expected}"
            raise Invalid("literal_error", msg, value, ctx={"expected": expected})
        return by_text[str(value)]

    return convert


_STRING_CONVERTERS: dict[Any, Converter] = {
    str: _identity,
    Any: _identity,
    int: _to_int,
    float: _to_float,
    bool: _to_bool,
    uuid.UUID: _to_uuid,
    **SCALAR_PARSERS,
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
    if not _is_structured(annotation) and _pydantic_available():
        return model_converter(annotation, where)  # anything else pydantic validates
    raise ConfigurationError(
        f"{where}: cannot read a {_type_name(annotation)} from a request "
        f"string; {_string_hint(annotation)}"
    )


def _string_hint(annotation: Any) -> str:
    """What would work instead: a message that leads somewhere."""
    origin = typing.get_origin(annotation) or annotation
    if origin in (dict, Mapping):
        return "a dict is read from the JSON body: declare it Body()"
    if _is_structured(annotation):
        return (
            "a model, dataclass or TypedDict is read from the JSON body (Body()), or field "
            "by field from the query string, headers or cookies (Query(), Header(), Cookie())"
        )
    return (
        "use str, int, float, bool, Decimal, UUID, a date or time, bytes, an Enum, a "
        "Literal, or install asgi_bg[pydantic] for other types"
    )


def is_typeddict(annotation: Any) -> bool:
    """True for a ``TypedDict`` class, ``typing``'s or ``typing_extensions``' (told by its
    shape: ``typing.is_typeddict`` misses the latter before Python 3.13)."""
    return (
        isinstance(annotation, type)
        and issubclass(annotation, dict)
        and hasattr(annotation, "__required_keys__")
    )


def _is_structured(annotation: Any) -> bool:
    origin = typing.get_origin(annotation) or annotation
    return (
        is_model(annotation)
        or (dataclasses.is_dataclass(annotation) and isinstance(annotation, type))
        or origin in (dict, Mapping)
        or is_typeddict(annotation)
    )


# --- decoded JSON (bodies) ------------------------------------------------------------


# pydantic's lax mode, as FastAPI validates a decoded JSON body: numbers may come as
# strings ("5"), booleans as 0/1 or "yes"/"no"; a string field takes only a string.


def _json_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise Invalid("string_type", "Input should be a valid string", value)


def _json_int(value: Any) -> int:
    if isinstance(value, int):
        return int(value)  # a bool is 0 or 1, as in pydantic's lax mode
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise Invalid(
            "int_from_float",
            "Input should be a valid integer, got a number with a fractional part",
            value,
        )
    if isinstance(value, str):
        return _to_int(value.strip())
    raise Invalid("int_type", "Input should be a valid integer", value)


def _json_float(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return _to_float(value.strip())
    raise Invalid("float_type", "Input should be a valid number", value)


def _json_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        return _to_bool(value)
    raise Invalid(
        "bool_parsing" if isinstance(value, int | float) else "bool_type",
        "Input should be a valid boolean, unable to interpret input"
        if isinstance(value, int | float)
        else "Input should be a valid boolean",
        value,
    )


_JSON_SCALARS: dict[Any, Converter] = {
    str: _json_str,
    int: _json_int,
    float: _json_float,
    bool: _json_bool,
    Any: _identity,
    object: _identity,
    uuid.UUID: _to_uuid,
    **SCALAR_PARSERS,
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
    if holds_model(annotation):
        return model_converter(annotation, where)  # pydantic validates its own models
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        return _dataclass_converter(annotation, where)
    if is_typeddict(annotation):
        return _typeddict_converter(annotation, where)
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
    if _pydantic_available():
        return model_converter(annotation, where)  # anything else pydantic validates
    raise ConfigurationError(
        f"{where}: cannot read a {_type_name(annotation)} from a JSON body; "
        "use a dataclass, TypedDict, dict, list or a scalar, or install asgi_bg[pydantic]"
    )


def _list_converter(convert_item: Converter, origin: Any) -> Converter:
    build = origin if origin in (tuple, set, frozenset) else list

    name = {tuple: "tuple", set: "set", frozenset: "frozenset"}.get(build, "list")

    def convert(value: Any) -> Any:
        if not isinstance(value, list):
            raise Invalid(f"{name}_type", f"Input should be a valid {name}", value)
        return build(convert_each(convert_item, enumerate(value)))

    return convert


def _dict_converter(annotation: Any, where: str) -> Converter:
    args = typing.get_args(annotation)
    convert_value = json_converter(args[1], where) if len(args) == 2 else _identity

    def convert(value: Any) -> Any:
        if not isinstance(value, dict):
            raise Invalid("dict_type", "Input should be a valid dictionary", value)
        return dict(zip(value, convert_each(convert_value, value.items()), strict=True))

    return convert


def convert_each(convert: Converter, items: Any) -> list[Any]:
    """Convert every item; failures are raised together, each with its item's key in
    ``loc``, as pydantic lists every failing item."""
    out = []
    failures: list[Invalid] = []
    for key, item in items:
        try:
            out.append(convert(item))
        except Invalid as exc:
            failures.extend(exc.at(key).items())
    if failures:
        raise together(failures)
    return out


def type_hints(cls: Any, where: str, *, extras: bool = False) -> dict[str, Any]:
    """The resolved annotations of a dataclass or TypedDict (with ``Annotated`` and the
    key qualifiers if ``extras``), or a registration error."""
    try:
        return typing.get_type_hints(cls, include_extras=extras)
    except NameError as exc:
        msg = f"{where}: cannot resolve the fields of {cls.__name__}: {exc}"
        raise ConfigurationError(msg) from exc


# ``typing``'s and ``typing_extensions``' TypedDict key qualifiers, told by name.
_QUALIFIERS = ("Required", "NotRequired", "ReadOnly")


def typeddict_keys(cls: Any, where: str) -> list[tuple[str, Any, bool]]:
    """``(name, annotation, required)`` of each key of a TypedDict; the annotation keeps
    its ``Annotated`` extras, not its qualifiers (``NotRequired[int]`` is an int)."""
    keys = []
    for name, declared in type_hints(cls, where, extras=True).items():
        hint, qualifiers = declared, set()
        while (qualifier := getattr(typing.get_origin(hint), "_name", None)) in _QUALIFIERS:
            qualifiers.add(qualifier)
            hint = typing.get_args(hint)[0]
        # ``__required_keys__`` misses the qualifiers of postponed annotations
        # (``from __future__ import annotations``); the resolved hints have them.
        required = "Required" in qualifiers or (
            name in cls.__required_keys__ and "NotRequired" not in qualifiers
        )
        keys.append((name, hint, required))
    return keys


def _dataclass_converter(cls: type, where: str) -> Converter:
    hints = type_hints(cls, where)
    fields = [
        (f.name, json_converter(hints[f.name], f"{where}.{f.name}"), _has_default(f))
        for f in dataclasses.fields(cls)
        if f.init
    ]

    def convert(value: Any) -> Any:
        if not isinstance(value, dict):
            raise Invalid(
                "dataclass_type",
                f"Input should be a dictionary or an instance of {cls.__name__}",
                value,
                ctx={"class_name": cls.__name__},
            )
        return cls(**_dataclass_kwargs(fields, value))

    return convert


def _dataclass_kwargs(
    fields: list[tuple[str, Converter, bool]], value: dict[str, Any]
) -> dict[str, Any]:
    kwargs = {}
    failures: list[Invalid] = []
    for name, convert, has_default in fields:
        if name not in value:
            if not has_default:
                failures.append(Invalid("missing", "Field required", value, (name,)))
            continue
        try:
            kwargs[name] = convert(value[name])
        except Invalid as exc:
            failures.extend(exc.at(name).items())
    if failures:
        raise together(failures)  # every failing field, as pydantic reports them
    return kwargs


def _typeddict_converter(cls: Any, where: str) -> Converter:
    fields = [
        (name, json_converter(_unannotated(hint), f"{where}.{name}"), not required)
        for name, hint, required in typeddict_keys(cls, where)
    ]

    def convert(value: Any) -> Any:
        if not isinstance(value, dict):
            raise Invalid("dict_type", "Input should be a valid dictionary", value)
        return _dataclass_kwargs(fields, value)  # unknown keys are dropped, as in pydantic

    return convert


def _unannotated(hint: Any) -> Any:
    return typing.get_args(hint)[0] if typing.get_origin(hint) is Annotated else hint


def _has_default(field: dataclasses.Field[Any]) -> bool:
    missing = dataclasses.MISSING
    return field.default is not missing or field.default_factory is not missing


def is_body_type(annotation: Any) -> bool:
    """Annotations read from the JSON body by default: dataclasses, TypedDicts, pydantic
    models, dicts, and lists of those."""
    inner, _ = unwrap_optional(annotation)
    if _is_structured(inner):
        return True
    if is_sequence(inner):
        # A bare ``list`` is a JSON array; ``list[str]`` is a repeated query parameter.
        args = typing.get_args(inner)
        return not args or is_body_type(args[0])
    return False


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or repr(annotation)
