"""More parameter, body and response kinds; the OpenAPI tests also run it with FastAPI's
import line and compare the documents."""

from __future__ import annotations

import datetime
import enum
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from asgi_bg import App, Body, Cookie, Header, Query
from asgi_bg.responses import HTMLResponse, PlainTextResponse


class Colour(enum.StrEnum):
    red = "red"
    green = "green"


class Level(enum.IntEnum):
    low = 1
    high = 2


@dataclass
class Point:
    x: float
    y: float = 0.0
    label: str | None = None


app = App()


@app.get("/times")
async def times(
    at: datetime.datetime,
    day: datetime.date | None = None,
    alarm: datetime.time | None = None,
    every: datetime.timedelta | None = None,
    token: uuid.UUID | None = None,
) -> dict[str, str]:
    return {}


@app.get("/flags")
async def flags(
    on: bool = False,
    ratio: Annotated[float, Query(gt=0.0, lt=1.0, multiple_of=0.25)] = 0.5,
    colours: Annotated[list[Colour], Query()] = [],  # noqa: B006
    levels: Annotated[set[Level], Query()] = set(),  # noqa: B006
    mode: Literal[1, 2, 3] = 1,
    legacy: Annotated[str | None, Query(deprecated=True, include_in_schema=False)] = None,
) -> list[Colour]:
    return []


@app.get("/headers")
async def headers(
    x_request_id: Annotated[str, Header(alias="X-Request-ID", min_length=8)],
    accept_language: Annotated[str | None, Header()] = None,
    tracking: Annotated[str | None, Cookie(alias="tracking-id")] = None,
) -> None:
    return None


@app.post("/points", status_code=202)
async def add_points(
    points: Annotated[list[Point], Body(min_length=1)],
    origin: Annotated[Point | None, Body()] = None,
    scale: Annotated[float, Body(ge=0.1)] = 1.0,
) -> dict[str, int]:
    return {"count": len(points)}


@app.put("/point/{name}")
async def put_point(name: str, point: Point | None = None) -> Point | None:
    return point


@app.patch("/raw")
async def patch_raw(data: dict[str, Any]) -> dict[str, Any]:
    return data


@app.get("/page", response_class=HTMLResponse)
async def page() -> str:
    return "<p>hi</p>"


@app.get("/text", response_class=PlainTextResponse, responses={418: {"description": "Tea"}})
async def text() -> str:
    return "hi"


@app.post("/pair")
async def pair(first: Annotated[Point, Body(alias="a")], second: Point) -> tuple[Point, Point]:
    return first, second
