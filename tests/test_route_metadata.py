"""Route metadata for the OpenAPI document: accepted on routes, routers and includes, kept."""

from dataclasses import dataclass
from enum import Enum

from asgi_bg import App, PlainTextResponse, Router


@dataclass
class Item:
    name: str


class Tags(Enum):
    items = "items"


def test_route_metadata_is_kept_on_the_route() -> None:
    app = App()

    @app.get(
        "/items",
        tags=["items"],
        summary="List items",
        description="Every item.",
        deprecated=True,
        response_model=list[Item],
        responses={404: {"description": "None found"}},
        operation_id="list_items",
        include_in_schema=False,
    )
    async def list_items() -> list[Item]:
        return []

    route = app.router.routes[0]
    assert route.tags == ["items"]
    assert route.summary == "List items"
    assert route.description == "Every item."
    assert route.deprecated is True
    assert route.response_model == list[Item]
    assert route.responses == {404: {"description": "None found"}}
    assert route.operation_id == "list_items"
    assert route.include_in_schema is False


def test_defaults_follow_fastapi_docstring_and_return_annotation() -> None:
    app = App()

    @app.get("/one")
    async def one() -> Item:
        """Read one item.

        More words.
        \f
        Not for the docs.
        """
        return Item("x")

    @app.get("/text")
    async def text() -> PlainTextResponse:
        return PlainTextResponse("x")

    one_route, text_route = app.router.routes
    assert one_route.description == "Read one item.\n\nMore words."
    assert one_route.response_model is Item
    assert one_route.summary is None and one_route.tags == [] and one_route.responses == {}
    assert one_route.deprecated is None and one_route.include_in_schema is True
    assert text_route.response_model is None  # a Response is not a model
    assert text_route.description == ""


def test_router_and_include_options_combine_outermost_first() -> None:
    router = Router(
        prefix="/items",
        tags=[Tags.items],
        responses={404: {"description": "Not found"}},
        deprecated=True,
    )

    @router.get("/{item_id}", tags=["read"], responses={200: {"description": "The item"}})
    async def read(item_id: int) -> int:
        return item_id

    app = App()
    app.include_router(router, prefix="/v1", tags=["v1"], responses={500: {"description": "Oops"}})
    hidden = Router()

    @hidden.get("/internal")
    async def internal() -> None: ...

    app.include_router(hidden, include_in_schema=False)
    route, internal_route = app.router.routes
    assert route.path == "/v1/items/{item_id}"
    assert route.tags == ["v1", Tags.items, "read"]
    assert route.responses == {
        500: {"description": "Oops"},
        404: {"description": "Not found"},
        200: {"description": "The item"},
    }
    assert route.deprecated is True
    assert route.include_in_schema is True
    assert internal_route.include_in_schema is False
