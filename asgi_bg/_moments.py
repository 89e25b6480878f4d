"""Dates, times and durations read the way pydantic reads them, with pydantic's words.

pydantic (through its ``speedate`` parser) reads a request string byte by byte and, when
the string is not what it wants, says why at the first byte that is wrong: "Input should
be a valid date or datetime, input is too short", with ``ctx.error`` holding the reason.
The readers here follow the same grammar in the same order, so a 422 carries the same
type, message and ``ctx`` as FastAPI's (``tests/test_moments.py`` compares them with
pydantic itself on a table of inputs). What they accept:

- a date: ``YYYY-MM-DD``; else a datetime (below) whose time of day is zero;
- a datetime: ``YYYY-MM-DD[T t _ space]HH:MM[:SS[.ffffff]][Z | ±HH[:]MM]``, or a number of
  Unix seconds (milliseconds above 2e10); else a date alone, at midnight;
- a time: ``HH:MM[:SS[.ffffff]]`` with an optional offset; a JSON number of seconds;
- a duration: ISO 8601 (``P3DT4H``, ``P1W``), ``[±]HH:MM[:SS[.f]]`` with any number of
  hours, ``N d[ays][,] [HH:MM:SS]``; a JSON number of seconds.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import math
import re
from collections.abc import Callable
from typing import Any, TypeVar

from ._invalid import Invalid

T = TypeVar("T")

_TOO_SHORT = "input is too short"
_EXTRA = "unexpected extra characters at the end of the input"
_DATE_SEP = "invalid date separator, expected `-`"
_TIME_SEP = "invalid time separator, expected `:`"
_DATETIME_SEP = "invalid datetime separator, expected `T`, `t`, `_` or space"
_TZ_MINUTE = "invalid timezone minute"
_DURATION_DAYS = '"day" identifier in duration not correctly formatted'
_TOO_LARGE = "a numeric value in the duration is too large"
_HOURS_TOO_LARGE = "durations may not exceed 999,999,999 hours"
_DAYS_TOO_LARGE = "durations may not exceed 999,999,999 days"
_AFTER_9999 = "dates after 9999 are not supported as unix timestamps"
_BEFORE_0000 = "dates before 0000 are not supported as unix timestamps"
_NAN = "NaN values not permitted"
_DATETIME_TEXT = "datetime_from_date_parsing"
_DATE_TEXT = "date_from_datetime_parsing"
_DATE_WORDS = "Input should be a valid date or datetime"

_MS_ABOVE = 20_000_000_000  # a larger timestamp counts milliseconds
_FIRST_SECOND = -62_167_219_200  # 0000-01-01T00:00:00
_LAST_SECOND = 253_402_300_799  # 9999-12-31T23:59:59
# PERF: the common well-formed spellings go to the standard library's parser (~0.5 µs
# instead of ~3 µs); anything else, or out of range, to the readers below.
_CLOCK = r"[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?(?:Z|[+-][0-9]{2}:[0-5][0-9])?"
_PLAIN_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_PLAIN_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ]" + _CLOCK)
_PLAIN_TIME = re.compile(_CLOCK)
_U32 = 2**32 - 1
_I64 = 2**63 - 1
_DIGITS = b"0123456789"
_IN = {
    part: f"invalid character in {part}"
    for part in ("year", "month", "day", "hour", "minute", "second")
}


class _Bad(Exception):
    """The reason a string is not a date, time or duration, in pydantic's words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _YearZero(_Bad):
    """Well formed, but before the first year Python has (pydantic's ``*_parsing``)."""


def _invalid(type_: str, words: str, value: Any, reason: str) -> Invalid:
    return Invalid(type_, f"{words}, {reason}", value, ctx={"error": reason})


def _parsing(type_: str, words: str) -> Callable[[Callable[[Any], T]], Callable[[Any], T]]:
    """A reader whose ``_Bad`` becomes pydantic's ``type_`` error, with its reason."""

    def wrap(read: Callable[[Any], T]) -> Callable[[Any], T]:
        @functools.wraps(read)
        def reader(value: Any) -> T:
            try:
                return read(value)
            except _Bad as exc:
                raise _invalid(type_, words, value, exc.reason) from None

        return reader

    return wrap


# --- bytes ----------------------------------------------------------------------------


def _digit(b: bytes, at: int, reason: str) -> int:
    if at < len(b) and b[at] in _DIGITS:
        return b[at] - 48
    raise _Bad(reason)


def _two(b: bytes, at: int, reason: str) -> int:
    return _digit(b, at, reason) * 10 + _digit(b, at + 1, reason)


def _byte(b: bytes, at: int) -> int | None:
    return b[at] if at < len(b) else None


# --- dates ----------------------------------------------------------------------------


def _month_days(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _date_part(b: bytes) -> tuple[int, int, int]:
    """``YYYY-MM-DD`` at the start of ``b`` (what follows is the caller's)."""
    if len(b) < 10:
        raise _Bad(_TOO_SHORT)
    year = _two(b, 0, _IN["year"]) * 100 + _two(b, 2, _IN["year"])
    if b[4] != 45:
        raise _Bad(_DATE_SEP)
    month = _two(b, 5, _IN["month"])
    if b[7] != 45:
        raise _Bad(_DATE_SEP)
    day = _two(b, 8, _IN["day"])
    if not 1 <= month <= 12:
        raise _Bad("month value is outside expected range of 1-12")
    if not 1 <= day <= _month_days(year, month):
        raise _Bad("day value is outside expected range")
    return year, month, day


# --- times ----------------------------------------------------------------------------


def _clock(b: bytes, at: int) -> tuple[int, int, int, int, int]:
    """``HH:MM[:SS[.f]]`` at ``at``: hour, minute, second, microsecond, end position."""
    if len(b) - at < 5:
        raise _Bad(_TOO_SHORT)
    hour = _two(b, at, _IN["hour"])
    if b[at + 2] != 58:
        raise _Bad(_TIME_SEP)
    minute = _two(b, at + 3, _IN["minute"])
    if hour > 23:
        raise _Bad("hour value is outside expected range of 0-23")
    if minute > 59:
        raise _Bad("minute value is outside expected range of 0-59")
    if _byte(b, at + 5) != 58:
        return hour, minute, 0, 0, at + 5
    second = _two(b, at + 6, _IN["second"])
    if second > 59:
        raise _Bad("second value is outside expected range of 0-59")
    end = at + 8
    if _byte(b, end) not in (46, 44):  # "." or ","
        return hour, minute, second, 0, end
    digits = re.match(rb"[0-9]*", b[end + 1 :])
    fraction = digits.group() if digits else b""
    if not fraction:
        raise _Bad("second fraction digits missing after `.`")
    # Beyond six digits the rest is cut off, as pydantic does.
    micro = int(fraction[:6].ljust(6, b"0"))
    return hour, minute, second, micro, end + 1 + len(fraction)


def _offset(b: bytes, at: int) -> int | None:
    """The offset after a time (``Z``, ``+05:00``, ``-0800``), in seconds; the input
    must end there."""
    if at >= len(b):
        return None
    sign, at = _offset_sign(b, at)
    if sign == 0:
        offset = 0
    else:
        hours = _two(b, at, "invalid timezone hour")
        after = _byte(b, at + 2)
        if after == 58:
            at += 3
            first = _digit(b, at, _TZ_MINUTE)
        elif after is not None and after in _DIGITS:
            at += 2
            first = after - 48
        else:
            raise _Bad(_TZ_MINUTE)
        minutes = first * 10 + _digit(b, at + 1, _TZ_MINUTE)
        if minutes >= 60:
            raise _Bad("timezone minute value is outside expected range of 0-59")
        offset = sign * (hours * 3600 + minutes * 60)
        if abs(offset) >= 86_400:
            raise _Bad("timezone offset must be less than 24 hours")
        at += 2
    if len(b) > at:
        raise _Bad(_EXTRA)
    return offset


def _offset_sign(b: bytes, at: int) -> tuple[int, int]:
    """0 for ``Z``, else +1 or -1 (ISO 8601's minus sign, U+2212, too), and what follows."""
    char = b[at]
    if char in b"Zz":
        return 0, at + 1
    if char in b"+-":
        return (1 if char == 43 else -1), at + 1
    if b[at : at + 3] == "\u2212".encode():
        return -1, at + 3
    raise _Bad("invalid timezone sign")


def _tz(offset: int | None) -> dt.tzinfo | None:
    if offset is None:
        return None
    return dt.UTC if offset == 0 else dt.timezone(dt.timedelta(seconds=offset))


def _time_text(b: bytes, at: int) -> dt.time:
    hour, minute, second, micro, end = _clock(b, at)
    return dt.time(hour, minute, second, micro, tzinfo=_tz(_offset(b, end)))


# --- timestamps -----------------------------------------------------------------------


def _number(b: bytes) -> int | float | None:
    """A number as pydantic reads one in a string: ``-12`` or ``+3``, or with a dot
    (``1.5``, ``.5``, ``1.5e3``); ``1e3`` is no number there."""
    if 46 in b:
        if re.fullmatch(rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", b):
            return float(b)
        return None
    if re.fullmatch(rb"[+-]?[0-9]+", b) is None:
        return None
    number = int(b)
    return number if abs(number) <= _I64 else None


def _from_timestamp(stamp: int, micro: int = 0) -> dt.datetime:
    """Unix seconds (milliseconds above 2e10) as a UTC datetime."""
    if abs(stamp) > _MS_ABOVE:
        seconds = -(-stamp // 1000) if stamp < 0 else stamp // 1000
        extra = (stamp - seconds * 1000) * 1000
        if extra < 0:
            seconds, extra = seconds - 1, extra + 1_000_000
        micro += extra
    else:
        seconds = stamp
    seconds, micro = seconds + micro // 1_000_000, micro % 1_000_000
    if seconds < _FIRST_SECOND:
        raise _Bad(_BEFORE_0000)
    if seconds > _LAST_SECOND:
        raise _Bad(_AFTER_9999)
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
        seconds=seconds, microseconds=micro
    )


def _from_float_text(number: float) -> dt.datetime:
    """A timestamp with a fraction, read from a string: milliseconds above 2e10."""
    if abs(number) > _MS_ABOVE:
        number /= 1000
    seconds = math.floor(number)
    return _from_timestamp(seconds, round((number - seconds) * 1_000_000))


def _from_float(number: float) -> dt.datetime:
    """A JSON number of seconds (milliseconds above 2e10) as a UTC datetime.

    As pydantic does it: the whole part rounded down, the fraction's size added to it
    (so -1.25 is 1.75 seconds before 1970, as in pydantic).
    """
    if math.isnan(number):
        raise _Bad(_NAN)
    if math.isinf(number):
        raise _Bad(_AFTER_9999 if number > 0 else _BEFORE_0000)
    unit = 1000 if abs(number) > _MS_ABOVE else 1_000_000
    fraction = abs(number - math.trunc(number)) * unit
    stamp = max(-_I64, min(_I64, math.floor(number)))
    return _from_timestamp(stamp, math.floor(fraction + 0.5))


# --- datetimes ------------------------------------------------------------------------


def _datetime_text(b: bytes) -> dt.datetime:
    """RFC 3339 with pydantic's freedoms, else a number of Unix seconds."""
    try:
        year, month, day = _date_part(b)
        if _byte(b, 10) not in (84, 116, 32, 95):  # T t space _
            raise _Bad(_DATETIME_SEP)
        clock = _time_text(b, 11)
        return dt.datetime.combine(_civil_date(year, month, day), clock)
    except _YearZero:
        raise
    except _Bad:
        number = _number(b)
        if number is None:
            raise
    if isinstance(number, int):
        return _from_timestamp(number)
    return _from_float_text(number)


def _civil_date(year: int, month: int, day: int) -> dt.date:
    if year == 0:
        raise _YearZero("year 0 is out of range")  # a Python date starts at year 1
    return dt.date(year, month, day)


def _from_number(value: float) -> dt.datetime:
    """A JSON number of Unix seconds as a UTC datetime."""
    if isinstance(value, int):
        return _from_timestamp(max(-_I64, min(_I64, value)))
    return _from_float(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def to_datetime(value: Any) -> dt.datetime:
    """pydantic's lax ``datetime``: text, or a JSON number of Unix seconds."""
    if isinstance(value, dt.datetime):
        return value
    words = "Input should be a valid datetime"
    if _is_number(value):
        try:
            return _from_number(value)
        except _Bad as exc:
            raise _invalid("datetime_parsing", words, value, exc.reason) from None
    if not isinstance(value, str):
        raise Invalid("datetime_type", words, value)
    if _PLAIN_DATETIME.fullmatch(value):
        with contextlib.suppress(ValueError):  # out of range: the reader says why
            return dt.datetime.fromisoformat(value)
    try:
        return _datetime_or_date(value.encode())
    except _YearZero as exc:
        raise _invalid("datetime_parsing", words, value, exc.reason) from None
    except _Bad as exc:
        raise _invalid(_DATETIME_TEXT, f"{words} or date", value, exc.reason) from None


def _datetime_or_date(b: bytes) -> dt.datetime:
    """A datetime, else a date alone at midnight; the reason given is the date's."""
    try:
        return _datetime_text(b)
    except _Bad as exc:
        if isinstance(exc, _YearZero) or isinstance(_number(b), int):
            raise  # a timestamp out of range: read as a date it fails the same way
    return dt.datetime.combine(_exact_date(b), dt.time())


def _exact_date(b: bytes) -> dt.date:
    year, month, day = _date_part(b)
    if len(b) > 10:
        raise _Bad(_EXTRA)
    return _civil_date(year, month, day)


# --- dates ----------------------------------------------------------------------------


def to_date(value: Any) -> dt.date:
    """pydantic's lax ``date``: ``YYYY-MM-DD``, else a datetime at midnight exactly."""
    if isinstance(value, dt.datetime):
        return _day_of(value, value)
    if isinstance(value, dt.date):
        return value
    try:
        if _is_number(value):
            return _day_of(_from_number(value), value)
        if not isinstance(value, str):
            raise Invalid("date_type", "Input should be a valid date", value)
        if _PLAIN_DATE.fullmatch(value):
            with contextlib.suppress(ValueError):
                return dt.date.fromisoformat(value)
        b = value.encode()
        try:
            return _exact_date(b)
        except _YearZero as exc:
            words = "Input should be a valid date in the format YYYY-MM-DD"
            raise _invalid("date_parsing", words, value, exc.reason) from None
        except _Bad:
            return _day_of(_datetime_text(b), value)  # the reason given is the datetime's
    except _Bad as exc:
        raise _invalid(_DATE_TEXT, _DATE_WORDS, value, exc.reason) from None


def _day_of(moment: dt.datetime, value: Any) -> dt.date:
    if moment.time() != dt.time():
        raise Invalid(
            "date_from_datetime_inexact",
            "Datetimes provided to dates should have zero time - e.g. be exact dates",
            value,
        )
    return moment.date()


# --- times ----------------------------------------------------------------------------


@_parsing("time_parsing", "Input should be in a valid time format")
def to_time(value: Any) -> dt.time:
    """pydantic's lax ``time``: ``HH:MM[:SS[.f]]`` with an offset, or JSON seconds."""
    if isinstance(value, dt.time):
        return value
    if _is_number(value):
        return _time_of_day(value)
    if not isinstance(value, str):
        raise Invalid("time_type", "Input should be a valid time", value)
    if _PLAIN_TIME.fullmatch(value):
        with contextlib.suppress(ValueError):
            return dt.time.fromisoformat(value)
    return _time_text(value.encode(), 0)


def _time_of_day(number: float) -> dt.time:
    """Seconds since midnight (a JSON number), in UTC as pydantic gives them."""
    if math.isnan(number):
        raise _Bad(_NAN)
    if number < 0:
        raise _Bad("time in seconds should be positive")
    seconds = math.floor(min(number, 86_400))
    micro = math.floor((number - seconds) * 1_000_000 + 0.5) if seconds < 86_400 else 0
    seconds, micro = seconds + micro // 1_000_000, micro % 1_000_000
    if seconds >= 86_400:
        raise _Bad("numeric times may not exceed 86,399 seconds")
    hour, rest = divmod(seconds, 3600)
    return dt.time(hour, rest // 60, rest % 60, micro, tzinfo=dt.UTC)


# --- durations ------------------------------------------------------------------------


@_parsing("time_delta_parsing", "Input should be a valid timedelta")
def to_timedelta(value: Any) -> dt.timedelta:
    """pydantic's lax ``timedelta``: ISO 8601, ``[D days, ]HH:MM:SS``, or JSON seconds."""
    if isinstance(value, dt.timedelta):
        return value
    if isinstance(value, int | float):  # a bool is 0 or 1 second, as in pydantic
        return _seconds(value)
    if not isinstance(value, str):
        raise Invalid("time_delta_type", "Input should be a valid timedelta", value)
    return _duration_text(value.encode())


def _seconds(number: float) -> dt.timedelta:
    """A JSON number of seconds; microseconds rounded half away from zero (pydantic's)."""
    if math.isnan(number):
        raise _Bad(_NAN)
    size = abs(number)
    if size >= 86_400 * 1_000_000_000:
        raise _Bad(_DAYS_TOO_LARGE)
    whole = math.trunc(size)
    delta = dt.timedelta(seconds=whole, microseconds=math.floor((size - whole) * 1_000_000 + 0.5))
    return -delta if number < 0 else delta


def _duration_text(b: bytes) -> dt.timedelta:
    if not b:
        raise _Bad(_TOO_SHORT)
    at = 1 if b[0] in b"+-" else 0
    if _byte(b, at) == 80:  # "P"
        day, second, micro = _iso_duration(b, at + 1)
    elif b"d" in b or b"D" in b or len(b) - at < 5:
        day, second, micro = _days_clock(b, at)
    else:
        day, second, micro = _clock_duration(b, at)
    second = _u32(second + micro // 1_000_000)
    day = _u32(day + second // 86_400)
    if day > 999_999_999:
        raise _Bad(_DAYS_TOO_LARGE)
    delta = dt.timedelta(day, second % 86_400, micro % 1_000_000)
    return -delta if b[0] == 45 else delta


def _u32(value: int) -> int:
    if value > _U32:
        raise _Bad(_TOO_LARGE)
    return value


def _whole(b: bytes, at: int) -> tuple[int, int]:
    """Digits at ``at`` (at least one) as a number, and the position after them."""
    found = re.match(rb"[0-9]+", b[at:])
    if found is None:
        raise _Bad("invalid digit in duration")
    end = at + found.end()
    # pydantic stops at the first digit that overflows a 32-bit number.
    return _u32(int(found.group())), end


def _quantity(b: bytes, at: int) -> tuple[int, float | None, int]:
    """``12`` or ``1.5`` (``,`` too) in an ISO duration: whole, fraction, end."""
    value, at = _whole(b, at)
    if _byte(b, at) not in (46, 44):
        return value, None, at
    found = re.match(rb"[0-9]*", b[at + 1 :])
    digits = found.group() if found else b""
    fraction = int(digits) / 10 ** len(digits) if digits else 0.0
    return value, fraction, at + 1 + len(digits)


_TIME_UNITS = {72: 3600, 77: 60, 83: 1}  # H M S
_DATE_UNITS = {89: 365, 77: 30, 87: 7, 68: 1}  # Y M W D


def _iso_duration(b: bytes, at: int) -> tuple[int, int, int]:
    """``P[nY][nM][nW][nD][T[nH][nM][nS]]``, a fraction on the last quantity only."""
    in_time = fraction_seen = False
    day = second = micro = 0
    while at < len(b):
        if b[at] == 84:  # "T"
            if in_time:
                raise _Bad("`t` character repeated in duration")
            in_time = True
        else:
            value, fraction, at = _quantity(b, at)
            if fraction_seen:
                raise _Bad("quantity fraction invalid in duration")
            fraction_seen = fraction is not None
            if in_time:
                second, micro = _time_quantity(b, at, value, fraction, second, micro)
            else:
                day, second, micro = _date_quantity(b, at, value, fraction, (day, second, micro))
        at += 1
    if at < 3:
        raise _Bad(_TOO_SHORT)
    return day, second, micro


def _time_quantity(
    b: bytes, at: int, value: int, fraction: float | None, second: int, micro: int
) -> tuple[int, int]:
    whole, rest = _scaled(value, fraction, _unit(_TIME_UNITS, b, at, "time"))
    return _u32(second + whole), _u32(micro + round(rest * 1_000_000))


def _date_quantity(
    b: bytes, at: int, value: int, fraction: float | None, so_far: tuple[int, int, int]
) -> tuple[int, int, int]:
    day, second, micro = so_far
    whole, rest = _scaled(value, fraction, _unit(_DATE_UNITS, b, at, "date"))
    seconds = rest * 86_400
    whole_seconds = math.trunc(seconds)
    micro += round((seconds - whole_seconds) * 1_000_000)
    return _u32(day + whole), _u32(second + whole_seconds), micro


def _unit(units: dict[int, int], b: bytes, at: int, part: str) -> int:
    unit = units.get(_byte(b, at) or 0)
    if unit is None:
        raise _Bad(f"quantity invalid in {part} part of duration")
    return unit


def _scaled(value: int, fraction: float | None, unit: int) -> tuple[int, float]:
    """``value.fraction`` units: the whole count (within u32, as pydantic checks it) and
    the fraction of one count left over."""
    whole = _u32(value * unit)
    if fraction is None:
        return whole, 0.0
    extra = fraction * unit
    part = math.trunc(extra)
    return _u32(whole + part), extra - part


def _days_clock(b: bytes, at: int) -> tuple[int, int, int]:
    """``N d``, ``N days``, ``Nd, HH:MM:SS``...: days, then an optional clock."""
    if at >= len(b):
        raise _Bad(_TOO_SHORT)
    day, at = _whole(b, at)
    if _byte(b, at) == 32:
        at += 1
    if _byte(b, at) not in (100, 68):  # d D
        raise _Bad(_DURATION_DAYS)
    at += 1
    if _byte(b, at) in (97, 65):  # the rest of "day(s)" or "DAY(S)", one case
        pair = b[at : at + 2]
        if pair not in (b"ay", b"AY"):
            raise _Bad(_DURATION_DAYS)
        if at + 2 >= len(b):
            return day, 0, 0
        at += 3 if b[at + 2 : at + 3] == (b"s" if pair == b"ay" else b"S") else 2
    at += 1 if _byte(b, at) == 44 else 0  # ","
    at += 1 if _byte(b, at) == 32 else 0  # " "
    if at >= len(b):
        return day, 0, 0
    more, second, micro = _clock_duration(b, at)
    if more:  # after days, the clock holds less than a day
        raise _Bad(_HOURS_TOO_LARGE)
    return day, second, micro


def _clock_duration(b: bytes, at: int) -> tuple[int, int, int]:
    """``H:MM[:SS[.f]]`` with any number of hours (up to 2.4 billion)."""
    if len(b) - at < 5:
        raise _Bad(_TOO_SHORT)
    hours_text, colon, rest = b[at:].partition(b":")
    if not colon:
        raise _Bad("invalid character in hour")
    if len(hours_text) > 10:
        raise _Bad(_HOURS_TOO_LARGE)
    if any(char not in _DIGITS for char in hours_text):
        raise _Bad("invalid character in hour")
    hours = int(hours_text or b"0")
    if hours > 2_400_000_000:
        raise _Bad(_HOURS_TOO_LARGE)
    clock = b"00:" + rest[:12]  # a fraction past six digits is cut off
    _, minute, second, micro, end = _clock(clock, 0)
    if len(clock) > end:
        raise _Bad(_EXTRA)
    day, hours = divmod(hours, 24)
    return day, hours * 3600 + minute * 60 + second, micro
