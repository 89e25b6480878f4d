"""Black-box helpers for the security tests: one ASGI call with a hand-built scope, and
one raw HTTP/1.1 exchange with the embedded server over a loopback socket.

A hand-built scope reaches paths no URL-parsing client can send (``//evil.com/edit/``
is a host to an HTTP client library); the raw socket shows the same through the server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import h11

from asgi_bg._types import ASGIApp, Message
from asgi_bg.datastructures import Headers
from asgi_bg.server import serve

# Every exchange here finishes in milliseconds; this only turns a hang into a failure.
STEP_LIMIT = 10.0


@dataclass
class Answer:
    status: int
    headers: Headers
    body: bytes
    chunks: list[bytes] = field(default_factory=list)


async def call(
    app: ASGIApp,
    path: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    query: bytes = b"",
    root_path: str = "",
) -> Answer:
    """One HTTP request as a server would hand it to ``app``; what the app answered."""
    raw = [(b"host", b"testserver")]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": root_path + path,
        "raw_path": (root_path + path).encode("utf-8", "surrogateescape"),
        "root_path": root_path,
        "query_string": query,
        "headers": raw,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
        "extensions": {},
    }
    sent: list[Message] = []
    done = anyio.Event()
    inbox: list[Message] = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> Message:
        if inbox:
            return inbox.pop()
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            done.set()

    with anyio.fail_after(STEP_LIMIT):
        await app(scope, receive, send)
    done.set()
    start = next(m for m in sent if m["type"] == "http.response.start")
    chunks = [bytes(m.get("body", b"")) for m in sent if m["type"] == "http.response.body"]
    return Answer(start["status"], Headers(list(start["headers"])), b"".join(chunks), chunks)


@asynccontextmanager
async def serving(app: ASGIApp) -> AsyncIterator[int]:
    """The embedded server on a free loopback port, stopped when the block exits."""
    stop = anyio.Event()
    with anyio.fail_after(STEP_LIMIT * 2):
        async with anyio.create_task_group() as group:

            async def run(*, task_status: Any) -> None:
                await serve(app, port=0, shutdown_trigger=stop.wait, task_status=task_status)

            yield await group.start(run)
            stop.set()


async def exchange(port: int, target: bytes, *headers: bytes, method: bytes = b"GET") -> Answer:
    """Send one raw request line (``target`` exactly as given) and parse the answer."""
    head = b"\r\n".join([method + b" " + target + b" HTTP/1.1", b"Host: t", *headers])
    parser = h11.Connection(h11.CLIENT)
    parser.send(h11.Request(method=method, target="/", headers=[("host", "t")]))
    parser.send(h11.EndOfMessage())
    status, got, body = 0, Headers([]), b""
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(head + b"\r\n\r\n")
        with anyio.fail_after(STEP_LIMIT):
            while True:
                event = parser.next_event()
                if event is h11.NEED_DATA:
                    parser.receive_data(await stream.receive())
                elif isinstance(event, h11.Response):
                    status, got = event.status_code, Headers(list(event.headers))
                elif isinstance(event, h11.Data):
                    body += bytes(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    return Answer(status, got, body)
