"""A ten-route shop written once; the OpenAPI tests also run it with FastAPI's import line."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from asgi_bg import App, Body, Cookie, Depends, Header, Path, Query, Router
from asgi_bg.security import APIKeyHeader, HTTPBasic, HTTPBearer, OAuth2PasswordBearer


class Size(enum.Enum):
    """How big an item is."""

    small = "S"
    large = "L"


@dataclass
class Item:
    name: str
    price: float
    size: Size = Size.small
    tags: list[str] = field(default_factory=list)
    note: str | None = None


@dataclass
class Category:
    title: str
    children: list[Category] = field(default_factory=list)


@dataclass
class NewCategory:
    title: str
    parent: str | None = None


class Address(TypedDict):
    street: str
    zip_code: int


class Review(BaseModel):
    """A customer's review."""

    stars: int = Field(ge=1, le=5)
    text: str = ""
    size: Size | None = None


app = App(title="Shop", version="2.0.0")
bearer = HTTPBearer()
api_key = APIKeyHeader(name="x-api-key")
oauth2 = OAuth2PasswordBearer(tokenUrl="token")


def pagination(skip: int = 0, limit: Annotated[int, Query(ge=1, le=100)] = 10) -> dict[str, int]:
    return {"skip": skip, "limit": limit}


@app.get("/items/{item_id}", tags=["items"], responses={404: {"description": "No such item"}})
async def read_item(
    item_id: Annotated[int, Path(ge=1, description="The item's number")],
    q: Annotated[str | None, Query(max_length=20, pattern="^[a-z]+$")] = None,
    user_agent: Annotated[str | None, Header()] = None,
) -> Item:
    """Read one item."""
    return Item("x", 1.0)


@app.get("/items", tags=["items"], summary="All the items", response_model=list[Item])
async def list_items(
    page: Annotated[dict[str, int], Depends(pagination)],
    tags: Annotated[list[str], Query(alias="tag")] = [],  # noqa: B006
    size: Size | None = None,
    order: Literal["asc", "desc"] = "asc",
    max_price: Annotated[Decimal | None, Query(ge=0, le=1000)] = None,
) -> list[dict[str, str]]:
    return []


@app.post("/items", status_code=201)
async def create_item(item: Item, token: Annotated[str, Depends(oauth2)]) -> Item:
    return item


@app.put("/items/{item_id}")
async def replace_item(
    item_id: int,
    item: Item,
    importance: Annotated[int, Body(gt=0)],
    credentials: Annotated[object, Depends(bearer)],
) -> dict[str, int]:
    return {"item_id": item_id}


@app.delete("/items/{item_id}", status_code=204, deprecated=True, operation_id="drop")
async def delete_item(item_id: int, key: Annotated[str, Depends(api_key)]) -> None:
    return None


@app.post("/categories")
async def create_category(category: NewCategory) -> Category:
    return Category(category.title)


@app.post("/addresses")
async def add_address(address: Annotated[Address, Body(embed=True)]) -> Address:
    return address


@app.get("/session", responses={403: {"model": Category}})
async def session(
    session_id: Annotated[str | None, Cookie()] = None,
    basic: Annotated[object, Depends(HTTPBasic())] = None,
) -> dict[str, str | None]:
    return {"session": session_id}


@app.post("/items/{item_id}/reviews", response_model=list[Review])
async def review_item(item_id: int, review: Review) -> list[Review]:
    return [review]


def audit() -> None:
    return None


users = Router(prefix="/users", tags=["users"], dependencies=[Depends(audit)])


@users.get("/{user_id}")
def read_user(user_id: str, verbose: bool = False) -> dict[str, str]:
    """Read a user.

    The part of the description shown in the docs.\f
    The part kept for the code.
    """
    return {"user_id": user_id}


@users.get("/me/ping", include_in_schema=False)
async def ping() -> str:
    return "pong"


app.include_router(users)


@app.get("/health", include_in_schema=False)
async def health() -> str:
    return "ok"
