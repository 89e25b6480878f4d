"""WebSocket routes in the app, through the test client, on asyncio and trio."""

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import anyio
import pytest

from asgi_bg import (
    App,
    BackgroundTasks,
    ConfigurationError,
    Cookie,
    Depends,
    Header,
    PlainTextResponse,
    Request,
    Router,
    WebSocket,
    WebSocketDisconnect,
    WebSocketState,
)
from asgi_bg.testing import AsyncTestClient, TestClient, WebSocketDenialResponse


def echo_app() -> App:
    app = App()

    @app.websocket("/echo")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        async for text in websocket.iter_text():
            await websocket.send_text(f"echo: {text}")

    @app.websocket("/kinds")
    async def kinds(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_bytes(await websocket.receive_bytes() * 2)
        data = await websocket.receive_json()
        await websocket.send_json({"got": data})
        await websocket.send_json([1, 2], mode="binary")
        await websocket.close(4001, "done")

    return app


def test_text_messages_are_echoed_until_the_client_closes(anyio_backend: str) -> None:
    with (
        TestClient(echo_app(), backend=anyio_backend) as client,
        client.websocket_connect("/echo") as ws,
    ):
        ws.send_text("hello")
        assert ws.receive_text() == "echo: hello"
        ws.send_text("again")
        assert ws.receive_text() == "echo: again"


def test_bytes_json_and_the_apps_close_code(anyio_backend: str) -> None:
    client = TestClient(echo_app(), backend=anyio_backend)  # outside `with`: own loop
    with client.websocket_connect("/kinds") as ws:
        ws.send_bytes(b"ab")
        assert ws.receive_bytes() == b"abab"
        ws.send_json({"a": 1})
        assert ws.receive_json() == {"got": {"a": 1}}
        assert ws.receive_json(mode="binary") == [1, 2]
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert (closed.value.code, closed.value.reason) == (4001, "done")


def test_subprotocol_and_accept_headers_reach_the_client(anyio_backend: str) -> None:
    app = App()

    @app.websocket("/ws")
    async def ws_endpoint(websocket: WebSocket) -> None:
        offered = websocket.scope["subprotocols"]
        await websocket.accept(subprotocol=offered[-1], headers={"x-room": "blue"})
        await websocket.send_json(offered)

    with TestClient(app, backend=anyio_backend).websocket_connect(
        "/ws", subprotocols=["chat.v1", "chat.v2"]
    ) as ws:
        assert ws.accepted_subprotocol == "chat.v2"
        assert (b"x-room", b"blue") in ws.extra_headers
        assert ws.receive_json() == ["chat.v1", "chat.v2"]


def test_path_query_header_cookie_and_dependencies_are_injected(anyio_backend: str) -> None:
    log: list[str] = []
    app = App()

    async def session(token: str) -> AsyncIterator[str]:
        log.append("session opened")
        yield f"user-{token}"
        log.append("session closed")

    @app.websocket("/rooms/{room:int}")
    async def room_socket(
        websocket: WebSocket,
        room: int,
        user: Annotated[str, Depends(session)],
        nick: str = "anon",
        x_client: Annotated[str | None, Header()] = None,
        theme: Annotated[str, Cookie()] = "light",
    ) -> None:
        await websocket.accept()
        await websocket.send_json([room, user, nick, x_client, theme, websocket.url.path])
        await websocket.receive_text()
        log.append("endpoint returned")

    client = TestClient(app, backend=anyio_backend, headers={"cookie": "theme=dark"})
    with client.websocket_connect("/rooms/7?nick=ann&token=t1", headers={"x-client": "cli"}) as ws:
        assert ws.receive_json() == [7, "user-t1", "ann", "cli", "dark", "/rooms/7"]
        assert log == ["session opened"]
        ws.send_text("bye")
    assert log == ["session opened", "endpoint returned", "session closed"]


def test_invalid_parameters_refuse_the_handshake_with_1008(anyio_backend: str) -> None:
    app = App()

    @app.websocket("/ws/{n:int}")
    async def ws_endpoint(websocket: WebSocket, n: int, limit: int) -> None:
        await websocket.accept()

    client = TestClient(app, backend=anyio_backend)
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/ws/1?limit=x"):
        pass
    assert refused.value.code == 1008
    assert refused.value.reason.startswith("query.limit:")


def test_unknown_path_and_close_before_accept_refuse_the_handshake(anyio_backend: str) -> None:
    app = App()

    @app.websocket("/private")
    async def private(websocket: WebSocket) -> None:
        await websocket.close(code=4003)

    @app.get("/http-only")
    def http_only() -> str:
        return "x"

    client = TestClient(app, backend=anyio_backend)
    for path in ("/nowhere", "/http-only", "/private"):
        with pytest.raises(WebSocketDisconnect), client.websocket_connect(path):
            pass
    assert client.get("/private").status_code == 404  # a WebSocket route is not an HTTP one


def test_the_handlers_exception_is_raised_in_the_test_and_logged(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = App()

    @app.websocket("/boom")
    async def boom(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.receive_text()
        raise ValueError("handler failed")

    with (
        pytest.raises(ValueError, match="handler failed"),
        TestClient(app, backend=anyio_backend).websocket_connect("/boom") as ws,
    ):
        ws.send_text("go")
        ws.receive_text()
    assert any("Exception while serving WebSocket /boom" in r.message for r in caplog.records)

    quiet = TestClient(app, raise_server_exceptions=False, backend=anyio_backend)
    with quiet.websocket_connect("/boom") as ws:
        ws.send_text("go")
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert closed.value.code == 1011


def test_background_tasks_run_after_the_connection_closed(anyio_backend: str) -> None:
    log: list[str] = []
    app = App()

    def persist(lines: list[str]) -> None:
        log.append(f"persisted {lines}")

    def fails() -> None:
        raise RuntimeError("task failed")

    @app.websocket("/chat")
    async def chat(websocket: WebSocket, tasks: BackgroundTasks) -> None:
        await websocket.accept()
        lines = []
        while (text := await websocket.receive_text()) != "bye":
            lines.append(text)
        tasks.add_task(fails)
        tasks.add_task(persist, lines)
        log.append("endpoint returned")

    async def server(scope: Any, receive: Any, send: Any) -> None:
        async def record(message: Any) -> None:
            if message["type"] == "websocket.close":
                log.append(f"closed {message['code']}")
            await send(message)

        await app(scope, receive, record)

    client = TestClient(server, backend=anyio_backend, raise_server_exceptions=False)
    with client.websocket_connect("/chat") as ws:
        for text in ("hi", "there", "bye"):
            ws.send_text(text)
        with pytest.raises(WebSocketDisconnect):
            ws.receive_text()
    # Leaving the block waits for the app's call: its tasks ran after the close, in
    # order, and the failing one did not stop the next.
    assert log == ["endpoint returned", "closed 1000", "persisted ['hi', 'there']"]
    stats = app.tasks.stats()
    assert (stats["succeeded"], stats["failed"]) == (1, 1)


def test_tasks_queued_by_a_failing_handler_are_discarded(anyio_backend: str) -> None:
    ran: list[str] = []
    app = App()

    @app.websocket("/ws")
    async def ws_endpoint(websocket: WebSocket, tasks: BackgroundTasks) -> None:
        tasks.add_task(ran.append, "task")
        await websocket.accept()
        raise RuntimeError("broken")

    with (
        TestClient(app, backend=anyio_backend, raise_server_exceptions=False).websocket_connect(
            "/ws"
        ) as ws,
        pytest.raises(WebSocketDisconnect),
    ):
        ws.receive_text()
    assert ran == []
    assert app.tasks.stats()["discarded"] == 1


def test_the_endpoint_closes_the_socket_it_leaves_open(anyio_backend: str) -> None:
    app = App()

    @app.websocket("/ws")
    async def ws_endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        assert websocket.application_state is WebSocketState.CONNECTED

    with TestClient(app, backend=anyio_backend).websocket_connect("/ws") as ws:
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == 1000


def test_client_and_application_states_follow_the_messages(anyio_backend: str) -> None:
    seen: list[Any] = []
    app = App()

    @app.websocket("/ws")
    async def ws_endpoint(websocket: WebSocket) -> None:
        seen.append((websocket.client_state, websocket.application_state))
        await websocket.accept()
        seen.append((websocket.client_state, websocket.application_state))
        with pytest.raises(WebSocketDisconnect) as gone:
            await websocket.receive_text()
        seen.append((websocket.client_state, gone.value.code))
        with pytest.raises(RuntimeError):
            await websocket.receive_text()

    with TestClient(app, backend=anyio_backend).websocket_connect("/ws") as ws:
        ws.close(4000)
    connecting, connected = WebSocketState.CONNECTING, WebSocketState.CONNECTED
    assert seen == [
        (connecting, connecting),
        (connected, connected),
        (WebSocketState.DISCONNECTED, 4000),
    ]


def test_a_denial_response_reaches_the_client(anyio_backend: str) -> None:
    app = App()

    @app.websocket("/ws")
    async def ws_endpoint(websocket: WebSocket) -> None:
        await websocket.send_denial_response(PlainTextResponse("no entry", 401))

    with (
        pytest.raises(WebSocketDenialResponse) as denied,
        TestClient(app, backend=anyio_backend).websocket_connect("/ws"),
    ):
        pass
    assert (denied.value.status_code, denied.value.text) == (401, "no entry")


def test_router_prefix_include_and_url_path_for(anyio_backend: str) -> None:
    router = Router(prefix="/live")

    @router.websocket("/feed/{name}", name="feed")
    async def feed(websocket: WebSocket, name: str) -> None:
        await websocket.accept()
        await websocket.send_text(name)

    app = App()
    app.include_router(router, prefix="/v1")
    assert app.url_path_for("feed", name="x") == "/v1/live/feed/x"
    with TestClient(app, backend=anyio_backend).websocket_connect("/v1/live/feed/x") as ws:
        assert ws.receive_text() == "x"


def test_dependencies_of_the_groups_guard_websocket_routes(anyio_backend: str) -> None:
    log: list[str] = []

    def require_token(token: str) -> None:  # a guard: its value is discarded
        log.append(f"token {token}")

    async def audit(websocket: WebSocket) -> AsyncIterator[None]:
        log.append(f"open {websocket.url.path}")
        yield
        log.append("closed")

    router = Router(prefix="/live", dependencies=[Depends(require_token)])

    @router.websocket("/feed", dependencies=[Depends(audit)])
    async def feed(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("live")

    app = App(dependencies=[Depends(lambda: log.append("app"))])
    app.include_router(router, dependencies=[Depends(lambda: log.append("include"))])
    client = TestClient(app, backend=anyio_backend)
    with client.websocket_connect("/live/feed?token=t1") as ws:
        assert ws.receive_text() == "live"
    assert log == ["app", "include", "token t1", "open /live/feed", "closed"]
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/live/feed"):
        pass
    assert (refused.value.code, refused.value.reason) == (1008, "query.token: Field required")


def test_what_a_websocket_route_cannot_serve_is_refused_at_registration() -> None:
    app = App()

    def sync_endpoint(websocket: WebSocket) -> None: ...

    async def with_body(websocket: WebSocket, item: dict[str, int]) -> None: ...

    async def with_request(request: Request) -> None: ...

    async def needs_request(request: Request) -> str:
        return ""

    async def via_dependency(
        websocket: WebSocket, x: Annotated[str, Depends(needs_request)]
    ) -> None:
        return None

    for endpoint in (sync_endpoint, with_body, with_request, via_dependency):
        with pytest.raises(ConfigurationError, match="WebSocket"):
            app.add_websocket_route("/ws", endpoint)

    async def http_with_socket(websocket: WebSocket) -> None: ...

    with pytest.raises(ConfigurationError, match=r"@app\.websocket"):
        app.add_route("/h", http_with_socket)


def test_user_middleware_sees_the_websocket_scope(anyio_backend: str) -> None:
    seen: list[str] = []

    class Recorder:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            seen.append(scope["type"])
            await self.app(scope, receive, send)

    app = echo_app()
    app.add_middleware(Recorder)
    with TestClient(app, backend=anyio_backend).websocket_connect("/echo") as ws:
        ws.send_text("x")
        assert ws.receive_text() == "echo: x"
    assert seen == ["websocket"]


@pytest.mark.anyio
async def test_async_client_sessions() -> None:
    app = echo_app()
    async with (
        AsyncTestClient(app) as client,
        client.websocket_connect("/echo") as first,
        client.websocket_connect("/echo") as second,
    ):
        await first.send_text("1")
        await second.send_text("2")
        assert await second.receive_text() == "echo: 2"
        assert await first.receive_text() == "echo: 1"


@pytest.mark.anyio
async def test_a_generator_dependency_is_torn_down_when_the_socket_ends() -> None:
    log: list[str] = []
    released = anyio.Event()
    app = App()

    def resource() -> Iterator[str]:
        log.append("open")
        yield "db"
        log.append("close")
        released.set()

    @app.websocket("/ws")
    async def ws_endpoint(websocket: WebSocket, db: Annotated[str, Depends(resource)]) -> None:
        await websocket.accept()
        await websocket.send_text(db)
        await websocket.receive_text()

    async with AsyncTestClient(app).websocket_connect("/ws") as ws:
        assert await ws.receive_text() == "db"
        assert log == ["open"]
    with anyio.fail_after(5):
        await released.wait()
    assert log == ["open", "close"]


def test_logging_names_the_websocket_path(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    app = App()

    @app.websocket("/tasks")
    async def ws_endpoint(websocket: WebSocket, tasks: BackgroundTasks) -> None:
        tasks.add_task(lambda: None)
        raise RuntimeError("before accept")

    client = TestClient(app, backend=anyio_backend, raise_server_exceptions=False)
    with pytest.raises(WebSocketDisconnect), client.websocket_connect("/tasks"):
        pass
    assert any("WebSocket /tasks" in r.getMessage() for r in caplog.records)


def starlette_ws_app() -> Any:
    from starlette.applications import Starlette  # noqa: PLC0415
    from starlette.routing import WebSocketRoute  # noqa: PLC0415
    from starlette.websockets import WebSocket as StarletteWebSocket  # noqa: PLC0415

    async def shout(websocket: StarletteWebSocket) -> None:
        await websocket.accept()
        await websocket.send_text((await websocket.receive_text()).upper())
        await websocket.close()

    return Starlette(routes=[WebSocketRoute("/shout", shout)])


def test_a_starlette_websocket_app_mounted_in_asgi_bg(anyio_backend: str) -> None:
    app = App()
    app.mount("/star", starlette_ws_app())
    with TestClient(app, backend=anyio_backend).websocket_connect("/star/shout") as ws:
        ws.send_text("hey")
        assert ws.receive_text() == "HEY"


@pytest.mark.parametrize("host", ["starlette", "fastapi"])
def test_asgi_bg_mounted_in_starlette_and_fastapi_serves_its_websockets(
    anyio_backend: str, host: str
) -> None:
    from fastapi import FastAPI  # noqa: PLC0415
    from starlette.applications import Starlette  # noqa: PLC0415
    from starlette.routing import Mount  # noqa: PLC0415

    log: list[str] = []
    inner = App()

    @inner.websocket("/rooms/{room}")
    async def room(websocket: WebSocket, room: str, tasks: BackgroundTasks) -> None:
        await websocket.accept()
        await websocket.send_json({"room": room, "path": websocket.url.path})
        tasks.add_task(log.append, f"left {room}")

    outer: Any = FastAPI() if host == "fastapi" else Starlette(routes=[Mount("/bg", inner)])
    if host == "fastapi":
        outer.mount("/bg", inner)
    with TestClient(outer, backend=anyio_backend).websocket_connect("/bg/rooms/a") as ws:
        assert ws.receive_json() == {"room": "a", "path": "/bg/rooms/a"}
    assert log == ["left a"]


def test_an_http_connection_parameter_gets_the_websocket(anyio_backend: str) -> None:
    from asgi_bg.requests import HTTPConnection  # noqa: PLC0415

    app = App()

    async def client_name(connection: HTTPConnection) -> str:
        return connection.headers.get("x-name", "?")

    @app.websocket("/ws")
    async def ws_endpoint(
        websocket: WebSocket, name: Annotated[str, Depends(client_name)], conn: HTTPConnection
    ) -> None:
        await websocket.accept()
        await websocket.send_json([name, conn is websocket])

    client = TestClient(app, backend=anyio_backend)
    with client.websocket_connect("/ws", headers={"x-name": "ann"}) as ws:
        assert ws.receive_json() == ["ann", True]


@pytest.mark.anyio
async def test_no_close_is_sent_after_the_client_disconnected() -> None:
    """A strict server (uvicorn's websockets implementation is one) refuses a close
    after the client's; the endpoint's tasks must still run."""
    ran: list[str] = []
    sent: list[str] = []
    app = App()

    @app.websocket("/ws")
    async def ws_endpoint(websocket: WebSocket, tasks: BackgroundTasks) -> None:
        await websocket.accept()
        tasks.add_task(ran.append, "task")
        await websocket.receive_text()

    incoming = iter([{"type": "websocket.connect"}, {"type": "websocket.disconnect", "code": 1001}])

    async def receive() -> Any:
        return next(incoming)

    async def send(message: Any) -> None:
        if sent[-1:] == ["disconnected"] or message["type"] == "websocket.close":
            raise RuntimeError("Unexpected ASGI message after the client closed")
        sent.append(message["type"])

    scope = {"type": "websocket", "path": "/ws", "headers": [], "query_string": b""}
    await app(scope, receive, send)
    assert sent == ["websocket.accept"]
    assert ran == ["task"]
