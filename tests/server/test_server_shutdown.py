"""Graceful shutdown over loopback sockets, driven through `shutdown_trigger`."""

from __future__ import annotations

import anyio
import pytest
from server_support import ScriptedClient, get, respond, running

from asgi_bg._types import Receive, Scope, Send

pytestmark = pytest.mark.anyio


class Controlled:
    """An app whose requests wait on events the test sets, recording what happened."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.arrived = anyio.Event()
        self.respond = anyio.Event()
        self.background = anyio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            self.log.append("lifespan shutdown")
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["path"] == "/slow":
            self.arrived.set()
            await self.respond.wait()
        await respond(send, scope["path"].encode())
        if scope["path"] == "/slow":
            self.log.append("slow responded")
            await self.background.wait()
            self.log.append("slow background done")


async def connect(port: int) -> ScriptedClient:
    return ScriptedClient(await anyio.connect_tcp("127.0.0.1", port))


async def test_graceful_shutdown_drains_in_flight_work() -> None:
    app = Controlled()
    async with running(app) as server:
        idle = await connect(server.port)
        await idle.send(get("/quick"))
        assert (await idle.response()).body == b"/quick"
        busy = await connect(server.port)
        await busy.send(get("/slow"))
        await app.arrived.wait()

        server.stop.set()
        assert await idle.is_closed()  # idle keep-alive connections close at once
        with pytest.raises(OSError):  # and new clients are refused
            await anyio.connect_tcp("127.0.0.1", server.port)
        app.respond.set()
        reply = await busy.response()
        assert reply.body == b"/slow"
        assert reply.headers[b"connection"] == b"close"
        assert await busy.is_closed()
        app.log.append("client has the response")
        app.background.set()
        await idle.stream.aclose()
        await busy.stream.aclose()
    assert app.log == [
        "slow responded",
        "client has the response",
        "slow background done",
        "lifespan shutdown",
    ]


async def test_shutdown_timeout_cancels_and_names_unfinished_requests(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = Controlled()
    async with running(app, shutdown_timeout=0.1) as server:
        stuck = await connect(server.port)
        await stuck.send(get("/slow"))
        await app.arrived.wait()
        server.stop.set()
        assert await stuck.is_closed()
        await stuck.stream.aclose()
    assert "Cancelling unfinished request GET /slow (response not sent)" in caplog.text
    assert app.log == ["lifespan shutdown"]


async def test_shutdown_timeout_names_calls_still_running_after_their_response(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = Controlled()
    app.respond.set()
    async with running(app, shutdown_timeout=0.1) as server:
        client = await connect(server.port)
        await client.send(get("/slow"))
        assert (await client.response()).body == b"/slow"
        await client.stream.aclose()
        server.stop.set()
    assert "Cancelling unfinished request GET /slow (response sent, still running)" in (caplog.text)
    assert app.log == ["slow responded", "lifespan shutdown"]
