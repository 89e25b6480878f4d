"""Failures inside the error handling itself still end in a clean answer, never in the server."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import anyio
import pytest

from asgi_bg import App, BackgroundTasks, Depends, PlainTextResponse, Request
from asgi_bg._types import ASGIApp, Message, Receive, Scope, Send
from asgi_bg.testing import TestClient


class Boom(Exception):
    pass


def failing_app(*, middleware: bool) -> App:
    app = App()
    if middleware:
        app.add_middleware(PassThrough)

    @app.exception_handler(Boom)
    async def broken_handler(request: Request, exc: Boom) -> PlainTextResponse:
        raise RuntimeError("the handler itself failed")

    @app.get("/boom")
    async def boom() -> None:
        raise Boom

    @app.get("/ok")
    async def ok() -> str:
        return "fine"

    return app


class PassThrough:
    """Pure-ASGI middleware that only forwards: the handlers then run inside it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


@pytest.mark.parametrize("middleware", [False, True])
def test_a_failing_exception_handler_answers_500_and_the_app_keeps_serving(
    middleware: bool, anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = TestClient(
        failing_app(middleware=middleware), raise_server_exceptions=False, backend=anyio_backend
    )

    response = client.get("/boom")

    assert response.status_code == 500
    assert response.text == "Internal Server Error"
    assert client.get("/ok").text == '"fine"'
    assert "the handler itself failed" in caplog.text


def test_a_failing_500_handler_is_logged_and_never_reaches_the_server(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = App()

    @app.exception_handler(500)
    async def broken(request: Request, exc: Exception) -> PlainTextResponse:
        raise RuntimeError("500 handler broke")

    @app.get("/")
    async def endpoint() -> None:
        raise Boom

    client = TestClient(app, raise_server_exceptions=False, backend=anyio_backend)
    with caplog.at_level(logging.ERROR, logger="asgi_bg.error"):
        response = client.get("/")

    assert response.status_code == 500  # the client saw no response start: it reports 500
    assert "500 handler broke" in caplog.text


@pytest.mark.anyio
async def test_teardowns_run_when_the_call_is_cancelled_while_its_tasks_run() -> None:
    log: list[str] = []
    app = App()
    task_started = anyio.Event()

    async def resource() -> AsyncIterator[str]:
        log.append("open")
        yield "db"
        log.append("closed")

    async def slow_task() -> None:
        task_started.set()
        await anyio.sleep_forever()

    @app.get("/")
    async def endpoint(tasks: BackgroundTasks, db: str = Depends(resource)) -> str:
        tasks.add_task(slow_task)
        return db

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        pass

    scope: Scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(app, scope, receive, send)
            await task_started.wait()
            group.cancel_scope.cancel()  # as a server does at its shutdown timeout

    assert log == ["open", "closed"]
    assert app.tasks.stats()["cancelled"] == 1
