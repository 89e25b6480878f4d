"""Signature-based injection: every row of the API.md table, validation, registration errors.

Every test runs on asyncio and on trio through ``AsyncTestClient``.
"""

# No ``from __future__ import annotations``: handlers name local classes in their
# annotations, which only eager annotations can resolve.
import enum
import functools
import inspect
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Optional, Union
from urllib.parse import quote

import pytest
import typing_extensions
from hypothesis import example, given, settings
from hypothesis import strategies as st

from asgi_bg import (
    App,
    BackgroundTasks,
    Body,
    ConfigurationError,
    Cookie,
    Depends,
    Header,
    HTMLResponse,
    PlainTextResponse,
    Query,
    Request,
    Response,
)
from asgi_bg.testing import AsyncTestClient, TestClient, TestResponse

pytestmark = pytest.mark.anyio


def errors(response: TestResponse) -> list[dict[str, Any]]:
    """The 422 ``detail`` list, checked for the documented shape."""
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list)
    for error in detail:
        assert isinstance(error["msg"], str) and isinstance(error["type"], str)
    return detail


def locs(response: TestResponse) -> list[list[Any]]:
    return [error["loc"] for error in errors(response)]


# --- path parameters -------------------------------------------------------------------


async def test_path_params_with_converters_reach_the_handler_converted() -> None:
    app = App()

    @app.get("/int/{n:int}")
    async def by_int(n: int) -> dict[str, Any]:
        return {"n": n, "type": type(n).__name__}

    @app.get("/float/{x:float}")
    async def by_float(x: float) -> dict[str, Any]:
        return {"x": x, "type": type(x).__name__}

    @app.get("/files/{rest:path}")
    async def by_path(rest: str) -> dict[str, Any]:
        return {"rest": rest}

    @app.get("/uuid/{u:uuid}")
    async def by_uuid(u: uuid.UUID) -> dict[str, Any]:
        return {"u": str(u), "type": type(u).__name__}

    @app.get("/str/{s}")
    async def by_str(s: str) -> dict[str, Any]:
        return {"s": s}

    client = AsyncTestClient(app)
    assert (await client.get("/int/-42")).json() == {"n": -42, "type": "int"}
    assert (await client.get("/float/2.5")).json() == {"x": 2.5, "type": "float"}
    assert (await client.get("/files/a/b/c.txt")).json() == {"rest": "a/b/c.txt"}
    value = uuid.uuid4()
    assert (await client.get(f"/uuid/{value}")).json() == {"u": str(value), "type": "UUID"}
    assert (await client.get("/str/hello%20world")).json() == {"s": "hello world"}


async def test_a_str_path_param_is_converted_to_its_annotation() -> None:
    app = App()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    client = AsyncTestClient(app)
    assert (await client.get("/items/7")).json() == {"item_id": 7}
    response = await client.get("/items/seven")
    assert locs(response) == [["path", "item_id"]]
    assert errors(response)[0]["type"] == "int_parsing"


async def test_a_converter_that_does_not_match_is_a_404_not_a_422() -> None:
    app = App()

    @app.get("/items/{item_id:int}")
    async def item(item_id: int) -> int:
        return item_id

    response = await AsyncTestClient(app).get("/items/seven")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


async def test_path_param_annotated_as_enum_and_uuid() -> None:
    class Color(enum.Enum):
        RED = "red"
        BLUE = "blue"

    app = App()

    @app.get("/colors/{color}")
    async def color(color: Color) -> dict[str, str]:
        return {"name": color.name}

    @app.get("/ids/{ident}")
    async def ident(ident: uuid.UUID) -> dict[str, int]:
        return {"version": ident.version or 0}

    client = AsyncTestClient(app)
    assert (await client.get("/colors/red")).json() == {"name": "RED"}
    assert locs(await client.get("/colors/green")) == [["path", "color"]]
    assert (await client.get(f"/ids/{uuid.uuid4()}")).json() == {"version": 4}
    assert errors(await client.get("/ids/not-a-uuid"))[0]["loc"] == ["path", "ident"]


# --- Request and BackgroundTasks --------------------------------------------------------


async def test_request_is_injected_by_annotation_whatever_the_name() -> None:
    app = App()

    @app.get("/here")
    async def here(req: Request) -> dict[str, str]:
        return {"path": req.url.path, "method": req.method}

    assert (await AsyncTestClient(app).get("/here")).json() == {"path": "/here", "method": "GET"}


async def test_background_tasks_is_the_same_object_in_handler_and_dependencies() -> None:
    seen: list[BackgroundTasks] = []

    def sync_dep(tasks: BackgroundTasks) -> None:
        seen.append(tasks)

    async def async_dep(tasks: BackgroundTasks, _: Annotated[None, Depends(sync_dep)]) -> None:
        seen.append(tasks)

    app = App()

    @app.get("/")
    async def handler(
        tasks: BackgroundTasks,
        also: BackgroundTasks,
        _: Annotated[None, Depends(async_dep)],
    ) -> str:
        seen.extend([tasks, also])
        return "ok"

    client = AsyncTestClient(app)
    await client.get("/")
    assert len(seen) == 4
    assert all(t is seen[0] for t in seen)
    await client.get("/")
    assert seen[4] is not seen[0], "each request gets its own collection"


# --- Depends in every spelling ----------------------------------------------------------


def get_query(q: str | None = None) -> str | None:
    return q


@pytest.mark.parametrize("spelling", ["annotated", "typing_extensions", "default"])
async def test_depends_in_every_spelling(spelling: str) -> None:
    app = App()
    if spelling == "annotated":

        @app.get("/")
        async def annotated(q: Annotated[str | None, Depends(get_query)]) -> Any:
            return {"q": q}

    elif spelling == "typing_extensions":

        @app.get("/")
        async def extensions(
            q: typing_extensions.Annotated[Union[str, None], Depends(get_query)],  # noqa: UP007
        ) -> Any:
            return {"q": q}

    else:

        @app.get("/")
        async def default(q: str = Depends(get_query)) -> Any:
            return {"q": q}

    client = AsyncTestClient(app)
    assert (await client.get("/?q=hello")).json() == {"q": "hello"}
    assert (await client.get("/")).json() == {"q": None}


class Paging:
    def __init__(self, skip: int = 0, limit: int = 10) -> None:
        self.skip = skip
        self.limit = limit


async def test_depends_without_argument_uses_the_class_annotation() -> None:
    app = App()

    @app.get("/items")
    async def items(paging: Paging = Depends()) -> dict[str, int]:  # noqa: B008
        return {"skip": paging.skip, "limit": paging.limit}

    @app.get("/annotated")
    async def annotated(paging: Annotated[Paging, Depends()]) -> dict[str, int]:
        return {"skip": paging.skip, "limit": paging.limit}

    client = AsyncTestClient(app)
    assert (await client.get("/items?skip=5")).json() == {"skip": 5, "limit": 10}
    assert (await client.get("/annotated?limit=3")).json() == {"skip": 0, "limit": 3}
    assert locs(await client.get("/items?skip=x&limit=y")) == [
        ["query", "skip"],
        ["query", "limit"],
    ]


class AsyncCallable:
    """A class whose instances are async callables: ``Depends(AsyncCallable)`` builds one."""

    def __init__(self, name: str = "anon") -> None:
        self.name = name

    async def __call__(self) -> str:
        return self.name


async def test_a_class_with_an_async_call_method_is_instantiated_not_awaited() -> None:
    app = App()

    @app.get("/")
    async def handler(dep: Annotated[AsyncCallable, Depends()]) -> dict[str, str]:
        return {"name": dep.name, "type": type(dep).__name__}

    response = await AsyncTestClient(app).get("/?name=zed")
    assert response.json() == {"name": "zed", "type": "AsyncCallable"}


async def test_a_callable_instance_is_a_dependency() -> None:
    class Checker:
        def __init__(self, word: str) -> None:
            self.word = word

        async def __call__(self, q: str = "") -> bool:
            return self.word in q

    app = App()

    @app.get("/")
    async def handler(found: Annotated[bool, Depends(Checker("bar"))]) -> dict[str, bool]:
        return {"found": found}

    client = AsyncTestClient(app)
    assert (await client.get("/?q=foobar")).json() == {"found": True}
    assert (await client.get("/?q=foo")).json() == {"found": False}


async def test_sub_dependencies_are_injected_by_the_same_rules() -> None:
    def token(x_token: Annotated[str, Header()]) -> str:
        return x_token

    async def user(tok: Annotated[str, Depends(token)], request: Request) -> str:
        return f"{tok}@{request.url.path}"

    app = App()

    @app.get("/me")
    async def me(who: Annotated[str, Depends(user)]) -> dict[str, str]:
        return {"who": who}

    client = AsyncTestClient(app)
    assert (await client.get("/me", headers={"x-token": "abc"})).json() == {"who": "abc@/me"}
    assert locs(await client.get("/me")) == [["header", "x-token"]]


async def test_a_dependency_is_called_once_per_request_unless_use_cache_is_false() -> None:
    calls: list[str] = []

    def counted() -> int:
        calls.append("counted")
        return len(calls)

    def uncached() -> int:
        calls.append("uncached")
        return len(calls)

    def via_sub(value: Annotated[int, Depends(counted)]) -> int:
        return value

    app = App()

    @app.get("/")
    async def handler(
        a: Annotated[int, Depends(counted)],
        b: Annotated[int, Depends(via_sub)],
        c: int = Depends(counted),
        d: int = Depends(uncached, use_cache=False),
        e: int = Depends(uncached, use_cache=False),
    ) -> dict[str, int]:
        return {"a": a, "b": b, "c": c, "d": d, "e": e}

    client = AsyncTestClient(app)
    body = (await client.get("/")).json()
    assert calls == ["counted", "uncached", "uncached"]
    assert body["a"] == body["b"] == body["c"] == 1
    assert body["d"] != body["e"]
    calls.clear()
    await client.get("/")
    assert calls.count("counted") == 1, "the cache lives for one request only"


async def test_def_async_generator_and_async_generator_dependencies() -> None:
    log: list[str] = []

    def plain() -> str:
        return "plain"

    async def coroutine() -> str:
        return "coroutine"

    def generator() -> Iterator[str]:
        log.append("gen enter")
        yield "generator"
        log.append("gen exit")

    async def async_generator() -> AsyncIterator[str]:
        log.append("agen enter")
        yield "async generator"
        log.append("agen exit")

    app = App()

    @app.get("/")
    async def handler(
        a: Annotated[str, Depends(plain)],
        b: Annotated[str, Depends(coroutine)],
        c: Annotated[str, Depends(generator)],
        d: Annotated[str, Depends(async_generator)],
    ) -> list[str]:
        log.append("handler")
        return [a, b, c, d]

    response = await AsyncTestClient(app).get("/")
    assert response.json() == ["plain", "coroutine", "generator", "async generator"]
    # Torn down after the response, in reverse order of entry.
    assert log == ["gen enter", "agen enter", "handler", "agen exit", "gen exit"]


async def test_def_handlers_and_dependencies_run_in_a_worker_thread_async_on_the_loop() -> None:
    loop_thread = threading.get_ident()
    threads: dict[str, int] = {}

    def sync_dep() -> None:
        threads["sync_dep"] = threading.get_ident()

    async def async_dep() -> None:
        threads["async_dep"] = threading.get_ident()

    app = App()

    @app.get("/sync")
    def sync_handler(
        _a: Annotated[None, Depends(sync_dep)], _b: Annotated[None, Depends(async_dep)]
    ) -> str:
        threads["sync_handler"] = threading.get_ident()
        return "sync"

    @app.get("/async")
    async def async_handler() -> str:
        threads["async_handler"] = threading.get_ident()
        return "async"

    client = AsyncTestClient(app)
    assert (await client.get("/sync")).json() == "sync"
    assert (await client.get("/async")).json() == "async"
    assert threads["async_handler"] == loop_thread
    assert threads["async_dep"] == loop_thread
    assert threads["sync_handler"] != loop_thread
    assert threads["sync_dep"] != loop_thread


# --- Header and Cookie ------------------------------------------------------------------


async def test_header_names_convert_underscores_and_take_an_alias() -> None:
    app = App()

    @app.get("/")
    async def handler(
        user_agent: Annotated[str, Header()],
        token: Annotated[str, Header(alias="X-Auth-Token")],
        raw: Annotated[str | None, Header(convert_underscores=False)] = None,
        count: int = Header(0, alias="x-count"),
        tags: Annotated[list[str] | None, Header(alias="x-tag")] = None,
    ) -> dict[str, Any]:
        return {"ua": user_agent, "token": token, "raw": raw, "count": count, "tags": tags}

    client = AsyncTestClient(app)
    response = await client.get(
        "/",
        headers={"User-Agent": "probe/1.0", "x-auth-token": "secret", "X-Count": "3"},
    )
    assert response.json() == {
        "ua": "probe/1.0",
        "token": "secret",
        "raw": None,
        "count": 3,
        "tags": None,
    }
    response = await client.get("/", headers={"x-auth-token": "t", "x-count": "many"})
    assert locs(response) == [["header", "x-count"]]


async def test_a_missing_required_header_is_a_422() -> None:
    app = App()

    @app.get("/")
    async def handler(x_request_id: Annotated[str, Header()]) -> str:
        return x_request_id

    client = AsyncTestClient(app)
    response = await client.get("/")
    assert errors(response) == [
        {
            "loc": ["header", "x-request-id"],
            "msg": "Field required",
            "type": "missing",
            "input": None,
        }
    ]
    assert (await client.get("/", headers={"X-Request-ID": "r1"})).json() == "r1"


async def test_cookies_by_name_alias_and_default() -> None:
    app = App()

    @app.get("/")
    async def handler(
        session: Annotated[str, Cookie()],
        theme: Annotated[str, Cookie(alias="ui-theme")] = "light",
        visits: int = Cookie(0),
    ) -> dict[str, Any]:
        return {"session": session, "theme": theme, "visits": visits}

    client = AsyncTestClient(app)
    response = await client.get("/", cookies={"session": "s1", "ui-theme": "dark", "visits": "4"})
    assert response.json() == {"session": "s1", "theme": "dark", "visits": 4}
    assert (await client.get("/", cookies={"session": "s2"})).json() == {
        "session": "s2",
        "theme": "light",
        "visits": 0,
    }
    assert locs(await client.get("/")) == [["cookie", "session"]]


# --- Query ------------------------------------------------------------------------------


class Size(enum.Enum):
    SMALL = "s"
    LARGE = "l"


async def test_query_scalars_are_converted_from_their_annotation() -> None:
    app = App()

    @app.get("/")
    async def handler(
        flag: bool,
        count: int,
        ratio: float,
        size: Size,
        mode: Literal["fast", "slow"],
        ident: uuid.UUID,
        name: str,
    ) -> dict[str, Any]:
        return {
            "flag": flag,
            "count": count,
            "ratio": ratio,
            "size": size.name,
            "mode": mode,
            "ident": ident.hex,
            "name": name,
        }

    ident = uuid.uuid4()
    params = {
        "flag": "yes",
        "count": "-3",
        "ratio": "0.25",
        "size": "l",
        "mode": "slow",
        "ident": str(ident),
        "name": "ünïcode & more",
    }
    response = await AsyncTestClient(app).get("/", params=params)
    assert response.json() == {
        "flag": True,
        "count": -3,
        "ratio": 0.25,
        "size": "LARGE",
        "mode": "slow",
        "ident": ident.hex,
        "name": "ünïcode & more",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", True), ("true", True), ("On", True), ("0", False), ("false", False), ("no", False)],
)
async def test_query_bools_accept_the_usual_spellings(text: str, expected: bool) -> None:
    app = App()

    @app.get("/")
    async def handler(flag: bool) -> bool:
        return flag

    assert (await AsyncTestClient(app).get(f"/?flag={text}")).json() is expected


async def test_every_invalid_query_parameter_is_reported_with_its_type() -> None:
    app = App()

    @app.get("/")
    async def handler(
        flag: bool, count: int, ratio: float, size: Size, mode: Literal["a", "b"], u: uuid.UUID
    ) -> str:
        return "unreachable"

    response = await AsyncTestClient(app).get(
        "/", params={"flag": "maybe", "count": "1.5", "ratio": "x", "size": "m", "mode": "c"}
    )
    detail = errors(response)
    assert [e["loc"] for e in detail] == [
        ["query", "flag"],
        ["query", "count"],
        ["query", "ratio"],
        ["query", "size"],
        ["query", "mode"],
        ["query", "u"],
    ]
    assert [e["type"] for e in detail] == [
        "bool_parsing",
        "int_parsing",
        "float_parsing",
        "enum",
        "literal_error",
        "missing",
    ]


async def test_query_alias_default_and_multi_valued_lists() -> None:
    app = App()

    @app.get("/")
    async def handler(
        item_query: Annotated[str | None, Query(alias="item-query")] = None,
        page: int = Query(1),
        tags: list[str] = Query([]),  # noqa: B008
        ids: Annotated[list[int] | None, Query()] = None,
        bare: list[str] | None = None,
    ) -> dict[str, Any]:
        return {"q": item_query, "page": page, "tags": tags, "ids": ids, "bare": bare}

    client = AsyncTestClient(app)
    response = await client.get("/?item-query=x&tags=a&tags=b&ids=1&ids=2&bare=z&page=3")
    assert response.json() == {
        "q": "x",
        "page": 3,
        "tags": ["a", "b"],
        "ids": [1, 2],
        "bare": ["z"],
    }
    assert (await client.get("/")).json() == {
        "q": None,
        "page": 1,
        "tags": [],
        "ids": None,
        "bare": None,
    }
    response = await client.get("/?ids=1&ids=two")
    assert locs(response) == [["query", "ids", 1]]  # the failing item, as in FastAPI


async def test_a_required_query_list_reports_missing() -> None:
    app = App()

    @app.get("/")
    async def handler(tag: list[str]) -> list[str]:
        return tag

    client = AsyncTestClient(app)
    assert (await client.get("/?tag=a&tag=a")).json() == ["a", "a"]
    assert errors(await client.get("/"))[0]["type"] == "missing"


@pytest.mark.parametrize("spelling", ["pipe", "optional", "union"])
async def test_optional_scalars_in_every_spelling(spelling: str) -> None:
    app = App()
    if spelling == "pipe":

        @app.get("/")
        async def pipe(q: str | None = None, n: int | None = None) -> Any:
            return {"q": q, "n": n}

    elif spelling == "optional":

        @app.get("/")
        async def optional(q: Optional[str] = None, n: Optional[int] = None) -> Any:  # noqa: UP045
            return {"q": q, "n": n}

    else:

        @app.get("/")
        async def union(q: Union[str, None] = None, n: Union[int, None] = None) -> Any:  # noqa: UP007
            return {"q": q, "n": n}

    client = AsyncTestClient(app)
    assert (await client.get("/")).json() == {"q": None, "n": None}
    assert (await client.get("/?q=x&n=2")).json() == {"q": "x", "n": 2}
    assert locs(await client.get("/?n=two")) == [["query", "n"]]


async def test_an_unannotated_parameter_is_a_string_query_parameter() -> None:
    app = App()

    @app.get("/")
    async def handler(q, n=5):  # type: ignore[no-untyped-def]
        return {"q": q, "n": n}

    client = AsyncTestClient(app)
    assert (await client.get("/?q=1")).json() == {"q": "1", "n": 5}
    assert locs(await client.get("/")) == [["query", "q"]]


# --- JSON body --------------------------------------------------------------------------


@dataclass
class Point:
    x: int
    y: int = 0


@dataclass
class Shape:
    name: str
    points: list[Point]
    origin: Point | None = None
    tags: dict[str, str] = field(default_factory=dict)


async def test_a_dataclass_is_read_from_the_json_body_nested_and_returned_as_an_object() -> None:
    app = App()

    @app.post("/shapes", status_code=201)
    async def create(shape: Shape) -> Shape:
        assert isinstance(shape.points[0], Point)
        return shape

    payload = {"name": "tri", "points": [{"x": 1, "y": 2}, {"x": 3}], "origin": {"x": 0}}
    response = await AsyncTestClient(app).post("/shapes", json=payload)
    assert response.status_code == 201
    assert response.json() == {
        "name": "tri",
        "points": [{"x": 1, "y": 2}, {"x": 3, "y": 0}],
        "origin": {"x": 0, "y": 0},
        "tags": {},
    }


async def test_a_body_error_points_into_the_body() -> None:
    app = App()

    @app.post("/shapes")
    async def create(shape: Shape) -> str:
        return "unreachable"

    client = AsyncTestClient(app)
    response = await client.post("/shapes", json={"name": "tri", "points": [{"x": 1}, {"y": 2}]})
    assert errors(response) == [
        {
            "loc": ["body", "points", 1, "x"],
            "msg": "Field required",
            "type": "missing",
            "input": {"y": 2},
        }
    ]
    response = await client.post("/shapes", json={"name": 3, "points": []})
    assert [(e["loc"], e["type"]) for e in errors(response)] == [(["body", "name"], "string_type")]
    response = await client.post("/shapes", json={"name": "n", "points": [{"x": "one"}]})
    assert locs(response) == [["body", "points", 0, "x"]]
    response = await client.post("/shapes", json=["not", "an", "object"])
    assert locs(response) == [["body"]]
    response = await client.post("/shapes")
    assert errors(response) == [
        {"loc": ["body"], "msg": "Field required", "type": "missing", "input": None}
    ]


async def test_dict_and_list_annotations_read_the_json_body() -> None:
    app = App()

    @app.post("/dict")
    async def as_dict(data: dict[str, int]) -> dict[str, int]:
        return {k: v * 2 for k, v in data.items()}

    @app.post("/list")
    async def as_list(points: list[Point]) -> int:
        return sum(p.x for p in points)

    @app.post("/bare")
    async def bare(items: list) -> int:  # type: ignore[type-arg]
        return len(items)

    client = AsyncTestClient(app)
    assert (await client.post("/dict", json={"a": 1, "b": 2})).json() == {"a": 2, "b": 4}
    assert locs(await client.post("/dict", json={"a": "x"})) == [["body", "a"]]
    assert (await client.post("/list", json=[{"x": 1}, {"x": 2}])).json() == 3
    assert (await client.post("/bare", json=[1, "two", None])).json() == 3


async def test_one_body_param_is_the_whole_body_several_are_embedded() -> None:
    app = App()

    @app.post("/one")
    async def one(amount: Annotated[int, Body()]) -> int:
        return amount

    @app.post("/embed")
    async def embed(amount: Annotated[int, Body(embed=True)]) -> int:
        return amount

    @app.post("/two")
    async def two(
        point: Point,
        note: Annotated[str, Body(alias="comment")],
        extra: Annotated[int, Body()] = 0,
    ) -> dict[str, Any]:
        return {"x": point.x, "note": note, "extra": extra}

    client = AsyncTestClient(app)
    assert (await client.post("/one", json=5)).json() == 5
    assert (await client.post("/embed", json={"amount": 6})).json() == 6
    assert locs(await client.post("/embed", json={})) == [["body", "amount"]]
    assert locs(await client.post("/embed", json={"amount": "x"})) == [["body", "amount"]]
    # A body that is not an object holds no field: the field is missing, as in FastAPI.
    assert locs(await client.post("/embed", json=6)) == [["body", "amount"]]
    response = await client.post("/two", json={"point": {"x": 1}, "comment": "hi"})
    assert response.json() == {"x": 1, "note": "hi", "extra": 0}
    response = await client.post("/two", json={"point": {"x": "a"}})
    assert locs(response) == [["body", "point", "x"], ["body", "comment"]]


async def test_an_optional_body_may_be_absent_or_null() -> None:
    app = App()

    @app.post("/")
    async def handler(point: Point | None = None) -> dict[str, Any]:
        return {"point": point}

    client = AsyncTestClient(app)
    assert (await client.post("/")).json() == {"point": None}
    assert (await client.post("/", json={"x": 4})).json() == {"point": {"x": 4, "y": 0}}


async def test_malformed_json_is_one_422_at_body() -> None:
    app = App()

    @app.post("/")
    async def handler(point: Point, other: Annotated[int, Body()]) -> str:
        return "unreachable"

    response = await AsyncTestClient(app).post(
        "/", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert errors(response) == [  # FastAPI's item: the position in loc, the reason in ctx
        {
            "type": "json_invalid",
            "loc": ["body", 1],
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": "Expecting property name enclosed in double quotes"},
        }
    ]


async def test_a_dependency_may_read_the_body() -> None:
    def amount(value: Annotated[int, Body(embed=True)]) -> int:
        return value

    app = App()

    @app.post("/")
    async def handler(got: Annotated[int, Depends(amount)]) -> int:
        return got * 10

    client = AsyncTestClient(app)
    assert (await client.post("/", json={"value": 3})).json() == 30
    assert locs(await client.post("/", json={})) == [["body", "value"]]


# --- one 422 for everything --------------------------------------------------------------


async def test_every_invalid_parameter_is_reported_in_one_422() -> None:
    def dep_with_input(limit: int) -> int:
        return limit

    app = App()

    @app.post("/items/{item_id}")
    async def handler(
        item_id: int,
        q: int,
        token: Annotated[str, Header()],
        session: Annotated[str, Cookie()],
        point: Point,
        limit: Annotated[int, Depends(dep_with_input)],
    ) -> str:
        return "unreachable"

    response = await AsyncTestClient(app).post(
        "/items/abc?q=x&limit=none", json={"y": 1}, headers={"token": "ok"}
    )
    assert sorted(map(tuple, locs(response))) == sorted(
        [
            ("path", "item_id"),
            ("query", "q"),
            ("cookie", "session"),
            ("body", "x"),
            ("query", "limit"),
        ]
    )
    assert response.headers["content-type"] == "application/json"


async def test_a_dependency_with_invalid_input_is_not_called() -> None:
    called: list[int] = []

    def dep(n: int) -> int:
        called.append(n)
        return n

    app = App()

    @app.get("/")
    async def handler(n: Annotated[int, Depends(dep)]) -> int:
        return n

    assert locs(await AsyncTestClient(app).get("/?n=x")) == [["query", "n"]]
    assert called == []


# --- registration errors -----------------------------------------------------------------


class Arbitrary:
    pass


def handler_with_arbitrary(thing: Arbitrary) -> None: ...


def handler_with_kwargs(**kwargs: str) -> None: ...


def handler_with_args(*args: str) -> None: ...


def handler_with_positional_only(a: str, /) -> None: ...


def handler_with_bad_header(h: Annotated[dict[str, int], Header()]) -> None: ...


def handler_generator() -> Iterator[str]:
    yield "x"


async def handler_async_generator() -> AsyncIterator[str]:
    yield "x"


def dependency_with_arbitrary(thing: Arbitrary) -> None: ...


def handler_with_bad_dependency(d: Annotated[None, Depends(dependency_with_arbitrary)]) -> None: ...


def handler_with_empty_depends(d=Depends()) -> None:  # type: ignore[no-untyped-def]  # noqa: B008
    ...


def handler_with_bad_path_annotation(item_id: Point) -> None: ...


@pytest.mark.parametrize(
    ("path", "endpoint", "names"),
    [
        ("/", handler_with_arbitrary, ["thing", "Arbitrary"]),
        ("/", handler_with_kwargs, ["kwargs"]),
        ("/", handler_with_args, ["args"]),
        ("/", handler_with_positional_only, ["'a'"]),
        ("/", handler_with_bad_header, ["'h'"]),
        ("/", handler_generator, ["generator"]),
        ("/", handler_async_generator, ["generator"]),
        ("/", handler_with_bad_dependency, ["thing"]),
        ("/", handler_with_empty_depends, ["'d'"]),
        ("/{item_id}", handler_with_bad_path_annotation, ["item_id"]),
    ],
)
def test_a_signature_the_injector_cannot_serve_fails_at_registration(
    path: str, endpoint: Any, names: list[str]
) -> None:
    app = App()
    with pytest.raises(ConfigurationError) as info:
        app.get(path)(endpoint)
    for name in names:
        assert name in str(info.value)


def test_a_dependency_cycle_fails_at_registration() -> None:
    def a(x: Any) -> None: ...

    def b(x: Annotated[None, Depends(a)]) -> None: ...

    # Close the loop a -> b -> a: a default cannot name a function defined after it.
    depends_on_b = inspect.Parameter(
        "x", inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[None, Depends(b)]
    )
    a.__signature__ = inspect.Signature([depends_on_b])  # type: ignore[attr-defined]

    app = App()
    with pytest.raises(ConfigurationError, match="cycle"):
        app.get("/")(a)


# --- return values ----------------------------------------------------------------------


async def test_return_values_are_rendered_with_the_route_status_and_class() -> None:
    app = App()

    @app.post("/dict", status_code=201)
    async def as_dict() -> dict[str, int]:
        return {"a": 1}

    @app.get("/dataclass")
    def as_dataclass() -> Point:
        return Point(1, 2)

    @app.get("/response", status_code=201)
    async def as_response() -> Response:
        return Response("raw", status_code=202, media_type="application/x-custom")

    @app.get("/text", response_class=PlainTextResponse)
    async def as_text() -> str:
        return "plain"

    @app.get("/html", response_class=HTMLResponse)
    async def as_html() -> str:
        return "<b>bold</b>"

    @app.delete("/none", status_code=204)
    async def nothing() -> None:
        return None

    client = AsyncTestClient(app)
    response = await client.post("/dict")
    assert (response.status_code, response.json()) == (201, {"a": 1})
    assert response.headers["content-type"] == "application/json"
    assert (await client.get("/dataclass")).json() == {"x": 1, "y": 2}
    response = await client.get("/response")
    assert (response.status_code, response.text) == (202, "raw")
    assert response.headers["content-type"] == "application/x-custom"
    response = await client.get("/text")
    assert (response.text, response.headers["content-type"]) == (
        "plain",
        "text/plain; charset=utf-8",
    )
    response = await client.get("/html")
    assert (response.text, response.headers["content-type"]) == (
        "<b>bold</b>",
        "text/html; charset=utf-8",
    )
    response = await client.delete("/none")
    assert response.status_code == 204
    assert "content-length" not in response.headers


async def test_an_endpoint_without_parameters_works_sync_and_async() -> None:
    app = App()

    @app.get("/sync")
    def sync() -> list[int]:
        return [1, 2]

    @app.get("/async")
    async def async_() -> dict[str, None]:
        return {"none": None}

    client = AsyncTestClient(app)
    assert (await client.get("/sync")).json() == [1, 2]
    assert (await client.get("/async")).json() == {"none": None}


# --- property: arbitrary input never causes a 500 ---------------------------------------


def fuzz_app() -> App:
    app = App()

    @app.get("/items/{item_id:int}/{name}")
    async def item(
        item_id: int,
        name: uuid.UUID,
        q: int,
        ratio: float = 1.0,
        flag: bool = False,
        size: Size | None = None,
        mode: Literal["a", "b"] = "a",
        tags: list[float] | None = None,
        count: Annotated[int, Header(alias="x-count")] = 0,
        agent: Annotated[str | None, Header(alias="user-agent")] = None,
        session: Annotated[int | None, Cookie()] = None,
    ) -> dict[str, Any]:
        # Floats are echoed too: "nan" and "inf" must be refused, not turned into a 500.
        return {
            "item_id": item_id,
            "name": name,
            "q": q,
            "ratio": ratio,
            "flag": flag,
            "size": size,
            "mode": mode,
            "tags": len(tags or ()),
            "count": count,
            "agent": agent,
            "session": session,
        }

    return app


query_text = st.one_of(
    st.integers().map(str),
    st.sampled_from(["true", "s", "b", "nan", "inf", "-inf", "1e400", "2.5"]),
    st.text(max_size=20),
)
header_text = st.text(st.characters(max_codepoint=255, blacklist_categories=["Cs"]), max_size=20)


def test_arbitrary_input_is_answered_2xx_or_4xx_with_detail_never_500(anyio_backend: str) -> None:
    statuses: set[int] = set()
    with TestClient(fuzz_app(), raise_server_exceptions=False, backend=anyio_backend) as client:

        @settings(max_examples=100, deadline=None)
        @given(
            item_id=st.one_of(st.integers().map(str), st.text(max_size=10)),
            name=st.one_of(st.uuids().map(str), st.text(max_size=10)),
            params=st.dictionaries(
                st.sampled_from(["q", "ratio", "flag", "size", "mode", "tags", "x"]), query_text
            ),
            raw_query=st.text(max_size=30),
            count=header_text,
            agent=header_text,
            session=header_text,
        )
        @example(  # all valid: the handler is reached
            item_id="7",
            name=str(uuid.UUID(int=7)),
            params={"q": "1", "flag": "true", "size": "s", "tags": "2.5"},
            raw_query="mode=b&tags=1",
            count="3",
            agent="fuzzer",
            session="9",
        )
        def check(
            item_id: str,
            name: str,
            params: dict[str, str],
            raw_query: str,
            count: str,
            agent: str,
            session: str,
        ) -> None:
            # httpx refuses control characters in a URL and non-ASCII header text: the
            # query goes percent-encoded (its escapes still reach the parser) and the
            # headers as the latin-1 bytes a server would pass on.
            query = quote(raw_query, safe="=&%+")
            path = f"/items/{quote(item_id, safe='')}/{quote(name, safe='')}?{query}"
            headers = {
                key: value.encode("latin-1")
                for key, value in [(b"x-count", count), (b"user-agent", agent)]
            }
            headers[b"cookie"] = f"session={session}".encode("latin-1")
            response = client.get(path, params=params, headers=headers)
            assert 200 <= response.status_code < 500, (response.status_code, response.text)
            statuses.add(response.status_code)
            body = response.json()
            if response.status_code >= 400:
                assert "detail" in body
            else:
                assert body["item_id"] == int(item_id)

        check()
    assert {200, 404, 422} <= statuses, "the examples reached the handler and both errors"


@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity"])
def test_non_finite_floats_are_rejected_not_echoed_into_a_500(
    value: str, anyio_backend: str
) -> None:
    app = App()

    @app.get("/")
    async def echo(x: float) -> float:
        return x

    response = TestClient(app, backend=anyio_backend).get(f"/?x={value}")

    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "finite_number"


@pytest.mark.parametrize("body", [b"NaN", b'{"x": Infinity}', b"[-Infinity]", b'{"x": 1e999}'])
def test_json_constants_outside_the_standard_are_malformed_json(
    body: bytes, anyio_backend: str
) -> None:
    app = App()

    @app.post("/")
    async def echo(data: Annotated[Any, Body()]) -> Any:
        return data

    response = TestClient(app, backend=anyio_backend).post(
        "/", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 422
    assert [(e["loc"], e["type"]) for e in response.json()["detail"]] == [
        (["body"], "json_invalid")
    ]


@pytest.mark.anyio
async def test_a_mutable_default_is_fresh_for_every_request() -> None:
    app = App()

    @app.get("/")
    async def endpoint(
        tag: list[str] = [],  # noqa: B006 - a mutable default is the point here
        extra: Annotated[dict[str, int], Body()] = {},  # noqa: B006
    ) -> list[str]:
        tag.append("seen")
        extra["n"] = len(tag)
        return tag

    client = AsyncTestClient(app)
    assert (await client.get("/")).json() == ["seen"]
    assert (await client.get("/")).json() == ["seen"]


@pytest.mark.anyio
async def test_a_default_given_inside_the_annotated_marker_is_used() -> None:
    app = App()

    @app.get("/")
    async def endpoint(
        q: Annotated[str, Query("dflt")], agent: Annotated[str, Header("none")]
    ) -> list[str]:
        return [q, agent]

    response = await AsyncTestClient(app).get("/")
    assert response.json() == ["dflt", "none"]
    assert (await AsyncTestClient(app).get("/?q=x", headers={"agent": "a"})).json() == ["x", "a"]


def test_two_different_defaults_for_one_parameter_are_refused_at_registration() -> None:
    app = App()
    with pytest.raises(ConfigurationError, match=r"'q'.*a default both in Query"):

        @app.get("/")
        async def endpoint(q: Annotated[str, Query("a")] = "b") -> str:
            return q


# --- issue 10, defects 4-7 ---------------------------------------------------------------


class _GenCall:
    """A callable instance whose ``__call__`` is a generator: a yield dependency."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def __call__(self) -> Iterator[str]:
        self.log.append("enter gen")
        yield "from gen instance"
        self.log.append("exit gen")


class _AsyncGenCall:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def __call__(self) -> AsyncIterator[str]:
        self.log.append("enter agen")
        yield "from agen instance"
        self.log.append("exit agen")


class _AsyncCall:
    async def __call__(self, q: str = "x") -> str:
        return f"async instance {q}"


def _wrapping(func: Any) -> Any:
    """A plain decorator, as users write them: ``functools.wraps`` around the call."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return wrapper


async def test_the_kind_of_a_dependency_is_read_through_instances_partials_and_wrappers() -> None:
    log: list[str] = []

    async def agen(prefix: str) -> AsyncIterator[str]:
        log.append("enter partial agen")
        yield f"{prefix} partial agen"
        log.append("exit partial agen")

    @_wrapping
    async def wrapped_async(q: str = "y") -> str:
        return f"wrapped async {q}"

    @_wrapping
    def wrapped_gen() -> Iterator[str]:
        log.append("enter wrapped gen")
        yield "wrapped gen"
        log.append("exit wrapped gen")

    app = App()

    @app.get("/")
    async def endpoint(
        a: Annotated[str, Depends(_GenCall(log))],
        b: Annotated[str, Depends(_AsyncGenCall(log))],
        c: Annotated[str, Depends(_AsyncCall())],
        d: Annotated[str, Depends(functools.partial(agen, "a"))],
        e: Annotated[str, Depends(wrapped_async)],
        f: Annotated[str, Depends(wrapped_gen)],
    ) -> list[str]:
        log.append("handler")
        return [a, b, c, d, e, f]

    response = await AsyncTestClient(app).get("/?q=z")
    assert response.json() == [
        "from gen instance",
        "from agen instance",
        "async instance z",
        "a partial agen",
        "wrapped async z",
        "wrapped gen",
    ]
    assert log[:4] == ["enter gen", "enter agen", "enter partial agen", "enter wrapped gen"]
    assert log[4] == "handler"
    # Every exit code ran, last entered first.
    assert log[5:] == ["exit wrapped gen", "exit partial agen", "exit agen", "exit gen"]


async def test_the_kind_of_a_handler_is_read_through_instances_partials_and_wrappers() -> None:
    async def with_prefix(prefix: str, q: str) -> str:
        return f"{prefix} {q}"

    @_wrapping
    async def wrapped(q: str) -> str:
        return f"wrapped {q}"

    app = App()
    app.add_route("/instance", _AsyncCall())
    app.add_route("/partial", functools.partial(with_prefix, "partial"))
    app.add_route("/wrapped", wrapped)
    client = AsyncTestClient(app)
    assert (await client.get("/instance?q=1")).json() == "async instance 1"
    assert (await client.get("/partial?q=2")).json() == "partial 2"
    assert (await client.get("/wrapped?q=3")).json() == "wrapped 3"


@dataclass
class _Item:
    name: str
    price: float


async def test_one_body_parameter_in_a_handler_and_its_dependency_is_one_body_field() -> None:
    def priced(item: _Item) -> float:
        return item.price

    app = App()

    @app.post("/items")
    async def create(item: _Item, price: Annotated[float, Depends(priced)]) -> list[Any]:
        return [item.name, price]

    client = AsyncTestClient(app)
    response = await client.post("/items", json={"name": "pen", "price": 2})
    assert response.json() == ["pen", 2.0]  # the body is the item, not {"item": ...}
    response = await client.post("/items", json={"name": "pen"})
    assert errors(response) == [
        {
            "type": "missing",
            "loc": ["body", "price"],
            "msg": "Field required",
            "input": {"name": "pen"},
        }
    ]


async def test_set_frozenset_and_tuple_query_parameters_arrive_as_such() -> None:
    app = App()

    @app.get("/")
    async def endpoint(
        s: Annotated[set[int], Query()],
        f: Annotated[frozenset[str], Query()],
        t: Annotated[tuple[int, ...], Query()],
    ) -> list[Any]:
        return [type(s).__name__, sorted(s), type(f).__name__, sorted(f), type(t).__name__, t]

    response = await AsyncTestClient(app).get("/?s=1&s=2&s=1&f=a&f=a&t=3&t=3")
    assert response.json() == ["set", [1, 2], "frozenset", ["a"], "tuple", [3, 3]]


def _user() -> str:
    return "ada"


_PEP_695_SOURCE = """
from typing import Annotated
from asgi_bg import Depends
type UserDep = Annotated[str, Depends(get_user)]
"""


@pytest.mark.skipif(sys.version_info < (3, 12), reason="the `type` statement is Python 3.12+")
async def test_a_pep_695_alias_of_an_annotated_dependency_is_accepted() -> None:
    namespace: dict[str, Any] = {"get_user": _user}
    exec(_PEP_695_SOURCE, namespace)
    user_dep = namespace["UserDep"]
    app = App()

    async def endpoint(user: user_dep) -> str:  # type: ignore[valid-type]
        return str(user)

    app.add_route("/", endpoint)
    assert (await AsyncTestClient(app).get("/")).json() == "ada"


async def test_a_type_alias_type_of_an_annotated_dependency_is_accepted() -> None:
    # typing_extensions' TypeAliasType is what PEP 695's statement builds, on 3.11 too.
    user_dep = typing_extensions.TypeAliasType("user_dep", Annotated[str, Depends(_user)])
    app = App()

    async def endpoint(user: user_dep) -> str:
        return str(user)

    app.add_route("/", endpoint)
    assert (await AsyncTestClient(app).get("/")).json() == "ada"


async def test_a_missing_value_error_carries_a_null_input() -> None:
    app = App()

    @app.get("/")
    async def endpoint(q: int) -> int:
        return q

    response = await AsyncTestClient(app).get("/")
    assert errors(response) == [
        {"type": "missing", "loc": ["query", "q"], "msg": "Field required", "input": None}
    ]
