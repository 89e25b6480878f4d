"""pydantic models (``asgi_bg[pydantic]``): validated and serialised by pydantic itself."""

import sys
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field, PositiveInt

from asgi_bg import App, Body, ConfigurationError
from asgi_bg.testing import AsyncTestClient

pytestmark = pytest.mark.anyio


class Item(BaseModel):
    name: str
    price: float = Field(gt=0)
    tags: list[str] = Field(default_factory=list)


class UserIn(BaseModel):
    name: str
    password: str


class UserOut(BaseModel):
    name: str


async def test_a_model_body_is_validated_by_pydantic_with_every_error_listed() -> None:
    app = App()

    @app.post("/items")
    async def create(item: Item) -> dict[str, Any]:
        return {"type": type(item).__name__, **item.model_dump()}

    client = AsyncTestClient(app)
    response = await client.post("/items", json={"name": "pen", "price": "2.5"})
    assert response.json() == {"type": "Item", "name": "pen", "price": 2.5, "tags": []}
    response = await client.post("/items", json={"price": 0, "tags": "x"})
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {
            "type": "missing",
            "loc": ["body", "name"],
            "msg": "Field required",
            "input": {"price": 0, "tags": "x"},
        },
        {
            "type": "greater_than",
            "loc": ["body", "price"],
            "msg": "Input should be greater than 0",
            "input": 0,
            "ctx": {"gt": 0.0},
        },
        {
            "type": "list_type",
            "loc": ["body", "tags"],
            "msg": "Input should be a valid list",
            "input": "x",
        },
    ]


async def test_several_model_bodies_are_embedded_under_their_names() -> None:
    app = App()

    @app.post("/")
    async def create(item: Item, user: UserOut, note: Annotated[str, Body()]) -> list[str]:
        return [item.name, user.name, note]

    response = await AsyncTestClient(app).post(
        "/", json={"item": {"name": "a", "price": 1}, "user": {"name": "b"}, "note": "c"}
    )
    assert response.json() == ["a", "b", "c"]


async def test_response_model_filters_what_the_handler_returns() -> None:
    app = App()

    @app.post("/users", response_model=UserOut)
    async def create(user: UserIn) -> Any:
        return user

    @app.get("/me")
    async def me() -> UserOut:
        return {"name": "ada", "password": "secret"}  # type: ignore[return-value]

    @app.get("/many", response_model=list[UserOut])
    async def many() -> Any:
        return [UserIn(name="a", password="x"), {"name": "b", "password": "y"}]

    client = AsyncTestClient(app)
    response = await client.post("/users", json={"name": "ada", "password": "secret"})
    assert response.json() == {"name": "ada"}
    assert response.headers["content-type"] == "application/json"
    assert (await client.get("/me")).json() == {"name": "ada"}
    assert (await client.get("/many")).json() == [{"name": "a"}, {"name": "b"}]


async def test_a_returned_model_without_response_model_is_encoded_by_pydantic() -> None:
    app = App()

    @app.get("/")
    async def endpoint() -> dict[str, Any]:
        return {"item": Item(name="x", price=1)}

    assert (await AsyncTestClient(app).get("/")).json() == {
        "item": {"name": "x", "price": 1.0, "tags": []}
    }


async def test_types_only_pydantic_knows_are_validated_by_pydantic() -> None:
    app = App()

    @app.get("/")
    async def endpoint(n: PositiveInt) -> int:
        return n

    client = AsyncTestClient(app)
    assert (await client.get("/?n=3")).json() == 3
    response = await client.get("/?n=0")
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "greater_than"


def test_without_pydantic_a_model_annotation_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A class that looks like a pydantic model, while ``import pydantic`` fails.
    fake_base = type("BaseModel", (), {"__module__": "pydantic.main"})
    model = type("Model", (fake_base,), {"__module__": __name__})
    monkeypatch.setitem(sys.modules, "pydantic", None)
    app = App()

    async def create(item: model) -> None:  # type: ignore[valid-type]
        return None

    with pytest.raises(ConfigurationError, match=r"install asgi_bg\[pydantic\] or use a dataclass"):
        app.add_route("/", create, methods=["POST"])


class Aliased(BaseModel):
    user_name: str = Field(alias="userName")


async def test_a_response_model_is_written_with_its_aliases() -> None:
    app = App()

    @app.get("/")
    async def endpoint() -> Aliased:
        return {"userName": "ada", "extra": 1}  # type: ignore[return-value]

    assert (await AsyncTestClient(app).get("/")).json() == {"userName": "ada"}


def test_without_pydantic_other_types_are_refused_with_what_would_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pydantic", None)
    app = App()

    async def in_body(value: Annotated[complex, Body()]) -> None:
        return None

    async def in_query(value: complex) -> None:
        return None

    with pytest.raises(ConfigurationError, match=r"TypedDict.*or install asgi_bg\[pydantic\]"):
        app.add_route("/body", in_body, methods=["POST"])
    with pytest.raises(ConfigurationError, match=r"Decimal.*install asgi_bg\[pydantic\]"):
        app.add_route("/query", in_query)
