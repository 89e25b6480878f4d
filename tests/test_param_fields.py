"""The plan's record of request parameters: what the OpenAPI document is built from."""

from dataclasses import dataclass
from typing import Annotated

from asgi_bg import App, Body, Cookie, Depends, Header, Path, Query
from asgi_bg.injection import ParamField, body_embedded, request_fields


@dataclass
class Item:
    name: str


def paging(limit: Annotated[int, Query(ge=1, le=100, description="page size")] = 10) -> int:
    return limit


def token(x_token: Annotated[str, Header()], limit: int = 10) -> str:
    return x_token


def test_every_parameter_of_the_handler_and_its_dependencies_is_recorded_once() -> None:
    app = App()

    @app.post("/items/{item_id}")
    async def create(
        item_id: Annotated[int, Path(ge=1, title="The item")],
        item: Item,
        page: Annotated[int, Depends(paging)],
        tok: Annotated[str, Depends(token)],
        session: Annotated[str | None, Cookie()] = None,
        q: str | None = None,
    ) -> None: ...

    fields = request_fields(app.router.routes[0].plan)
    by_key = {(f.source, f.key): f for f in fields}
    assert list(by_key) == [
        ("path", "item_id"),
        ("body", "item"),
        ("cookie", "session"),
        ("query", "q"),
        ("query", "limit"),
        ("header", "x-token"),
    ]
    path = by_key["path", "item_id"]
    assert (path.name, path.annotation, path.required) == ("item_id", int, True)
    assert path.info is not None and path.info.ge == 1 and path.info.title == "The item"
    limit = by_key["query", "limit"]
    assert (limit.required, limit.default) == (False, 10)
    assert limit.info is not None and limit.info.checks() == {"ge": 1, "le": 100}
    assert limit.info.description == "page size"
    assert by_key["body", "item"].annotation is Item
    assert by_key["query", "q"] == ParamField("q", "query", "q", str | None, False, None, None)
    assert not body_embedded(app.router.routes[0].plan)


def test_several_body_fields_or_embed_make_the_body_embedded() -> None:
    app = App()

    @app.post("/two")
    async def two(a: Item, b: Annotated[int, Body(alias="count")]) -> None: ...

    @app.post("/embed")
    async def embed(a: Annotated[Item, Body(embed=True)]) -> None: ...

    two_plan, embed_plan = (route.plan for route in app.router.routes)
    assert [f.key for f in request_fields(two_plan)] == ["a", "count"]
    assert body_embedded(two_plan) and body_embedded(embed_plan)
