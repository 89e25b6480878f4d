"""Test helpers: an in-memory byte stream, a scripted client, inline ASGI apps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Unpack

import anyio
import h11
from anyio.abc import ByteStream
from memory_stream import stream_pair

from asgi_bg._types import Message, Receive, Scope, Send
from asgi_bg.server import serve
from asgi_bg.server.config import ServerConfig, ServerOptions
from asgi_bg.server.connection import HTTPConnection
from asgi_bg.server.idle import expire_idle_connections
from asgi_bg.server.state import ServerState

# Every scripted exchange finishes far sooner; this only turns a hang into a failure.
STEP_LIMIT = 5.0


@dataclass
class Reply:
    status: int
    headers: dict[bytes, bytes]
    body: bytes
    http_version: bytes = b"1.1"


class ScriptedClient:
    """Writes raw bytes, parses whatever comes back."""

    def __init__(self, stream: ByteStream) -> None:
        self.stream = stream
        self._leftover = b""
        self._closed = False

    async def send(self, data: bytes) -> None:
        await self.stream.send(data)

    async def _read(self) -> bytes:
        if self._leftover:
            data, self._leftover = self._leftover, b""
            return data
        try:
            return await self.stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            return b""

    async def response(self, method: bytes = b"GET") -> Reply:
        """Parse the next response (any `1xx` first is skipped) with an h11 client."""
        parser = h11.Connection(h11.CLIENT)
        parser.send(h11.Request(method=method, target="/", headers=[("host", "t")]))
        parser.send(h11.EndOfMessage())
        reply: Reply | None = None
        body = b""
        with anyio.fail_after(STEP_LIMIT):
            while True:
                event = parser.next_event()
                if event is h11.NEED_DATA:
                    parser.receive_data(await self._read())
                elif isinstance(event, h11.Response):
                    reply = Reply(event.status_code, dict(event.headers), b"", event.http_version)
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    raise AssertionError("the server closed the connection without a response")
        assert reply is not None
        reply.body = body
        self._leftover = parser.trailing_data[0]
        return reply

    async def read_until_closed(self) -> bytes:
        """Everything the server sends until it closes the connection."""
        data = b""
        with anyio.fail_after(STEP_LIMIT):
            while chunk := await self._read():
                data += chunk
        return data

    async def is_closed(self) -> bool:
        """True if the server closed without sending anything more."""
        return await self.read_until_closed() == b""


@asynccontextmanager
async def connected(
    app: Any, *, lifespan_state: dict[str, Any] | None = None, **options: Unpack[ServerOptions]
) -> AsyncIterator[ScriptedClient]:
    """Serve `app` on one in-memory connection; waits for the connection (and its ASGI
    calls) to end when the block exits."""
    server_end, client_end = stream_pair()
    state = ServerState(app, ServerConfig(**options), lifespan_state)
    with anyio.fail_after(STEP_LIMIT * 2):
        async with anyio.create_task_group() as group:
            group.start_soon(expire_idle_connections, state)
            async with anyio.create_task_group() as connection:
                connection.start_soon(HTTPConnection(server_end, state).run)
                yield ScriptedClient(client_end)
                await client_end.send_eof()
            group.cancel_scope.cancel()
        await client_end.aclose()


def get(target: str = "/", *extra: str, version: str = "1.1", method: str = "GET") -> bytes:
    """A raw request head without a body."""
    lines = [f"{method} {target} HTTP/{version}", "Host: t", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def read_body(receive: Receive) -> bytes:
    """The whole request body, the way apps read it."""
    body = b""
    more = True
    while more:
        message = await receive()
        assert message["type"] == "http.request", message
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return body


async def respond(send: Send, body: bytes = b"ok", status: int = 200, **kw: Any) -> None:
    """Send a complete response with a content-length."""
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, **kw})


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with the path and the body it read."""
    if scope["type"] != "http":
        return
    body = await read_body(receive)
    await respond(send, scope["path"].encode() + b"|" + body)


def message_types(messages: list[Message]) -> list[str]:
    return [str(m["type"]) for m in messages]


@dataclass
class Running:
    port: int
    stop: anyio.Event

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@asynccontextmanager
async def running(app: Any, **options: Unpack[ServerOptions]) -> AsyncIterator[Running]:
    """`serve` on a free loopback port; a graceful shutdown when the block exits."""
    stop = anyio.Event()
    options.setdefault("port", 0)
    with anyio.fail_after(STEP_LIMIT * 2):
        async with anyio.create_task_group() as group:
            port = await group.start(_serve_until, app, stop, options)
            yield Running(port, stop)
            stop.set()


async def _serve_until(
    app: Any, stop: anyio.Event, options: ServerOptions, *, task_status: Any
) -> None:
    await serve(app, shutdown_trigger=stop.wait, task_status=task_status, **options)


async def http_get(port: int, raw: bytes) -> bytes:
    """One raw exchange on a fresh loopback connection, read until the server closes."""
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(raw)
        data = b""
        with anyio.fail_after(STEP_LIMIT):
            while True:
                try:
                    data += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return data
