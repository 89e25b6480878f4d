"""The application: middleware, exception handlers, lifespan, state, websockets, 500s."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from starlette.middleware import Middleware

from asgi_bg import (
    App,
    HTTPException,
    JSONResponse,
    PlainTextResponse,
    Request,
    RequestValidationError,
    Response,
)
from asgi_bg._types import ASGIApp, Message, Receive, Scope, Send
from asgi_bg.testing import AsyncTestClient, TestClient

pytestmark = pytest.mark.anyio

Log = list[str]


class Recorder:
    """Pure-ASGI middleware noting when a request enters and its response starts."""

    def __init__(self, app: ASGIApp, *, name: str, log: Log) -> None:
        self.app = app
        self.name = name
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.log.append(f"{self.name} in")

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"], (b"x-via", self.name.encode())]
                self.log.append(f"{self.name} start")
            await send(message)

        await self.app(scope, receive, tagged)
        self.log.append(f"{self.name} out")


async def test_middleware_is_applied_outermost_first_and_add_middleware_wraps_it() -> None:
    log: Log = []
    app = App(
        middleware=[
            (Recorder, {"name": "outer", "log": log}),
            Middleware(Recorder, name="inner", log=log),
        ]
    )
    app.add_middleware(Recorder, name="added", log=log)

    @app.get("/")
    async def handler() -> str:
        log.append("handler")
        return "ok"

    response = await AsyncTestClient(app).get("/")
    assert response.json() == "ok"
    assert response.headers.get_list("x-via") == ["inner", "outer", "added"]
    assert log == [
        "added in",
        "outer in",
        "inner in",
        "handler",
        "inner start",
        "outer start",
        "added start",
        "inner out",
        "outer out",
        "added out",
    ]


async def test_middleware_sees_errors_answered_by_exception_handlers() -> None:
    log: Log = []
    app = App(middleware=[(Recorder, {"name": "mw", "log": log})])

    @app.get("/missing")
    async def missing() -> None:
        raise HTTPException(404, "no such thing")

    client = AsyncTestClient(app)
    response = await client.get("/missing")
    assert (response.status_code, response.json()) == (404, {"detail": "no such thing"})
    assert response.headers["x-via"] == "mw"
    response = await client.get("/unknown")
    assert (response.status_code, response.headers["x-via"]) == (404, "mw")


def test_middleware_cannot_be_added_once_the_app_has_served(anyio_backend: str) -> None:
    app = App(middleware=[(Recorder, {"name": "a", "log": []})])
    TestClient(app, backend=anyio_backend).get("/")
    with pytest.raises(RuntimeError, match="after the application has started"):
        app.add_middleware(Recorder, name="b", log=[])


async def test_http_exception_detail_status_and_headers() -> None:
    app = App()

    @app.get("/auth")
    async def auth() -> None:
        raise HTTPException(401, detail={"reason": "token"}, headers={"WWW-Authenticate": "Bearer"})

    @app.get("/teapot")
    def teapot() -> None:
        raise HTTPException(418)

    @app.get("/not-modified")
    async def not_modified() -> None:
        raise HTTPException(304)

    client = AsyncTestClient(app)
    response = await client.get("/auth")
    assert (response.status_code, response.json()) == (401, {"detail": {"reason": "token"}})
    assert response.headers["www-authenticate"] == "Bearer"
    assert (await client.get("/teapot")).json() == {"detail": "I'm a Teapot"}
    response = await client.get("/not-modified")
    assert (response.status_code, response.content) == (304, b"")


class DomainError(Exception):
    pass


class SpecificError(DomainError):
    pass


@pytest.mark.parametrize("with_middleware", [False, True])
async def test_exception_handlers_by_class_subclass_and_status(with_middleware: bool) -> None:
    def sync_handler(request: Request, exc: DomainError) -> Response:
        return JSONResponse({"domain": str(exc), "path": request.url.path}, status_code=409)

    app = App(exception_handlers={DomainError: sync_handler})
    if with_middleware:
        app.add_middleware(Recorder, name="mw", log=[])

    @app.exception_handler(404)
    async def not_found(request: Request, exc: HTTPException) -> Response:
        return PlainTextResponse(f"nothing at {request.url.path}", status_code=404)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        return JSONResponse({"problems": len(exc.errors())}, status_code=400)

    @app.get("/domain")
    async def domain() -> None:
        raise SpecificError("clash")

    @app.get("/gone")
    async def gone() -> None:
        raise HTTPException(404)

    @app.get("/typed")
    async def typed(n: int, m: int) -> int:
        return n

    client = AsyncTestClient(app)
    response = await client.get("/domain")
    assert (response.status_code, response.json()) == (409, {"domain": "clash", "path": "/domain"})
    assert (await client.get("/gone")).text == "nothing at /gone"
    assert (await client.get("/no/route")).text == "nothing at /no/route"
    response = await client.get("/typed?n=x")
    assert (response.status_code, response.json()) == (400, {"problems": 2})


async def test_an_unhandled_error_is_a_logged_plain_500_and_the_app_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App()

    @app.get("/boom")
    async def boom() -> None:
        raise ZeroDivisionError("kaboom")

    @app.get("/ok")
    async def ok() -> str:
        return "still here"

    client = AsyncTestClient(app, raise_server_exceptions=False)
    with caplog.at_level(logging.ERROR, logger="asgi_bg"):
        response = await client.get("/boom")
    assert response.status_code == 500
    assert response.text == "Internal Server Error"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert "kaboom" not in response.text
    (record,) = [r for r in caplog.records if r.name.startswith("asgi_bg")]
    assert "GET /boom" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is ZeroDivisionError
    assert "ZeroDivisionError: kaboom" in caplog.text  # the traceback is in the log
    assert (await client.get("/ok")).json() == "still here"


async def test_the_test_client_raises_the_handler_error_as_itself() -> None:
    app = App()

    @app.get("/boom")
    def boom() -> None:
        raise KeyError("inner")

    with pytest.raises(KeyError, match="inner"):
        await AsyncTestClient(app).get("/boom")


async def test_debug_answers_with_the_traceback() -> None:
    app = App(debug=True)

    @app.get("/boom")
    async def boom() -> None:
        raise ValueError("visible in debug")

    response = await AsyncTestClient(app, raise_server_exceptions=False).get("/boom")
    assert response.status_code == 500
    assert "Traceback" in response.text
    assert "ValueError: visible in debug" in response.text
    assert "async def boom" in response.text or "in boom" in response.text


async def test_a_500_handler_answers_unhandled_errors() -> None:
    app = App()

    @app.exception_handler(500)
    async def server_error(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": type(exc).__name__}, status_code=500)

    @app.get("/boom")
    async def boom() -> None:
        raise OSError("disk")

    response = await AsyncTestClient(app, raise_server_exceptions=False).get("/boom")
    assert (response.status_code, response.json()) == (500, {"error": "OSError"})


async def test_app_state_is_free_for_user_data() -> None:
    app = App()
    app.state.counter = 0

    @app.get("/")
    async def handler(request: Request) -> int:
        request.app.state.counter += 1
        return int(request.app.state.counter)

    client = AsyncTestClient(app)
    assert [(await client.get("/")).json() for _ in range(3)] == [1, 2, 3]
    assert app.state.counter == 3


def lifespan_app(log: Log, *, fail: str = "") -> App:
    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
        log.append("startup")
        if fail == "startup":
            raise RuntimeError("no database")
        app.state.ready = True
        yield {"db": "connection"}
        log.append("shutdown")
        if fail == "shutdown":
            raise RuntimeError("could not close")

    app = App(lifespan=lifespan)

    @app.get("/")
    async def handler(request: Request) -> dict[str, Any]:
        log.append("request")
        return {"ready": request.app.state.ready, "db": getattr(request.state, "db", None)}

    return app


def test_lifespan_runs_around_the_requests(anyio_backend: str) -> None:
    log: Log = []
    with TestClient(lifespan_app(log), backend=anyio_backend) as client:
        assert log == ["startup"]
        assert client.get("/").json() == {"ready": True, "db": "connection"}
    assert log == ["startup", "request", "shutdown"]


async def test_lifespan_with_the_async_client() -> None:
    log: Log = []
    async with AsyncTestClient(lifespan_app(log)) as client:
        assert (await client.get("/")).json() == {"ready": True, "db": "connection"}
    assert log == ["startup", "request", "shutdown"]


def test_a_failing_startup_is_reported_and_logged(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    log: Log = []
    client = TestClient(lifespan_app(log, fail="startup"), backend=anyio_backend)
    with pytest.raises(RuntimeError, match="no database"), client:
        pass
    assert log == ["startup"]
    assert "Application startup failed" in caplog.text
    assert "RuntimeError: no database" in caplog.text


async def test_a_failing_startup_sends_startup_failed() -> None:
    log: Log = []
    app = lifespan_app(log, fail="startup")
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    assert sent == [{"type": "lifespan.startup.failed", "message": "RuntimeError: no database"}]


def test_a_failing_shutdown_is_reported(anyio_backend: str) -> None:
    log: Log = []
    client = TestClient(lifespan_app(log, fail="shutdown"), backend=anyio_backend)
    with pytest.raises(RuntimeError, match="could not close"), client:
        pass
    assert log == ["startup", "shutdown"]


async def test_a_websocket_connection_is_closed_with_1000() -> None:
    app = App()
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "websocket", "asgi": {"version": "3.0"}, "path": "/ws", "headers": []}
    await app(scope, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1000, "reason": ""}]  # unknown path


async def test_an_unknown_scope_type_is_refused() -> None:
    async def receive() -> Message:
        raise AssertionError("not called")

    async def send(message: Message) -> None:
        raise AssertionError("not called")

    with pytest.raises(RuntimeError, match="'telepathy'"):
        await App()({"type": "telepathy"}, receive, send)
