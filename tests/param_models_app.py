"""pydantic parameter models in the query string, headers and cookies, written against
asgi_bg; the tests also run it with FastAPI's import line and compare the answers and the
OpenAPI documents."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from asgi_bg import App, Cookie, Header, Query

app = App()


class FilterParams(BaseModel):
    limit: int = Field(100, gt=0, le=100)
    offset: int = Field(0, ge=0)
    order_by: Literal["created_at", "updated_at"] = "created_at"
    tags: list[str] = []
    search: str | None = Field(None, alias="q", description="words to look for")


class StrictFilter(BaseModel):
    model_config = {"extra": "forbid"}

    limit: int = 10
    tags: list[str] = []


class CommonHeaders(BaseModel):
    user_agent: str
    x_tag: list[str] = []
    save_data: bool = False
    token: str | None = Field(None, alias="X-Token")


class Session(BaseModel):
    session_id: str
    fatebook_tracker: str | None = None


@app.get("/items")
async def items(filters: Annotated[FilterParams, Query()]) -> FilterParams:
    return filters


@app.get("/strict")
async def strict(filters: Annotated[StrictFilter, Query()]) -> StrictFilter:
    return filters


@app.get("/headers")
async def headers(common: Annotated[CommonHeaders, Header()]) -> CommonHeaders:
    return common


@app.get("/cookies")
async def cookies(session: Annotated[Session, Cookie()]) -> Session:
    return session


@app.get("/maybe")
async def maybe(
    filters: Annotated[StrictFilter | None, Query()] = None, page: int = 1
) -> dict[str, object]:
    return {"filters": filters.model_dump() if filters else None, "page": page}
