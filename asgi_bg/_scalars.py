"""Parsers for the scalar types beyond ``str``/``int``/``float``/``bool``: ``Decimal``,
``datetime``, ``date``, ``time``, ``timedelta`` (in ``_moments``) and ``bytes``.

Each accepts what pydantic's lax mode accepts from a request string or decoded JSON
and raises ``Invalid`` with pydantic's error type, message and context.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from ._invalid import Invalid
from ._moments import to_date, to_datetime, to_time, to_timedelta


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
