"""The listener over real loopback sockets: readiness, keep-alive, lifespan, shutdown."""

from __future__ import annotations

import anyio
import httpx
import pytest
from server_support import echo_app, get, http_get, respond, running

from asgi_bg._types import ASGIApp, Message, Receive, Scope, Send
from asgi_bg.server import LifespanFailure, serve

pytestmark = pytest.mark.anyio


async def test_port_zero_reports_the_bound_port() -> None:
    async with running(echo_app) as server:
        assert server.port > 0
        raw = await http_get(server.port, get("/x", "Connection: close"))
    assert raw.startswith(b"HTTP/1.1 200 ")
    assert raw.endswith(b"/x|")


async def test_keep_alive_reuses_one_socket() -> None:
    clients: list[object] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            clients.append(scope["client"])
            await respond(send)

    async with running(app) as server, httpx.AsyncClient(base_url=server.url) as client:
        for _ in range(3):
            assert (await client.get("/")).status_code == 200
    assert len(clients) == 3
    assert len(set(clients)) == 1


async def test_a_bad_client_does_not_disturb_others() -> None:
    async with running(echo_app) as server:
        assert (await http_get(server.port, b"NONSENSE\r\n\r\n")).startswith(b"HTTP/1.1 400")
        raw = await http_get(server.port, get("/ok", "Connection: close"))
    assert raw.endswith(b"/ok|")


def lifespan_app(log: list[str], *, fail: bool = False) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(scope, receive, send, log, fail)
            return
        log.append(f"request {scope['path']} state={scope['state'].get('ready')}")
        await respond(send)

    return app


async def _lifespan(scope: Scope, receive: Receive, send: Send, log: list[str], fail: bool) -> None:
    message: Message = await receive()
    log.append(message["type"])
    if fail:
        await send({"type": "lifespan.startup.failed", "message": "database unreachable"})
        return
    scope["state"]["ready"] = True
    await send({"type": "lifespan.startup.complete"})
    message = await receive()
    log.append(message["type"])
    await send({"type": "lifespan.shutdown.complete"})


async def test_lifespan_runs_around_serving() -> None:
    log: list[str] = []
    async with running(lifespan_app(log)) as server:
        await http_get(server.port, get("/r", "Connection: close"))
    assert log == ["lifespan.startup", "request /r state=True", "lifespan.shutdown"]


async def test_failed_startup_aborts_with_the_apps_message() -> None:
    log: list[str] = []
    with pytest.raises(LifespanFailure, match="database unreachable"):
        await serve(lifespan_app(log, fail=True), port=0)
    assert log == ["lifespan.startup"]


async def test_app_without_lifespan_support_is_served(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="asgi_bg.server")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        await respond(send)

    async with running(app) as server:
        raw = await http_get(server.port, get("/", "Connection: close"))
    assert raw.startswith(b"HTTP/1.1 200 ")
    assert "lifespan not supported" in caplog.text


async def test_large_bodies_both_ways_under_flow_control() -> None:
    """Megabytes each way: both streams' read and write backpressure paths run."""
    size = 3 * 1024 * 1024
    async with (
        running(echo_app, max_body=size) as server,
        httpx.AsyncClient(base_url=server.url) as client,
    ):
        reply = await client.post("/big", content=b"z" * size)
    assert reply.status_code == 200
    assert len(reply.content) == size + len(b"/big|")


async def test_close_delimited_response_arrives_whole() -> None:
    body = b"x" * (2 * 1024 * 1024)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body, "more_body": True})
        await send({"type": "http.response.body"})

    async with running(app) as server:
        raw = await http_get(server.port, get("/", version="1.0"))
    assert raw.endswith(b"\r\n\r\n" + body)  # HTTP/1.0: ends at close, nothing lost


async def test_client_going_away_is_reported_over_tcp() -> None:
    seen: list[str] = []
    gone = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        seen.append((await receive())["type"])
        seen.append((await receive())["type"])
        gone.set()

    async with running(app) as server:
        stream = await anyio.connect_tcp("127.0.0.1", server.port)
        await stream.send(get())
        await stream.aclose()
        with anyio.fail_after(5):
            await gone.wait()
    assert seen == ["http.request", "http.disconnect"]


async def test_idle_keep_alive_connection_is_closed_over_tcp() -> None:
    async with (
        running(echo_app, keep_alive=0.05) as server,
        await anyio.connect_tcp("127.0.0.1", server.port) as stream,
    ):
        await stream.send(get())
        data = b""
        with anyio.fail_after(5):
            while True:
                try:
                    data += await stream.receive()
                except anyio.EndOfStream:
                    break
    assert data.startswith(b"HTTP/1.1 200 ")
