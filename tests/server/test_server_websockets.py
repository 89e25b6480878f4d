"""WebSockets on the embedded server over loopback, on asyncio and trio."""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from server_support import STEP_LIMIT, http_get, running
from ws_client import ws_connect
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    TextMessage,
)

import asgi_bg.server.websocket as server_websocket
from asgi_bg import App, BackgroundTasks, PlainTextResponse, WebSocket, WebSocketDisconnect

pytestmark = pytest.mark.anyio

UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
)


class Recorder:
    """What the app saw, and events a test can wait on."""

    def __init__(self) -> None:
        self.log: list[Any] = []
        self.connected = anyio.Event()
        self.ended = anyio.Event()
        self.sent = 0


def ws_app(rec: Recorder) -> App:
    app = App()

    @app.websocket("/echo")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept(subprotocol=(websocket.scope["subprotocols"] or [None])[0])
        rec.connected.set()
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    rec.log.append(("disconnect", message["code"]))
                    return
                await websocket.send(
                    {
                        "type": "websocket.send",
                        "text": message.get("text"),
                        "bytes": message.get("bytes"),
                    }
                )
        finally:
            rec.ended.set()

    @app.websocket("/boom")
    async def boom(websocket: WebSocket) -> None:
        await websocket.accept()
        raise RuntimeError("handler failed")

    @app.websocket("/closed")
    async def closed(websocket: WebSocket) -> None:
        await websocket.close(4003)

    @app.websocket("/deny")
    async def deny(websocket: WebSocket) -> None:
        await websocket.send_denial_response(PlainTextResponse("members only", 401))

    @app.websocket("/flood")
    async def flood(websocket: WebSocket) -> None:
        await websocket.accept()
        chunk = b"x" * (1 << 20)
        for _ in range(100):
            await websocket.send_bytes(chunk)
            rec.sent += 1
        await websocket.close()

    @app.websocket("/tasks")
    async def tasks_endpoint(websocket: WebSocket, tasks: BackgroundTasks) -> None:
        await websocket.accept()
        lines = [text async for text in websocket.iter_text()]
        tasks.add_task(rec.log.append, ("persisted", lines))

        async def finished() -> None:
            rec.ended.set()

        tasks.add_task(finished)

    return app


async def test_echo_text_and_bytes_with_a_subprotocol() -> None:
    rec = Recorder()
    async with (
        running(ws_app(rec)) as server,
        ws_connect(server.port, "/echo", ["chat"]) as (client, answer),
    ):
        assert isinstance(answer, AcceptConnection)
        assert answer.subprotocol == "chat"
        await client.send(TextMessage("héllo"))
        assert await client.next_event() == TextMessage("héllo")
        await client.send(BytesMessage(b"\x00\x01"))
        event = await client.next_event()
        assert isinstance(event, BytesMessage) and bytes(event.data) == b"\x00\x01"
        await client.send(CloseConnection(4000, "bye"))
        assert (await client.closed()).code == 4000
        with anyio.fail_after(STEP_LIMIT):
            await rec.ended.wait()
    assert rec.log == [("disconnect", 4000)]


async def test_fragmented_messages_reach_the_app_whole() -> None:
    rec = Recorder()
    async with running(ws_app(rec)) as server, ws_connect(server.port, "/echo") as (client, _):
        for part, last in (("one ", False), ("two ", False), ("three", True)):
            await client.send(TextMessage(part, message_finished=last))
        event = await client.next_event()
        assert isinstance(event, TextMessage) and event.data == "one two three"


async def test_a_message_over_ws_max_size_closes_with_1009() -> None:
    rec = Recorder()
    async with (
        running(ws_app(rec), ws_max_size=1000) as server,
        ws_connect(server.port, "/echo") as (client, _),
    ):
        await client.send(BytesMessage(b"a" * 1000))
        assert isinstance(await client.next_event(), BytesMessage)  # the limit itself is fine
        for _ in range(2):  # over the limit across fragments
            await client.send(BytesMessage(b"a" * 600, message_finished=False))
        assert (await client.closed()).code == 1009
        with anyio.fail_after(STEP_LIMIT):
            await rec.ended.wait()
    assert rec.log == [("disconnect", 1009)]


async def test_unknown_path_is_403_and_a_denial_response_is_sent_as_is() -> None:
    async with running(ws_app(Recorder())) as server:
        for path in (b"/nowhere", b"/closed"):  # no route; closed before accepting
            reply = await http_get(server.port, UPGRADE.replace(b"/ws", path))
            assert reply.startswith(b"HTTP/1.1 403 ")
        async with ws_connect(server.port, "/deny") as (client, answer):
            assert isinstance(answer, RejectConnection) and answer.status_code == 401
            body = await client.next_event()
            assert isinstance(body, RejectData) and body.data == b"members only"


async def test_a_handler_exception_closes_with_1011() -> None:
    async with (
        running(ws_app(Recorder())) as server,
        ws_connect(server.port, "/boom") as (
            client,
            _,
        ),
    ):
        assert (await client.closed()).code == 1011


async def test_an_unanswered_ping_closes_the_connection() -> None:
    rec = Recorder()
    options: dict[str, Any] = {"ws_ping_interval": 0.1, "ws_ping_timeout": 0.2}
    async with (
        running(ws_app(rec), **options) as server,
        ws_connect(server.port, "/echo") as (client, _),
    ):
        client.answer_pings = False
        assert isinstance(await client.next_event(), Ping)
        assert (await client.closed()).code == 1011
        with anyio.fail_after(STEP_LIMIT):
            await rec.ended.wait()
    assert rec.log == [("disconnect", 1011)]


async def test_answered_pings_keep_the_connection_open() -> None:
    rec = Recorder()
    options: dict[str, Any] = {"ws_ping_interval": 0.05, "ws_ping_timeout": 0.5}
    async with (
        running(ws_app(rec), **options) as server,
        ws_connect(server.port, "/echo") as (client, _),
    ):
        client.answer_pings = False
        for _ in range(3):  # three rounds answered by hand: the timer restarts each time
            ping = await client.next_event()
            assert isinstance(ping, Ping)
            await client.send(ping.response())
        client.answer_pings = True
        await client.send(TextMessage("still here"))
        assert await client.next_event() == TextMessage("still here")


async def test_shutdown_closes_open_websockets_with_1012() -> None:
    rec = Recorder()
    async with running(ws_app(rec)) as server, ws_connect(server.port, "/echo") as (client, _):
        with anyio.fail_after(STEP_LIMIT):
            await rec.connected.wait()
        server.stop.set()
        assert (await client.closed()).code == 1012
        with anyio.fail_after(STEP_LIMIT):
            await rec.ended.wait()
    assert rec.log == [("disconnect", 1012)]


async def test_background_tasks_run_after_the_client_left() -> None:
    rec = Recorder()
    async with running(ws_app(rec)) as server:
        async with ws_connect(server.port, "/tasks") as (client, _):
            await client.send(TextMessage("a"))
            await client.send(TextMessage("b"))
            await client.send(CloseConnection(1000))
            assert (await client.closed()).code == 1000
        with anyio.fail_after(STEP_LIMIT):
            await rec.ended.wait()
    assert rec.log == [("persisted", ["a", "b"])]


async def test_a_client_that_stops_reading_stops_the_apps_sends() -> None:
    rec = Recorder()
    async with running(ws_app(rec)) as server, ws_connect(server.port, "/flood") as (client, _):
        # Nothing can show that something did *not* happen but time: a second is long
        # for the app to send 100 MiB into loopback if nothing held it back.
        await anyio.sleep(1.0)
        stalled_at = rec.sent
        assert stalled_at < 40, f"{stalled_at} MiB went out to a client that reads nothing"
        received = 0
        while not isinstance(event := await client.next_event(), CloseConnection):
            received += len(event.data) if isinstance(event, BytesMessage) else 0
        assert received == 100 << 20  # once the client reads, the app goes on to the end


async def test_without_wsproto_a_handshake_is_answered_501_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(server_websocket, "HAVE_WSPROTO", False)
    caplog.set_level(logging.ERROR)
    async with running(ws_app(Recorder())) as server:
        reply = await http_get(server.port, UPGRADE)
    assert reply.startswith(b"HTTP/1.1 501 ")
    assert any("asgi_bg[websockets]" in r.getMessage() for r in caplog.records)


async def test_permessage_deflate_with_the_websockets_library() -> None:
    """The ``websockets`` client offers permessage-deflate; a JSON round trip through
    the compressed connection."""
    from websockets.sync.client import connect  # noqa: PLC0415

    def talk(port: int) -> tuple[str, Any]:
        with connect(f"ws://127.0.0.1:{port}/echo", open_timeout=STEP_LIMIT) as ws:
            ws.send(json.dumps({"k": "v" * 1000}))
            assert ws.response is not None
            extensions = ws.response.headers.get("Sec-WebSocket-Extensions", "")
            return extensions, json.loads(ws.recv(timeout=STEP_LIMIT))

    async with running(ws_app(Recorder())) as server:
        extensions, echoed = await anyio.to_thread.run_sync(talk, server.port)
    assert "permessage-deflate" in extensions
    assert echoed == {"k": "v" * 1000}


async def test_a_send_after_the_client_left_raises_websocket_disconnect() -> None:
    seen: list[Any] = []
    done = anyio.Event()
    app = App()

    @app.websocket("/ws")
    async def late(websocket: WebSocket) -> None:
        await websocket.accept()
        with pytest.raises(WebSocketDisconnect):
            await websocket.receive_text()
        try:
            await websocket.send_text("too late")
        except WebSocketDisconnect as exc:
            seen.append(exc.code)
        done.set()

    async with running(app) as server:
        async with ws_connect(server.port, "/ws") as (client, _):
            await client.send(CloseConnection(1000))
            await client.closed()
        with anyio.fail_after(STEP_LIMIT):
            await done.wait()
    assert seen == [1006]


def test_the_ws_flags_reach_the_server_config() -> None:
    from asgi_bg.server.cli import build_parser  # noqa: PLC0415
    from asgi_bg.server.config import ServerConfig  # noqa: PLC0415

    args = build_parser().parse_args(
        ["m:app", "--ws-ping-interval", "5", "--ws-ping-timeout", "2.5", "--ws-max-size", "1024"]
    )
    assert (args.ws_ping_interval, args.ws_ping_timeout, args.ws_max_size) == (5.0, 2.5, 1024)
    defaults = build_parser().parse_args(["m:app"])
    config = ServerConfig()
    assert (defaults.ws_ping_interval, defaults.ws_max_size) == (
        config.ws_ping_interval,
        config.ws_max_size,
    )
    with pytest.raises(ValueError, match="ws_max_size"):
        ServerConfig(ws_max_size=0)


async def test_the_websocket_scope_the_server_builds() -> None:
    scopes: list[Any] = []

    async def raw(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            scopes.append(scope)
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": 1000})

    async with (
        running(raw) as server,
        ws_connect(server.port, "/a%20b?x=1", ["p1", "p2"]) as (
            client,
            _,
        ),
    ):
        await client.closed()
    scope = scopes[0]
    assert scope["asgi"]["spec_version"] == "2.4"
    assert (scope["scheme"], scope["path"], scope["query_string"]) == ("ws", "/a b", b"x=1")
    assert scope["subprotocols"] == ["p1", "p2"]
    assert "method" not in scope
    assert "websocket.http.response" in scope["extensions"]


async def test_tcp_closes_after_the_closing_handshake_while_tasks_still_run() -> None:
    release = anyio.Event()
    log: list[str] = []
    app = App()

    async def slow_task() -> None:
        await release.wait()
        log.append("task done")

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket, tasks: BackgroundTasks) -> None:
        await websocket.accept()
        tasks.add_task(slow_task)
        await websocket.receive_text()  # until the client leaves

    async with running(app) as server:
        async with ws_connect(server.port, "/ws") as (client, _):
            await client.send(CloseConnection(1000))
            await client.closed()
            with anyio.fail_after(STEP_LIMIT), pytest.raises(anyio.EndOfStream):
                await client.stream.receive()  # the server closed TCP: the task runs on
            assert log == []
        release.set()
    assert log == ["task done"]


async def test_the_inbox_holds_the_reader_back_while_full_and_ends_after_close() -> None:
    from asgi_bg.server.ws_inbox import Inbox  # noqa: PLC0415

    inbox = Inbox(2)
    log: list[str] = []

    async def reader() -> None:
        for n in range(3):
            await inbox.put({"n": n})
            log.append(f"put {n}")
        inbox.close()

    async with anyio.create_task_group() as group:
        group.start_soon(reader)
        with anyio.fail_after(STEP_LIMIT):
            while len(log) < 2:
                await anyio.lowlevel.checkpoint()
            for _ in range(5):  # give the reader every chance to put a third
                await anyio.lowlevel.checkpoint()
            assert log == ["put 0", "put 1"]  # full: the third waits for the app
            assert [await inbox.get() for _ in range(3)] == [{"n": 0}, {"n": 1}, {"n": 2}]
            assert await inbox.get() is None  # closed and empty


async def test_an_open_websocket_counts_for_limit_concurrency() -> None:
    rec = Recorder()
    async with (
        running(ws_app(rec), limit_concurrency=1) as server,
        ws_connect(server.port, "/echo") as (client, _),
    ):
        with anyio.fail_after(STEP_LIMIT):
            await rec.connected.wait()
        refused = await http_get(server.port, b"GET /missing HTTP/1.1\r\nHost: t\r\n\r\n")
        await client.send(CloseConnection(1000))
        await client.closed()
    assert refused.startswith(b"HTTP/1.1 503 ")


async def test_shutdown_names_a_websocket_call_it_had_to_cancel(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = anyio.Event()
    app = App()

    @app.websocket("/stuck")
    async def stuck(websocket: WebSocket) -> None:
        await websocket.accept()
        await release.wait()  # ignores the 1012 close: shutdown must cancel it

    with caplog.at_level(logging.WARNING, logger="asgi_bg.server"):
        async with (
            running(app, shutdown_timeout=0.2) as server,
            ws_connect(server.port, "/stuck") as (client, answer),
        ):
            assert isinstance(answer, AcceptConnection)
            server.stop.set()
            await client.closed()
    assert "Cancelling unfinished request WebSocket /stuck" in caplog.text
