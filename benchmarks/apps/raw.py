"""The floor: a hand-written ASGI 3 callable with no framework.

It does the work every contender must do for these endpoints (routing, the ``int``
conversion, query parsing, JSON encoding, tasks after the final body with ``def`` tasks in
a worker thread) and nothing more: no validation errors, no middleware, no task isolation.
The seed dependency is a plain function call here, as hand-written code would make it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from functools import partial
from urllib.parse import parse_qsl

import anyio.to_thread

from benchmarks.workload import (
    COUNTERS,
    NOTIFICATION,
    STATS_PATH,
    Receive,
    Scope,
    Send,
    notify_async,
    write_log,
    write_notification,
)

Handler = Callable[[Scope, Send, str], Awaitable[None]]

_TEXT = (b"content-type", b"text/plain; charset=utf-8")
_JSON = (b"content-type", b"application/json")
_NOTIFIED = b'{"message":"Notification sent in the background"}'
_SENT = b'{"message":"Message sent"}'


async def _respond(send: Send, status: int, content_type: tuple[bytes, bytes], body: bytes) -> None:
    length = (b"content-length", str(len(body)).encode())
    await send({"type": "http.response.start", "status": status, "headers": [content_type, length]})
    await send({"type": "http.response.body", "body": body})


def _query(scope: Scope) -> dict[str, str]:
    return dict(parse_qsl(scope["query_string"].decode("latin-1")))


async def _hello(scope: Scope, send: Send, tail: str) -> None:
    await _respond(send, 200, _TEXT, b"Hello, World!")


async def _items(scope: Scope, send: Send, tail: str) -> None:
    if not tail.isdigit():
        await _respond(send, 404, _TEXT, b"Not Found")
        return
    body = json.dumps({"item_id": int(tail), "q": _query(scope).get("q")}).encode()
    await _respond(send, 200, _JSON, body)


async def _notify(scope: Scope, send: Send, email: str) -> None:
    COUNTERS.queue(2)
    await _respond(send, 200, _JSON, _NOTIFIED)
    await notify_async(email, message=NOTIFICATION)
    await anyio.to_thread.run_sync(partial(write_notification, email, message=NOTIFICATION))


async def _notify_async(scope: Scope, send: Send, email: str) -> None:
    COUNTERS.queue(1)
    await _respond(send, 200, _JSON, _NOTIFIED)
    await notify_async(email, message=NOTIFICATION)


async def _notify_dependency(scope: Scope, send: Send, email: str) -> None:
    q = _query(scope).get("q")
    messages = [f"found query: {q}\n"] if q else []
    messages.append(f"message to {email}\n")
    COUNTERS.queue(len(messages))
    await _respond(send, 200, _JSON, _SENT)
    for message in messages:
        await anyio.to_thread.run_sync(write_log, message)


async def _stats(scope: Scope, send: Send, tail: str) -> None:
    await _respond(send, 200, _JSON, json.dumps(COUNTERS.snapshot()).encode())


_EXACT: dict[tuple[str, str], Handler] = {
    ("GET", "/hello"): _hello,
    ("GET", STATS_PATH): _stats,
}
# (method, prefix, handler): the rest of the path, without a slash, is the parameter.
_PREFIXED: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/items/", _items),
    ("POST", "/send-notification/", _notify),
    ("POST", "/send-notification-async/", _notify_async),
    ("POST", "/send-notification-dep/", _notify_dependency),
)


def _route(method: str, path: str) -> tuple[Handler, str] | None:
    handler = _EXACT.get((method, path))
    if handler is not None:
        return handler, ""
    for route_method, prefix, handler in _PREFIXED:
        tail = path[len(prefix) :]
        if method == route_method and path.startswith(prefix) and tail and "/" not in tail:
            return handler, tail
    return None


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    found = _route(scope["method"], scope["path"])
    if found is None:
        await _respond(send, 404, _TEXT, b"Not Found")
        return
    handler, tail = found
    await handler(scope, send, tail)
