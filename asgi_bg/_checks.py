"""Value checks of the markers (``gt``, ``ge``, ``lt``, ``le``, ``multiple_of``,
``min_length``, ``max_length``, ``pattern``), in pydantic's words.

The checks for a parameter are chosen at registration from its marker and its type; per
request they are a few comparisons after the conversion.
"""

from __future__ import annotations

import datetime as dt
import math
import operator
import re
import typing
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ._invalid import Invalid
from .exceptions import ConfigurationError

Converter = Callable[[Any], Any]
Check = Callable[[Any, Any], None]  # (converted value, raw input) -> None or Invalid

_BOUNDS = {
    "gt": (operator.gt, "greater_than", "greater than"),
    "ge": (operator.ge, "greater_than_equal", "greater than or equal to"),
    "lt": (operator.lt, "less_than", "less than"),
    "le": (operator.le, "less_than_equal", "less than or equal to"),
}


def with_checks(convert: Converter, checks: dict[str, Any], kind: str, where: str) -> Converter:
    """``convert`` followed by ``checks``; ``kind`` (see ``check_kind``) decides which
    checks apply: a check that cannot apply is a ``ConfigurationError``."""
    if not checks:
        return convert
    steps = [_check(name, limit, kind, where) for name, limit in checks.items()]

    def checked(raw: Any) -> Any:
        value = convert(raw)
        if value is not None:
            for step in steps:
                step(value, raw)
        return value

    return checked


def _check(name: str, limit: Any, kind: str, where: str) -> Check:
    if name in _BOUNDS:
        if kind not in ("number", "moment"):
            raise ConfigurationError(f"{where}: {name}= applies to numbers and dates only")
        return _bound(name, limit)
    if name == "multiple_of":
        if kind != "number":
            raise ConfigurationError(f"{where}: multiple_of= applies to numbers only")
        return _multiple_of(limit)
    if name == "pattern":
        if kind != "string":
            raise ConfigurationError(f"{where}: pattern= applies to strings only")
        return _pattern(limit, where)
    if kind in ("number", "moment", ""):
        raise ConfigurationError(f"{where}: {name}= applies to strings and collections only")
    return _length(name, limit, kind)


def _bound(name: str, limit: Any) -> Check:
    compare, type_, words = _BOUNDS[name]
    msg = f"Input should be {words} {limit}"

    def check(value: Any, raw: Any) -> None:
        if not compare(value, limit):
            raise Invalid(type_, msg, raw, ctx={name: limit})

    return check


def _multiple_of(limit: Any) -> Check:
    msg = f"Input should be a multiple of {limit}"

    def check(value: Any, raw: Any) -> None:
        divisor = Decimal(str(limit)) if isinstance(value, Decimal) else limit
        remainder = value % divisor
        # Floats: 0.3 % 0.1 is 0.0999..., so a remainder close to 0 or to the divisor
        # is a multiple, as pydantic decides it.
        if remainder == 0 or (
            isinstance(remainder, float)
            and (math.isclose(remainder, 0, abs_tol=1e-9) or math.isclose(remainder, divisor))
        ):
            return
        raise Invalid("multiple_of", msg, raw, ctx={"multiple_of": limit})

    return check


def _pattern(pattern: str, where: str) -> Check:
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ConfigurationError(f"{where}: pattern {pattern!r} is not a regex: {exc}") from exc
    msg = f"String should match pattern '{pattern}'"

    def check(value: Any, raw: Any) -> None:
        if compiled.search(value) is None:  # pydantic matches anywhere unless anchored
            raise Invalid("string_pattern_mismatch", msg, raw, ctx={"pattern": pattern})

    return check


def _length(name: str, limit: int, kind: str) -> Check:
    shorter = name == "min_length"
    if kind == "string":
        noun = "character" if limit == 1 else "characters"
        words = "at least" if shorter else "at most"
        type_ = "string_too_short" if shorter else "string_too_long"
        msg = f"String should have {words} {limit} {noun}"

        def check_string(value: Any, raw: Any) -> None:
            if (len(value) < limit) if shorter else (len(value) > limit):
                raise Invalid(type_, msg, raw, ctx={name: limit})

        return check_string
    return _collection_length(name, limit, kind, shorter)


def _collection_length(name: str, limit: int, kind: str, shorter: bool) -> Check:
    noun = "item" if limit == 1 else "items"
    words = "at least" if shorter else "at most"

    def check(value: Any, raw: Any) -> None:
        actual = len(value)
        if (actual < limit) if shorter else (actual > limit):
            raise Invalid(
                "too_short" if shorter else "too_long",
                f"{kind} should have {words} {limit} {noun} after validation, not {actual}",
                raw,
                ctx={"field_type": kind, name: limit, "actual_length": actual},
            )

    return check


_COLLECTIONS = {
    list: "List",
    set: "Set",
    frozenset: "Frozenset",
    tuple: "Tuple",
    dict: "Dictionary",
}


def check_kind(annotation: Any) -> str:
    """``"number"``, ``"moment"`` (dates and times), ``"string"``, a collection's name
    (``"List"``...) or ``""`` (no checks apply) for a converted value of ``annotation``."""
    origin = typing.get_origin(annotation) or annotation
    if origin in (int, float, Decimal):
        return "number"
    if origin in (dt.datetime, dt.date, dt.time, dt.timedelta):
        return "moment"
    if origin in (str, bytes):
        return "string"
    return _COLLECTIONS.get(origin, "")
