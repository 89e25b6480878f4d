"""Marker checks, the types beyond the basics, pydantic's lax conversions, JSON-only bodies.

The error words are pydantic's, as a FastAPI client reads them. Every async test runs on
asyncio and on trio.
"""

import datetime as dt
import enum
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal, NotRequired, TypedDict

import pytest
from pydantic import TypeAdapter, ValidationError

from asgi_bg import (
    App,
    BackgroundTask,
    Body,
    ConfigurationError,
    Cookie,
    Header,
    Path,
    Query,
)
from asgi_bg._convert import Invalid, string_converter
from asgi_bg.testing import AsyncTestClient, TestResponse

pytestmark = pytest.mark.anyio


def detail(response: TestResponse) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    errors: list[dict[str, Any]] = response.json()["detail"]
    return errors


# --- checks ----------------------------------------------------------------------------------


async def test_number_checks_answer_with_pydantic_words_and_context() -> None:
    app = App()

    @app.get("/items/{item_id}")
    async def read(
        item_id: Annotated[int, Path(ge=1)],
        size: Annotated[float, Query(gt=0, lt=10.5)] = 1,
        step: Annotated[int, Query(multiple_of=5)] = 5,
        top: Annotated[int, Query(le=3)] = 0,
    ) -> list[Any]:
        return [item_id, size, step, top]

    client = AsyncTestClient(app)
    assert (await client.get("/items/1?size=10&step=15&top=3")).json() == [1, 10.0, 15, 3]
    assert detail(await client.get("/items/0?size=0&step=7&top=4")) == [
        {
            "type": "greater_than_equal",
            "loc": ["path", "item_id"],
            "msg": "Input should be greater than or equal to 1",
            "input": "0",
            "ctx": {"ge": 1},
        },
        {
            "type": "greater_than",
            "loc": ["query", "size"],
            "msg": "Input should be greater than 0",
            "input": "0",
            "ctx": {"gt": 0},
        },
        {
            "type": "multiple_of",
            "loc": ["query", "step"],
            "msg": "Input should be a multiple of 5",
            "input": "7",
            "ctx": {"multiple_of": 5},
        },
        {
            "type": "less_than_equal",
            "loc": ["query", "top"],
            "msg": "Input should be less than or equal to 3",
            "input": "4",
            "ctx": {"le": 3},
        },
    ]
    assert detail(await client.get("/items/1?size=10.5"))[0]["type"] == "less_than"


async def test_string_and_collection_checks_on_query_header_cookie_and_body() -> None:
    app = App()

    @app.post("/")
    async def create(
        q: Annotated[str, Query(min_length=3, max_length=5, pattern="^a")],
        agent: Annotated[str, Header(max_length=1)] = "x",
        session: Annotated[str, Cookie(min_length=1)] = "s",
        tags: Annotated[list[str], Query(min_length=2)] = ["a", "b"],  # noqa: B006
        note: Annotated[str, Body(max_length=2)] = "",
    ) -> list[Any]:
        return [q, agent, session, tags, note]

    client = AsyncTestClient(app)
    assert (await client.post("/?q=abc", json="ok")).json() == ["abc", "x", "s", ["a", "b"], "ok"]
    errors = detail(
        await client.post(
            "/?q=ab&tags=one", headers={"agent": "xy"}, cookies={"session": ""}, json="long"
        )
    )
    assert [(e["loc"], e["type"], e["msg"], e.get("ctx")) for e in errors] == [
        (
            ["query", "q"],
            "string_too_short",
            "String should have at least 3 characters",
            {"min_length": 3},
        ),
        (
            ["header", "agent"],
            "string_too_long",
            "String should have at most 1 character",
            {"max_length": 1},
        ),
        (
            ["cookie", "session"],
            "string_too_short",
            "String should have at least 1 character",
            {"min_length": 1},
        ),
        (
            ["query", "tags"],
            "too_short",
            "List should have at least 2 items after validation, not 1",
            {"field_type": "List", "min_length": 2, "actual_length": 1},
        ),
        (
            ["body"],
            "string_too_long",
            "String should have at most 2 characters",
            {"max_length": 2},
        ),
    ]
    pattern = detail(await client.post("/?q=bcd", json=""))[0]
    assert (pattern["type"], pattern["msg"], pattern["ctx"]) == (
        "string_pattern_mismatch",
        "String should match pattern '^a'",
        {"pattern": "^a"},
    )


def test_a_check_that_cannot_apply_is_refused_at_registration() -> None:
    app = App()
    with pytest.raises(ConfigurationError, match=r"'q'.*gt= applies to numbers"):

        @app.get("/")
        async def endpoint(q: Annotated[str, Query(gt=1)]) -> None: ...

    with pytest.raises(ConfigurationError, match=r"'n'.*min_length= applies to strings"):

        @app.get("/n")
        async def numbers(n: Annotated[int, Query(min_length=1)]) -> None: ...

    with pytest.raises(ConfigurationError, match=r"Path\(\) but the route's path has no"):

        @app.get("/p")
        async def path(p: Annotated[int, Path()]) -> None: ...


async def test_fastapi_keywords_import_and_regex_is_checked_as_pattern() -> None:
    # FastAPI's deprecated ``regex=`` is still a check there, so here it is ``pattern``;
    # ``example=`` checks nothing and is passed over (mypy flags both).
    app = App()

    @app.get("/")
    async def endpoint(q: str = Query(regex="^a", example="abc", max_length=3)) -> str:  # type: ignore[call-arg]
        return q

    async with AsyncTestClient(app) as client:
        assert (await client.get("/?q=abc")).json() == "abc"
        assert detail(await client.get("/?q=xyz"))[0]["type"] == "string_pattern_mismatch"
        assert detail(await client.get("/?q=along"))[0]["type"] == "string_too_long"


# --- types -----------------------------------------------------------------------------------


async def test_decimal_dates_times_durations_and_bytes_from_the_query() -> None:
    app = App()

    @app.get("/")
    async def endpoint(
        price: Decimal,
        at: dt.datetime,
        day: dt.date,
        clock: dt.time,
        wait: dt.timedelta,
        raw: bytes,
    ) -> list[str]:
        return [repr(price), repr(at), repr(day), repr(clock), repr(wait), repr(raw)]

    query = "price=1.50&at=2024-01-02T03:04:05Z&day=2024-01-02&clock=03:04&wait=P1DT2H&raw=hi"
    assert (await AsyncTestClient(app).get(f"/?{query}")).json() == [
        "Decimal('1.50')",
        "datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)",
        "datetime.date(2024, 1, 2)",
        "datetime.time(3, 4)",
        "datetime.timedelta(days=1, seconds=7200)",
        "b'hi'",
    ]
    bad = "price=x&at=never&day=2024-01-02T01:00:00&clock=noon&wait=soon&raw=ok"
    assert [
        (e["loc"][1], e["type"]) for e in detail(await AsyncTestClient(app).get(f"/?{bad}"))
    ] == [
        ("price", "decimal_parsing"),
        ("at", "datetime_from_date_parsing"),
        ("day", "date_from_datetime_inexact"),
        ("clock", "time_parsing"),
        ("wait", "time_delta_parsing"),
    ]


async def test_numbers_as_unix_time_and_seconds_and_returned_values_encode() -> None:
    app = App()

    @app.get("/")
    async def endpoint(at: dt.datetime, wait: dt.timedelta, price: Decimal) -> dict[str, Any]:
        return {"at": at, "wait": wait, "price": price, "half": price / 2}

    response = await AsyncTestClient(app).get("/?at=0&wait=PT1M30.5S&price=3")
    assert response.json() == {
        "at": "1970-01-01T00:00:00+00:00",
        "wait": 90.5,
        "price": 3,
        "half": 1.5,
    }


class Address(TypedDict):
    city: str
    zip: NotRequired[str]


@dataclass
class Point:
    x: int
    y: int = 0


@dataclass
class Place:
    name: str
    corner: Point
    address: Address
    tags: set[str]
    path: tuple[Point, ...] = ()


async def test_typeddict_and_nested_dataclass_bodies() -> None:
    app = App()

    @app.post("/")
    async def create(place: Place) -> list[Any]:
        return [
            place.corner,
            place.address,
            sorted(place.tags),
            type(place.tags).__name__,
            place.path,
        ]

    client = AsyncTestClient(app)
    body = {
        "name": "home",
        "corner": {"x": 1},
        "address": {"city": "Oslo", "extra": "dropped"},
        "tags": ["a", "a", "b"],
        "path": [{"x": 2, "y": 3}],
    }
    assert (await client.post("/", json=body)).json() == [
        {"x": 1, "y": 0},
        {"city": "Oslo"},
        ["a", "b"],
        "set",
        [{"x": 2, "y": 3}],
    ]
    body["address"] = {"zip": "0150"}
    assert detail(await client.post("/", json=body)) == [
        {
            "type": "missing",
            "loc": ["body", "address", "city"],
            "msg": "Field required",
            "input": {"zip": "0150"},
        }
    ]


@dataclass
class Lax:
    count: int
    ratio: float
    flag: bool
    name: str


async def test_json_conversions_follow_pydantic_lax_mode() -> None:
    app = App()

    @app.post("/")
    async def create(item: Lax) -> Lax:
        return item

    client = AsyncTestClient(app)
    response = await client.post(
        "/", json={"count": "5", "ratio": "0.5", "flag": "yes", "name": "n"}
    )
    assert response.json() == {"count": 5, "ratio": 0.5, "flag": True, "name": "n"}
    response = await client.post("/", json={"count": 5.0, "ratio": 1, "flag": 0, "name": "n"})
    assert response.json() == {"count": 5, "ratio": 1.0, "flag": False, "name": "n"}
    errors = detail(await client.post("/", json={"count": 5.5, "ratio": [], "flag": 2, "name": 1}))
    assert [(e["loc"][1], e["type"], e["msg"]) for e in errors] == [
        (
            "count",
            "int_from_float",
            "Input should be a valid integer, got a number with a fractional part",
        ),
        ("ratio", "float_type", "Input should be a valid number"),
        ("flag", "bool_parsing", "Input should be a valid boolean, unable to interpret input"),
        ("name", "string_type", "Input should be a valid string"),
    ]  # every failing field, as pydantic lists them


# --- JSON only from a JSON request --------------------------------------------------------------


async def test_a_body_is_read_only_from_a_json_request() -> None:
    app = App()

    @app.post("/")
    async def create(item: Point) -> Point:
        return item

    client = AsyncTestClient(app)
    for content_type in ("application/json", "application/vnd.api+json; charset=utf-8"):
        response = await client.post(
            "/", content=b'{"x": 1}', headers={"content-type": content_type}
        )
        assert response.json() == {"x": 1, "y": 0}
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        response = await client.post(
            "/", content=b'{"x": 1}', headers={"content-type": content_type}
        )
        assert [e["loc"] for e in detail(response)] == [["body"]], content_type


# --- registration messages --------------------------------------------------------------------


def test_registration_errors_say_what_would_work() -> None:
    app = App()
    with pytest.raises(ConfigurationError, match="did you mean BackgroundTasks"):

        @app.get("/")
        async def singular(task: BackgroundTask) -> None: ...

    with pytest.raises(ConfigurationError, match=r"read from the JSON body: declare it Body\(\)"):

        @app.get("/q")
        async def structured(p: Annotated[dict[str, int], Query()]) -> None: ...

    with pytest.raises(ConfigurationError, match=r"field by field .* \(Query\(\), Header"):

        @app.get("/p/{p}")
        async def in_path(p: Point) -> None: ...


async def test_every_failing_field_and_item_of_a_body_is_listed() -> None:
    app = App()

    @app.post("/")
    async def create(points: list[Point]) -> int:
        return len(points)

    response = await AsyncTestClient(app).post("/", json=[{"x": "a"}, {"y": 1}, {"x": 2}])
    assert [(e["loc"], e["type"]) for e in detail(response)] == [
        (["body", 0, "x"], "int_parsing"),
        (["body", 1, "x"], "missing"),
    ]


async def test_a_body_without_a_content_type_is_not_read_as_json() -> None:
    # FastAPI's strict default: a cross-site fetch() may send a body with no type at all.
    app = App()

    @app.post("/")
    async def create(item: Point) -> Point:
        return item

    response = await AsyncTestClient(app).post("/", content=b'{"x": 1}')
    assert detail(response) == [
        {
            "type": "model_attributes_type",
            "loc": ["body"],
            "msg": "Input should be a valid dictionary or object to extract fields from",
            "input": '{"x": 1}',
        }
    ]


class Size(enum.Enum):
    small = "s"
    large = "l"


class Level(enum.IntEnum):
    low = 1
    high = 2


@pytest.mark.parametrize(
    ("kind", "text"),
    [(Size, "m"), (Level, "3"), (Literal["a"], "b"), (Literal[1, 2, "x"], "y")],
)
def test_enum_and_literal_errors_are_pydantics_with_their_context(kind: Any, text: str) -> None:
    with pytest.raises(ValidationError) as theirs:
        TypeAdapter(kind).validate_python(text)
    expected = theirs.value.errors(include_url=False)[0]
    with pytest.raises(Invalid) as ours:
        string_converter(kind, "test")(text)
    got = ours.value
    assert (got.type, got.msg, got.ctx) == (expected["type"], expected["msg"], expected["ctx"])
