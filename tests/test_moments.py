"""Dates, times and durations: asgi_bg's answers are pydantic's, reason included.

Each input goes through asgi_bg's converter (a request string, or a value of a JSON
body) and through pydantic itself (``TypeAdapter(T).validate_python``, as FastAPI
validates them); the error's type, message and ``ctx`` (or the value) must be equal, so
these tests fail the day pydantic words a reason differently.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from asgi_bg import App, Query
from asgi_bg._convert import Invalid, json_converter, string_converter
from asgi_bg.testing import AsyncTestClient

MOMENTS = (dt.date, dt.datetime, dt.time, dt.timedelta)

TEXT = [
    "", "x", "soon", "2024", "0", "-1", "+1", "1.5", ".5", "1.", "1e3", "1.5e3", "nan",
    "2024-13-01", "2024-02-30", "2024-02-29", "2023-02-29", "2024-5-6", "20240-05-06",
    "0000-01-01", "0001-01-01", "2024-05-06", "2024-05-06X", "2024-05-06T", "2024-05-06T7",
    "2024-05-06T07:08:09", "2024-05-06T00:00:00", "2024-05-06 07:08", "2024-05-06t00:00",
    "2024-05-06_00:00", "2024-05-06T25:00", "2024-05-06T07:60", "2024-05-06T07:08:",
    "2024-05-06T07:08:09.", "2024-05-06T07:08:09,5", "2024-05-06T07:08:09.5x",
    "2024-05-06T07:08:09Z", "2024-05-06T07:08:09+01", "2024-05-06T07:08:09+0500",
    "2024-05-06T07:08:09+05:60", "2024-05-06T07:08:09+25:00", "2024-05-06T07:08:09\u221205:00",
    "2024-05-06T00:00:00+05:00", "1700000000", "1700000000.5", "86400", "10000000000000000",
    "99999999999999999999", "07:08", "7:08", "07:8", "07:08:60", "25:00", "24:00",
    "07:08:09.1234567", "07:08:09Z", "07:08:09+25:00", "07:08:09+01:00", "12:00+05:3",
    "P", "PT", "P1D", "+P1D", "-PT1S", "P1W", "P1.5D", "P1.5DT1H", "P1H", "PT1D", "PT1HT",
    "P1Y2M3W4DT5H6M7.5S", "P999999999D", "P1000000000D", "P99999999999D", "1d", "1 d",
    "1 days", "1 DAYS", "1 dAy", "1 dayS", "1 day, 01:02:03", "1 Days, 1:02:03",
    "1 day, 24:00", "-1 day", "01:02:03", "99:59", "5:00", "12345", "1:02:03:04",
    "10000000000:00:00", "2400000001:00", "00:60:00", "-", "+", " 1", "1_0",
]  # fmt: skip
NUMBERS: list[Any] = [
    -1, 0, 3, 86399, 86400, 86400.0, 3.5, -3.5, -1.25, 0.9999996, -0.9999996, 1.2345675,
    2e10, 20000000001, 104154556722.63501, -20000000001.25, 1e15, -1e15, 253402300799999,
    253402300800000, 1e20, 5e-7, 2.5e-6, -2.5e-6, True, False, None, [], {},
]  # fmt: skip


def pydantics(kind: type, value: Any) -> Any:
    try:
        return ("ok", TypeAdapter(kind).validate_python(value))
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        ctx = {k: str(v) for k, v in error.get("ctx", {}).items()} or None
        return ("error", error["type"], error["msg"], ctx)


def ours(convert: Any, value: Any) -> Any:
    try:
        return ("ok", convert(value))
    except Invalid as exc:
        return ("error", exc.type, exc.msg, exc.ctx)


def offset(value: Any) -> Any:
    """The UTC offset a parsed datetime or time carries, to compare time zones too."""
    if isinstance(value, dt.datetime):
        return value.utcoffset()
    if isinstance(value, dt.time) and value.tzinfo is not None:
        return value.tzinfo.utcoffset(None)
    return None


def assert_same(mine: Any, theirs: Any) -> None:
    assert mine == theirs
    if mine[0] == "ok":
        assert type(mine[1]) is type(theirs[1])
        assert offset(mine[1]) == offset(theirs[1])


@pytest.mark.parametrize("kind", MOMENTS, ids=lambda k: k.__name__)
@pytest.mark.parametrize("text", TEXT)
def test_a_request_string_is_read_as_pydantic_reads_it(kind: type, text: str) -> None:
    assert_same(ours(string_converter(kind, "test"), text), pydantics(kind, text))


@pytest.mark.parametrize("kind", MOMENTS, ids=lambda k: k.__name__)
@pytest.mark.parametrize("value", NUMBERS, ids=repr)
def test_a_json_value_is_read_as_pydantic_reads_it(kind: type, value: Any) -> None:
    assert_same(ours(json_converter(kind, "test"), value), pydantics(kind, value))


@settings(max_examples=400, deadline=None, derandomize=True)
@given(text=st.text(alphabet="0123456789-:T.Z+ PDdayHMSW,t_s\u2212", max_size=24))
def test_any_string_of_these_characters_gets_pydantics_answer(text: str) -> None:
    for kind in MOMENTS:
        assert_same(ours(string_converter(kind, "test"), text), pydantics(kind, text))


@dataclass
class Booking:
    day: dt.date
    start: dt.datetime
    at: dt.time
    length: dt.timedelta


@pytest.mark.anyio
async def test_the_422_items_of_a_route_carry_pydantics_reasons() -> None:
    app = App()

    @app.post("/bookings")
    async def book(
        booking: Booking,
        since: Annotated[dt.date, Query()],
        until: dt.datetime | None = None,
    ) -> None: ...

    body = {"day": "2024-02-30", "start": 1e20, "at": -1, "length": "P1H"}
    response = await AsyncTestClient(app).post(
        "/bookings?since=2024-05-06T07:08&until=soon", json=body
    )
    assert response.status_code == 422
    items = response.json()["detail"]
    expected = [
        (["body", "day"], dt.date, "2024-02-30"),
        (["body", "start"], dt.datetime, 1e20),
        (["body", "at"], dt.time, -1),
        (["body", "length"], dt.timedelta, "P1H"),
        (["query", "since"], dt.date, "2024-05-06T07:08"),
        (["query", "until"], dt.datetime, "soon"),
    ]
    for loc, kind, value in expected:
        item = next(i for i in items if i["loc"] == loc)
        _, type_, msg, ctx = pydantics(kind, value)
        assert (item["type"], item["msg"], item.get("ctx")) == (type_, msg, ctx)
    assert len(items) == len(expected)
