"""The test clients and background tasks: a call returns once the tasks ran, and with
``raise_server_exceptions=True`` the first error is raised as itself, never as a group."""

import sys
import types
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anyio
import httpx
import pytest

from asgi_bg import (
    App,
    BackgroundTasks,
    Depends,
    HTTPException,
    RedirectResponse,
    Request,
    Response,
    StreamingResponse,
    testing,
)
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


# --- the client is httpx's: what it adds over the earlier hand-written one --------------


def echo_app() -> App:
    app = App()

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, Any]:
        form = await request.form()
        return {
            "url": str(request.url),
            "root_path": request.scope["root_path"],
            "form": {k: str(v) for k, v in form.items()},
            "cookies": request.cookies,
        }

    @app.get("/set")
    async def set_cookie() -> Response:
        response = Response("set")
        response.set_cookie("session", "abc")
        return response

    @app.get("/cookies")
    async def cookies(request: Request) -> dict[str, str]:
        return request.cookies

    @app.get("/moved")
    async def moved() -> RedirectResponse:
        return RedirectResponse("/cookies", status_code=307)

    @app.get("/missing")
    async def missing() -> None:
        raise HTTPException(404, "nope")

    return app


def test_the_client_is_an_httpx_client_with_full_urls(anyio_backend: str) -> None:
    client = TestClient(echo_app(), backend=anyio_backend)
    assert isinstance(client, httpx.Client)
    response = client.post("/echo", data={"a": "1"})
    assert str(response.url) == "http://testserver/echo"
    assert response.json()["url"] == "http://testserver/echo"
    assert response.json()["form"] == {"a": "1"}
    assert response.reason_phrase == "OK"


def test_cookies_the_app_sets_persist_and_per_request_cookies_do_not(anyio_backend: str) -> None:
    client = TestClient(echo_app(), backend=anyio_backend)
    assert client.get("/set").cookies["session"] == "abc"
    assert client.get("/cookies").json() == {"session": "abc"}
    assert client.get("/cookies", cookies={"extra": "1"}).json() == {"session": "abc", "extra": "1"}
    assert client.get("/cookies").json() == {"session": "abc"}


def test_redirects_are_followed_unless_asked_not_to(anyio_backend: str) -> None:
    client = TestClient(echo_app(), backend=anyio_backend)
    assert client.get("/moved").status_code == 200
    assert client.get("/moved", follow_redirects=False).status_code == 307
    with pytest.raises(httpx.HTTPStatusError):
        client.get("/missing").raise_for_status()


def test_base_url_and_root_path_reach_the_app(anyio_backend: str) -> None:
    client = TestClient(
        echo_app(), base_url="https://api.example:8443", root_path="/v1", backend=anyio_backend
    )
    body = client.post("/echo").json()
    assert (body["url"], body["root_path"]) == ("https://api.example:8443/v1/echo", "/v1")


def lifespan_app(log: Log, *, fail: str = "") -> App:
    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[dict[str, str]]:
        if fail == "raise":
            raise FirstError("startup")
        log.append("startup")
        yield {"db": "connected"}
        log.append("shutdown")

    app = App(lifespan=lifespan)

    @app.get("/")
    async def handler(request: Request) -> str:
        return str(request.state.db)

    return app


def test_with_runs_the_lifespan_and_requests_see_its_state(anyio_backend: str) -> None:
    log: Log = []
    with TestClient(lifespan_app(log), backend=anyio_backend) as client:
        assert log == ["startup"]
        assert client.get("/").json() == "connected"
    assert log == ["startup", "shutdown"]


@pytest.mark.anyio
async def test_async_with_runs_the_lifespan_too() -> None:
    log: Log = []
    async with AsyncTestClient(lifespan_app(log)) as client:
        assert isinstance(client, httpx.AsyncClient)
        assert (await client.get("/")).json() == "connected"
    assert log == ["startup", "shutdown"]


def test_a_failing_startup_is_raised(anyio_backend: str) -> None:
    with (
        pytest.raises(RuntimeError, match="Application startup failed: FirstError: startup"),
        TestClient(lifespan_app([], fail="raise"), backend=anyio_backend),
    ):
        pass  # never reached


def test_an_app_raising_in_its_lifespan_call_raises_that_error(anyio_backend: str) -> None:
    async def raw(scope: Scope, receive: Receive, send: Send) -> None:
        raise SecondError(scope["type"])

    with pytest.raises(SecondError, match="lifespan"), TestClient(raw, backend=anyio_backend):
        pass  # never reached


def test_httpx2_is_preferred_and_a_missing_httpx_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    successor = types.ModuleType("httpx2")
    monkeypatch.setitem(sys.modules, "httpx2", successor)
    assert testing.import_httpx() is successor

    monkeypatch.setitem(sys.modules, "httpx2", None)  # None in sys.modules: ImportError
    assert testing.import_httpx() is httpx
    monkeypatch.setitem(sys.modules, "httpx", None)
    with pytest.raises(ImportError, match=r"asgi_bg\[testing\]"):
        testing.import_httpx()


def test_the_scope_a_websocket_session_starts_from_carries_the_clients_cookies() -> None:
    client = TestClient(App(), base_url="http://example.test", cookies={"session": "s"})
    scope = client._scope_for("/ws?room=1", headers={"x-extra": "1"})
    headers = dict(scope["headers"])
    assert (scope["path"], scope["query_string"]) == ("/ws", b"room=1")
    assert (headers[b"cookie"], headers[b"x-extra"], headers[b"host"]) == (
        b"session=s",
        b"1",
        b"example.test",
    )
