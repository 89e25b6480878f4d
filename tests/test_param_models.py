"""Parameter models: ``Annotated[Model, Query()]`` (or ``Header()``, ``Cookie()``) reads
each field from that part of the request.

pydantic models are compared with FastAPI request for request (``param_models_app`` and
its FastAPI twin, on asyncio and trio); dataclasses and TypedDicts, which FastAPI does
not take there, are asgi_bg's own and tested on their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import param_models_app
import pytest
from openapi_support import fastapi_twin
from test_fastapi_parity import answer
from typing_extensions import NotRequired, TypedDict  # noqa: UP035 - both spellings work

from asgi_bg import App, ConfigurationError, Cookie, Header, Query
from asgi_bg.injection import request_fields
from asgi_bg.testing import TestClient

TWIN = fastapi_twin("param_models_app")

REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("/items", {}),
    ("/items?limit=5&tags=a&tags=b&q=lamp", {}),
    ("/items?limit=0&offset=-1&order_by=size", {}),  # every field's error, pydantic's words
    ("/items?limit=5&limit=7&search=x", {}),  # the last value; the field name is no alias
    ("/strict?tags=a&tool=plumbus", {}),  # extra="forbid": extra_forbidden
    ("/strict?tool=a&tool=b", {}),
    ("/headers", {}),
    ("/headers", {"headers": [("x-tag", "a"), ("x-tag", "b"), ("save-data", "yes")]}),
    ("/headers", {"headers": {"x-token": "t", "save-data": "maybe"}}),
    ("/cookies", {"cookies": {"session_id": "s1", "other": "x"}}),
    ("/cookies", {"cookies": {"fatebook_tracker": "f"}}),  # missing: input lists the rest
    ("/maybe?page=2", {}),  # none of the model's keys: its default
    ("/maybe?limit=3", {}),
    ("/maybe?limit=x&other=1", {}),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("path", "kwargs"), REQUESTS, ids=[f"{p} {k}" for p, k in REQUESTS])
async def test_pydantic_models_answer_as_fastapi(path: str, kwargs: dict[str, Any]) -> None:
    ours = await answer(param_models_app.app, "GET", path, kwargs)
    theirs = await answer(TWIN.app, "GET", path, kwargs)
    assert ours == theirs


@pytest.mark.anyio
async def test_a_forbidden_extra_query_key_is_refused_in_pydantics_words() -> None:
    ours = await answer(param_models_app.app, "GET", "/strict?limit=2&tool=plumbus", {})
    assert ours["status"] == 422
    assert ours["body"]["detail"] == [
        {
            "type": "extra_forbidden",
            "loc": ["query", "tool"],
            "msg": "Extra inputs are not permitted",
            "input": "plumbus",
        }
    ]


@dataclass
class Paging:
    name: str
    limit: Annotated[int, Query(ge=1, le=50)] = 10
    tags: list[str] = field(default_factory=list)
    order: Annotated[Literal["asc", "desc"], Query(alias="order-by")] = "asc"


class Search(TypedDict):
    words: str
    page: NotRequired[int]


@dataclass
class Client:
    user_agent: str
    x_trace: list[str] = field(default_factory=list)


@dataclass
class Prefs:
    theme: str = "light"


def own_models_app() -> App:
    app = App()

    @app.get("/paging")
    async def paging(p: Annotated[Paging, Query()]) -> dict[str, Any]:
        return {"type": type(p).__name__, **vars(p)}

    @app.get("/search")
    async def search(s: Annotated[Search, Query()]) -> dict[str, Any]:
        return dict(s)

    @app.post("/search")
    async def search_body(s: Search) -> dict[str, Any]:
        return dict(s)

    @app.get("/client")
    async def client(c: Annotated[Client, Header()], p: Annotated[Prefs, Cookie()]) -> Any:
        return [c.user_agent, c.x_trace, p.theme]

    @app.get("/optional")
    async def optional(p: Annotated[Paging | None, Query()] = None) -> str | None:
        return p.name if p else None

    return app


def test_a_dataclass_query_model_reads_defaults_lists_aliases_and_checks(
    anyio_backend: str,
) -> None:
    client = TestClient(own_models_app(), backend=anyio_backend)
    assert client.get("/paging?name=a").json() == {
        "type": "Paging",
        "name": "a",
        "limit": 10,
        "tags": [],
        "order": "asc",
    }
    got = client.get("/paging?name=a&tags=x&tags=y&limit=2&order-by=desc").json()
    assert (got["tags"], got["limit"], got["order"]) == (["x", "y"], 2, "desc")
    response = client.get("/paging?limit=0&order-by=up")
    assert response.status_code == 422
    assert [(e["type"], e["loc"], e["input"]) for e in response.json()["detail"]] == [
        ("missing", ["query", "name"], None),
        ("greater_than_equal", ["query", "limit"], "0"),
        ("literal_error", ["query", "order-by"], "up"),
    ]


def test_a_typeddict_query_model_leaves_out_what_is_not_required(anyio_backend: str) -> None:
    client = TestClient(own_models_app(), backend=anyio_backend)
    assert client.get("/search?words=lamp").json() == {"words": "lamp"}
    assert client.get("/search?words=lamp&page=2&other=x").json() == {"words": "lamp", "page": 2}
    detail = client.get("/search?page=z").json()["detail"]
    assert [(e["type"], e["loc"]) for e in detail] == [
        ("missing", ["query", "words"]),
        ("int_parsing", ["query", "page"]),
    ]


def test_not_required_keys_hold_under_postponed_annotations(anyio_backend: str) -> None:
    # This module's annotations are strings: the TypedDict's own ``__required_keys__``
    # lists ``page``; the resolved annotation says NotRequired, in a body too.
    assert "page" in Search.__required_keys__
    client = TestClient(own_models_app(), backend=anyio_backend)
    assert client.post("/search", json={"words": "w"}).json() == {"words": "w"}


def test_header_and_cookie_dataclass_models(anyio_backend: str) -> None:
    client = TestClient(own_models_app(), backend=anyio_backend)
    headers = [
        ("user-agent", "probe"),
        ("x-trace", "a"),
        ("x-trace", "b"),
        ("cookie", "theme=dark"),
    ]
    response = client.get("/client", headers=headers)
    assert response.json() == ["probe", ["a", "b"], "dark"]
    assert client.get("/client", headers={"user-agent": "p"}).json() == ["p", [], "light"]


def test_an_optional_model_without_any_of_its_keys_is_its_default(anyio_backend: str) -> None:
    client = TestClient(own_models_app(), backend=anyio_backend)
    assert client.get("/optional?unrelated=1").json() is None
    assert client.get("/optional?name=n").json() == "n"
    assert client.get("/optional?limit=3").json()["detail"][0]["loc"] == ["query", "name"]


def test_each_field_is_a_parameter_of_its_own() -> None:
    app = own_models_app()
    fields = request_fields(app.router.routes[0].plan)
    assert [(f.source, f.key, f.required, f.default) for f in fields] == [
        ("query", "name", True, fields[0].default),
        ("query", "limit", False, 10),
        ("query", "tags", False, []),
        ("query", "order-by", False, "asc"),
    ]
    parameters = app.openapi()["paths"]["/client"]["get"]["parameters"]
    assert [(p["in"], p["name"]) for p in parameters] == [
        ("header", "user-agent"),
        ("header", "x-trace"),
        ("cookie", "theme"),
    ]


@dataclass
class Nested:
    where: dict[str, str]


def test_a_field_no_request_string_can_hold_is_refused_at_registration() -> None:
    app = App()
    with pytest.raises(ConfigurationError, match=r"field 'where'.*cannot read a dict"):

        @app.get("/nested")
        async def nested(n: Annotated[Nested, Query()]) -> None: ...
