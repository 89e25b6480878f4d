"""Real frameworks under the server: Starlette, FastAPI and asgi_bg itself.

Each shows "response complete != app returned": a background task still blocked
(standing in for a 2-second job) does not delay the next request on the same
keep-alive connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest
from fastapi import BackgroundTasks as FastAPIBackgroundTasks
from fastapi import FastAPI
from server_support import running
from starlette.applications import Starlette
from starlette.background import BackgroundTask as StarletteBackgroundTask
from starlette.requests import Request as StarletteRequest
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route

from asgi_bg import App, BackgroundTasks

pytestmark = pytest.mark.anyio


class Job:
    """A background job that finishes only when the test says so."""

    def __init__(self) -> None:
        self.started = anyio.Event()
        self.release = anyio.Event()
        self.done = anyio.Event()
        self.log: list[str] = []

    async def __call__(self, name: str) -> None:
        self.log.append(f"{name} started")
        self.started.set()
        await self.release.wait()
        self.log.append(f"{name} done")
        self.done.set()


async def check_background_does_not_block(url: str, job: Job, bg_path: str) -> None:
    # One connection only, so both requests share it.
    limits = httpx.Limits(max_connections=1)
    async with httpx.AsyncClient(base_url=url, limits=limits) as client:
        first = await client.get(bg_path)
        assert first.status_code == 200
        await job.started.wait()
        second = await client.get("/")
        assert second.status_code == 200
        job.log.append("next request answered")
        job.release.set()
        await job.done.wait()
    assert job.log == ["job started", "next request answered", "job done"]


def starlette_app(job: Job) -> Starlette:
    async def home(request: StarletteRequest) -> PlainTextResponse:
        return PlainTextResponse(f"home {request.state.greeting}")

    async def with_job(request: StarletteRequest) -> PlainTextResponse:
        return PlainTextResponse("queued", background=StarletteBackgroundTask(job, "job"))

    async def echo(request: StarletteRequest) -> PlainTextResponse:
        return PlainTextResponse(await request.body())

    async def stream(request: StarletteRequest) -> StreamingResponse:
        async def parts() -> AsyncIterator[bytes]:
            for part in (b"one ", b"two ", b"three"):
                yield part

        return StreamingResponse(parts())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        yield {"greeting": "hello"}

    routes = [
        Route("/", home),
        Route("/job", with_job),
        Route("/echo", echo, methods=["POST"]),
        Route("/stream", stream),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


async def test_starlette_app() -> None:
    job = Job()
    async with running(starlette_app(job)) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.get("/")).text == "home hello"
            assert (await client.post("/echo", content=b"x" * 100_000)).content == b"x" * 100_000
            streamed = await client.get("/stream")
            assert streamed.text == "one two three"
            assert streamed.headers["transfer-encoding"] == "chunked"
            assert (await client.get("/missing")).status_code == 404
            assert (await client.head("/")).content == b""
        await check_background_does_not_block(server.url, job, "/job")


def fastapi_app(job: Job) -> FastAPI:
    app = FastAPI()

    @app.get("/")
    async def home() -> dict[str, str]:
        return {"hello": "world"}

    @app.post("/items")
    async def create(item: dict[str, int]) -> dict[str, int]:
        return {"total": sum(item.values())}

    @app.get("/job")
    async def with_job(tasks: FastAPIBackgroundTasks) -> dict[str, str]:
        tasks.add_task(job, "job")
        return {"queued": "yes"}

    return app


async def test_fastapi_app() -> None:
    job = Job()
    async with running(fastapi_app(job)) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.get("/")).json() == {"hello": "world"}
            created = await client.post("/items", json={"a": 1, "b": 2})
            assert created.json() == {"total": 3}
            assert (await client.post("/items", json=[1])).status_code == 422
        await check_background_does_not_block(server.url, job, "/job")


def asgi_bg_app(job: Job) -> App:
    app = App()

    @app.get("/")
    async def home() -> dict[str, str]:
        return {"hello": "world"}

    @app.get("/job")
    async def with_job(background_tasks: BackgroundTasks) -> dict[str, str]:
        background_tasks.add_task(job, "job")
        return {"queued": "yes"}

    return app


async def test_asgi_bg_app_with_background_task() -> None:
    job = Job()
    app = asgi_bg_app(job)
    async with running(app) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.get("/")).json() == {"hello": "world"}
        await check_background_does_not_block(server.url, job, "/job")
    assert app.tasks.stats()["succeeded"] == 1
