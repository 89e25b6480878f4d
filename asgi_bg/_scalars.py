"""Parsers for the scalar types beyond ``str``/``int``/``float``/``bool``: ``Decimal``,
``datetime``, ``date``, ``time``, ``timedelta`` and ``bytes``.

Each accepts what pydantic's lax mode accepts from a request string or decoded JSON
(ISO 8601 text, numbers as Unix seconds or seconds of duration) and raises ``Invalid``
with pydantic's error type and message (without pydantic's detailed reason suffix).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from ._invalid import Invalid

T = TypeVar("T")

_UTC = dt.UTC
# pydantic reads a number above this as milliseconds since the epoch.
_MS_THRESHOLD = 2e10


def _number(value: Any) -> float | None:
    """``value`` as a number if it is one, or a string spelling one; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _from_timestamp(seconds: float) -> dt.datetime:
    if abs(seconds) > _MS_THRESHOLD:
        seconds /= 1000
    return dt.datetime.fromtimestamp(seconds, tz=_UTC)


def to_decimal(value: Any) -> Decimal:
    """A finite ``Decimal`` from a string or a number (a float through its repr)."""
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, str | int | float) and not isinstance(value, bool):
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise Invalid("decimal_parsing", "Input should be a valid decimal", value) from None
    else:
        raise Invalid("decimal_type", "Decimal input should be an integer, float or string", value)
    if not number.is_finite():
        raise Invalid("finite_number", "Input should be a finite number", value)
    return number


def to_datetime(value: Any) -> dt.datetime:
    """ISO 8601 (a date alone is its midnight) or Unix seconds (milliseconds if large)."""
    if isinstance(value, dt.datetime):
        return value
    seconds = _number(value)
    try:
        if seconds is not None:
            return _from_timestamp(seconds)
        if isinstance(value, str):
            return dt.datetime.fromisoformat(value)
    except (ValueError, OverflowError, OSError):
        pass
    raise Invalid("datetime_from_date_parsing", "Input should be a valid datetime or date", value)


def to_date(value: Any) -> dt.date:
    """ISO 8601 date, or a datetime / Unix time whose time of day is zero."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    parsed = _iso(dt.date.fromisoformat, value)
    if parsed is not None:
        return parsed
    try:
        moment = to_datetime(value)
    except Invalid:
        raise Invalid(
            "date_from_datetime_parsing", "Input should be a valid date or datetime", value
        ) from None
    if moment.time() != dt.time():
        raise Invalid(
            "date_from_datetime_inexact",
            "Datetimes provided to dates should have zero time - e.g. be exact dates",
            value,
        )
    return moment.date()


def to_time(value: Any) -> dt.time:
    """ISO 8601 time of day (``HH:MM[:SS[.ffffff]]`` with an optional offset)."""
    if isinstance(value, dt.time):
        return value
    parsed = _iso(dt.time.fromisoformat, value)
    if parsed is not None:
        return parsed
    raise Invalid("time_parsing", "Input should be in a valid time format", value)


_ISO_DURATION = re.compile(
    r"(?P<sign>[-+]?)P(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?"
)
_CLOCK_DURATION = re.compile(
    r"(?P<sign>[-+]?)(?:(?P<days>\d+) days?,? ?)?"
    r"(?:(?P<hours>\d+):)?(?P<minutes>\d+):(?P<seconds>\d+(?:\.\d+)?)"
)


def to_timedelta(value: Any) -> dt.timedelta:
    """Seconds as a number, ISO 8601 (``P3DT4H``), or ``[D day[s], ][HH:]MM:SS[.f]``."""
    if isinstance(value, dt.timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _bounded_timedelta(value, seconds=value)
    if isinstance(value, str):
        text = value.strip()
        found = _ISO_DURATION.fullmatch(text) or _CLOCK_DURATION.fullmatch(text)
        if found is not None and (text.lstrip("+-") not in ("P", "PT")):
            parts = {k: float(v) for k, v in found.groupdict().items() if v and k != "sign"}
            delta = _bounded_timedelta(value, **parts)
            return -delta if found["sign"] == "-" else delta
    raise Invalid("time_delta_parsing", "Input should be a valid timedelta", value)


def _bounded_timedelta(value: Any, **parts: float) -> dt.timedelta:
    try:
        return dt.timedelta(**parts)
    except OverflowError:
        raise Invalid("time_delta_parsing", "Input should be a valid timedelta", value) from None


def to_bytes(value: Any) -> bytes:
    """A string's UTF-8 bytes (pydantic's default for bytes in JSON)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise Invalid("bytes_type", "Input should be a valid bytes", value)


SCALAR_PARSERS = {
    Decimal: to_decimal,
    dt.datetime: to_datetime,
    dt.date: to_date,
    dt.time: to_time,
    dt.timedelta: to_timedelta,
    bytes: to_bytes,
}


def _iso(parse: Callable[[str], T], value: Any) -> T | None:
    """``parse(value)`` for a string it accepts, else None."""
    if not isinstance(value, str):
        return None
    try:
        return parse(value)
    except ValueError:
        return None
