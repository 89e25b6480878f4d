"""The test clients and background tasks: a call returns once the tasks ran, and with
``raise_server_exceptions=True`` the first error is raised as itself, never as a group."""

from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
import pytest

from asgi_bg import App, BackgroundTasks, Depends, StreamingResponse
from asgi_bg._types import ASGIApp, Receive, Scope, Send
from asgi_bg.testing import AsyncTestClient, TestClient

Log = list[str]


class FirstError(Exception):
    pass


class SecondError(Exception):
    pass


def failing_app(log: Log, *, handler_fails: bool = False, teardown_fails: bool = False) -> App:
    """Two failing tasks around a good one, a generator dependency, optionally failing too."""
    app = App()

    async def first() -> None:
        log.append("first")
        raise FirstError("first task")

    def good() -> None:
        log.append("good")

    def second() -> None:
        log.append("second")
        raise SecondError("second task")

    async def resource() -> AsyncIterator[None]:
        try:
            yield  # a handler error is raised here
        finally:
            log.append("teardown")
            if teardown_fails:
                raise SecondError("teardown")

    @app.get("/")
    async def handler(tasks: BackgroundTasks, _: Annotated[None, Depends(resource)]) -> str:
        if handler_fails:
            raise FirstError("handler")
        tasks.add_task(first)
        tasks.add_task(good)
        tasks.add_task(second)
        return "ok"

    return app


def test_sync_client_raises_the_first_task_error_after_all_tasks_ran(anyio_backend: str) -> None:
    log: Log = []
    client = TestClient(failing_app(log, teardown_fails=True), backend=anyio_backend)

    with pytest.raises(FirstError, match="first task") as raised:
        client.get("/")

    assert type(raised.value) is FirstError  # not an ExceptionGroup
    assert log == ["first", "good", "second", "teardown"]


def test_a_teardown_error_raised_over_the_handlers_error_carries_it(anyio_backend: str) -> None:
    # The handler's exception is thrown into the dependency before the answer (as in
    # FastAPI), so what the exit code raises is what the request failed with.
    log: Log = []
    client = TestClient(
        failing_app(log, handler_fails=True, teardown_fails=True), backend=anyio_backend
    )

    with pytest.raises(SecondError, match="teardown") as raised:
        client.get("/")

    assert type(raised.value.__context__) is FirstError
    assert log == ["teardown"]


def test_without_raise_server_exceptions_the_response_is_returned(anyio_backend: str) -> None:
    log: Log = []
    app = failing_app(log, teardown_fails=True)
    client = TestClient(app, raise_server_exceptions=False, backend=anyio_backend)

    response = client.get("/")

    assert (response.status_code, response.json()) == (200, "ok")
    assert log == ["first", "good", "second", "teardown"]
    assert app.tasks.stats()["failed"] == 2


@pytest.mark.anyio
async def test_async_client_raises_the_first_error_too(anyio_backend: str) -> None:
    log: Log = []
    async with AsyncTestClient(failing_app(log)) as client:
        with pytest.raises(FirstError) as raised:
            await client.get("/")

    assert type(raised.value) is FirstError
    assert log == ["first", "good", "second", "teardown"]


def test_a_call_returns_only_once_the_tasks_have_run(anyio_backend: str) -> None:
    log: Log = []
    app = App()

    async def yields_a_lot() -> None:
        for _ in range(20):
            await anyio.lowlevel.checkpoint()
        log.append("async task done")

    def sync_task() -> None:
        log.append("sync task done")

    @app.post("/")
    async def handler(tasks: BackgroundTasks) -> None:
        tasks.add_task(yields_a_lot)
        tasks.add_task(sync_task)

    with TestClient(app, backend=anyio_backend) as client:
        client.post("/")
        assert log == ["async task done", "sync task done"]
        client.post("/")
        assert len(log) == 4


class PassThrough:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


@pytest.mark.parametrize("middleware", [[], [(PassThrough, {})]], ids=["bare", "middleware"])
def test_an_error_mid_stream_is_raised_as_itself(anyio_backend: str, middleware: list[Any]) -> None:
    app = App(middleware=middleware)
    failure = FirstError("mid-stream")

    @app.get("/")
    async def handler() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b"partial"
            raise failure

        return StreamingResponse(body())

    with pytest.raises(FirstError) as raised:
        TestClient(app, backend=anyio_backend).get("/")
    assert raised.value is failure

    response = TestClient(app, raise_server_exceptions=False, backend=anyio_backend).get("/")
    assert (response.status_code, response.content) == (200, b"partial")
