"""``@app.middleware("http")``: FastAPI's function middleware, without Starlette's pitfalls.

The inner response's tasks start only after the final body reached the server, they
are counted like any other, and contextvars set by the handler reach its tasks. Every
test runs on asyncio and on trio.
"""

import contextvars
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgi_support import recording

from asgi_bg import (
    App,
    BackgroundTasks,
    HTTPException,
    JSONResponse,
    Request,
    Response,
    StreamingResponse,
)
from asgi_bg._types import Message
from asgi_bg.http_middleware import CallNext
from asgi_bg.testing import AsyncTestClient

pytestmark = pytest.mark.anyio

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


def logged_server(app: App, log: list[str]) -> Any:
    """The app behind a 'server' that logs when the final body message reached it."""
    return recording(app, log, "final body sent")


async def test_call_next_response_can_be_edited_and_its_tasks_run_after_the_final_body() -> None:
    log: list[str] = []
    app = App()

    @app.middleware("http")
    async def add_header(request: Request, call_next: CallNext) -> Response:
        log.append("before")
        response = await call_next(request)
        log.append("after call_next")
        response.headers["x-process-time"] = "0.1"
        return response

    @app.get("/")
    async def endpoint(tasks: BackgroundTasks) -> dict[str, str]:
        tasks.add_task(log.append, "task")
        log.append("handler")
        return {"ok": "yes"}

    response = await AsyncTestClient(logged_server(app, log)).get("/")
    assert response.json() == {"ok": "yes"}
    assert response.headers["x-process-time"] == "0.1"
    assert response.headers["content-type"] == "application/json"
    assert log == ["before", "handler", "after call_next", "final body sent", "task"]
    assert app.tasks.stats()["succeeded"] == 1


async def test_contextvars_set_by_the_handler_reach_its_tasks() -> None:
    seen: list[str] = []
    app = App()

    @app.middleware("http")
    async def passthrough(request: Request, call_next: CallNext) -> Response:
        return await call_next(request)

    async def async_task() -> None:
        seen.append(f"async {request_id.get()}")

    def sync_task() -> None:
        seen.append(f"sync {request_id.get()}")

    @app.get("/{rid}")
    async def endpoint(rid: str, tasks: BackgroundTasks) -> str:
        request_id.set(rid)
        tasks.add_task(async_task)
        tasks.add_task(sync_task)
        return rid

    client = AsyncTestClient(app)
    assert (await client.get("/r1")).json() == "r1"
    assert (await client.get("/r2")).json() == "r2"
    assert seen == ["async r1", "sync r1", "async r2", "sync r2"]


async def test_a_streamed_body_passes_through_and_tasks_wait_for_its_end() -> None:
    log: list[str] = []
    app = App()

    @app.middleware("http")
    async def passthrough(request: Request, call_next: CallNext) -> Response:
        return await call_next(request)

    async def chunks() -> AsyncIterator[bytes]:
        for part in (b"a", b"b", b"c"):
            log.append(f"chunk {part.decode()}")
            yield part

    @app.get("/")
    async def endpoint(tasks: BackgroundTasks) -> StreamingResponse:
        tasks.add_task(log.append, "task")
        return StreamingResponse(chunks(), media_type="text/plain")

    response = await AsyncTestClient(logged_server(app, log)).get("/")
    assert response.text == "abc"
    assert log == ["chunk a", "chunk b", "chunk c", "final body sent", "task"]


async def test_dispatch_may_answer_without_calling_the_app() -> None:
    app = App()
    reached: list[str] = []

    @app.middleware("http")
    async def guard(request: Request, call_next: CallNext) -> Response:
        if request.headers.get("x-key") != "ok":
            return JSONResponse({"detail": "no key"}, 401)
        return await call_next(request)

    @app.get("/")
    async def endpoint() -> str:
        reached.append("handler")
        return "in"

    client = AsyncTestClient(app)
    assert (await client.get("/")).status_code == 401
    assert reached == []
    assert (await client.get("/", headers={"x-key": "ok"})).json() == "in"


async def test_errors_inside_are_answered_inside_and_their_tasks_discarded() -> None:
    log: list[str] = []
    app = App()

    @app.middleware("http")
    async def record(request: Request, call_next: CallNext) -> Response:
        response = await call_next(request)
        log.append(f"status {response.status_code}")
        return response

    @app.get("/missing")
    async def missing(tasks: BackgroundTasks) -> None:
        tasks.add_task(log.append, "task")
        raise HTTPException(404, "nothing here")

    @app.get("/broken")
    async def broken() -> None:
        raise RuntimeError("boom")

    client = AsyncTestClient(app, raise_server_exceptions=False)
    response = await client.get("/missing")
    assert (response.status_code, response.json()) == (404, {"detail": "nothing here"})
    assert log == ["status 404"]
    assert app.tasks.stats()["discarded"] == 1
    assert (await client.get("/broken")).status_code == 500
    with pytest.raises(RuntimeError, match="boom"):
        await AsyncTestClient(app).get("/broken")


async def test_the_body_read_by_dispatch_is_still_there_for_the_handler() -> None:
    app = App()

    @app.middleware("http")
    async def audit(request: Request, call_next: CallNext) -> Response:
        body = await request.body()
        response = await call_next(request)
        response.headers["x-body-length"] = str(len(body))
        return response

    @app.post("/")
    async def echo(payload: dict[str, int]) -> dict[str, int]:
        return payload

    response = await AsyncTestClient(app).post("/", json={"a": 1})
    assert response.json() == {"a": 1}
    assert response.headers["x-body-length"] == str(len(response.request.content))


async def test_the_last_middleware_declared_is_the_outermost() -> None:
    order: list[str] = []
    app = App()

    @app.middleware("http")
    async def first(request: Request, call_next: CallNext) -> Response:
        order.append("first")
        return await call_next(request)

    @app.middleware("http")
    async def second(request: Request, call_next: CallNext) -> Response:
        order.append("second")
        return await call_next(request)

    @app.get("/")
    async def endpoint() -> str:
        return "x"

    await AsyncTestClient(app).get("/")
    assert order == ["second", "first"]


def test_only_http_middleware_is_accepted() -> None:
    with pytest.raises(ValueError, match='"http"'):
        App().middleware("websocket")


def broken_after_call_next(log: list[str]) -> App:
    """A dispatch that raises after call_next, around a route that queues a task."""
    app = App()

    @app.middleware("http")
    async def broken(request: Request, call_next: CallNext) -> Response:
        await call_next(request)
        raise RuntimeError("middleware bug")

    @app.get("/")
    async def endpoint(tasks: BackgroundTasks) -> str:
        tasks.add_task(log.append, "task")
        return "x"

    return app


async def test_dispatch_failing_after_call_next_answers_500_and_discards_the_tasks() -> None:
    log: list[str] = []
    app = broken_after_call_next(log)

    response = await AsyncTestClient(app, raise_server_exceptions=False).get("/")
    async with AsyncTestClient(app) as client:
        with pytest.raises(RuntimeError, match="middleware bug"):  # reaches the test as itself
            await client.get("/")

    assert response.status_code == 500
    assert log == []
    assert app.tasks.stats()["discarded"] == 2


async def test_dispatch_failing_after_call_next_sends_the_500_itself() -> None:
    app = broken_after_call_next([])
    starts: list[int] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            starts.append(message["status"])

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}
    await app(scope, receive, send)
    assert starts == [500]
