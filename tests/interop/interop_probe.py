"""The app every server of the interop matrix serves, in a subprocess.

``POST /probe/{token}`` answers at once with the worker's pid and queues four tasks: a
slow ``async def`` task, a slow ``def`` task, a failing task and a last task. The slow
tasks do not sleep: each connects to the test's signal listener (``INTEROP_SIGNALS``,
``host:port``), says it started and blocks until the test releases it, so the test knows
for certain that the response arrived while they were still running. The examples
are mounted under ``/examples/...``; ``GET /returned?path=...`` waits until the ASGI call
for ``path`` has returned (its tasks are done), so nothing here is timed with sleeps.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from typing import Any

import anyio

from asgi_bg import App, BackgroundTasks, HTTPException
from asgi_bg._types import Receive, Scope, Send
from examples import app as quick_start
from examples import (
    background_notification,
    dependency_annotated,
    dependency_default,
    dependency_typing_extensions,
    email_notification,
    slow_processing,
)

# Far above what any step takes; only turns a hang into a failure.
LIMIT = 20.0

EXAMPLES = {
    "notification": background_notification.app,
    "annotated": dependency_annotated.app,
    "default": dependency_default.app,
    "typing_extensions": dependency_typing_extensions.app,
    "quick_start": quick_start.app,
    "email_notification": email_notification.app,
    "slow_processing": slow_processing.app,
}


def _signal_address() -> tuple[str, int]:
    host, _, port = os.environ["INTEROP_SIGNALS"].rpartition(":")
    return host, int(port)


def _line(event: str, token: str) -> bytes:
    data = {"event": event, "token": token, "pid": os.getpid(), "thread": threading.get_ident()}
    return json.dumps(data).encode() + b"\n"


def signal(event: str, token: str, *, wait: bool = False) -> None:
    """Tell the test ``event`` happened; with ``wait``, block until it releases us."""
    with socket.create_connection(_signal_address(), timeout=LIMIT) as sock:
        sock.sendall(_line(event, token))
        if wait and not sock.recv(16):
            raise RuntimeError("the test closed the signal connection without releasing")


async def signal_async(event: str, token: str, *, wait: bool = False) -> None:
    """``signal`` without blocking the event loop."""
    with anyio.fail_after(LIMIT):
        async with await anyio.connect_tcp(*_signal_address()) as stream:
            await stream.send(_line(event, token))
            if wait:
                await stream.receive()


async def slow_async_task(token: str) -> None:
    await signal_async("async started", token, wait=True)
    await signal_async("async done", token)


def slow_sync_task(token: str) -> None:
    signal("sync started", token, wait=True)
    signal("sync done", token)


def failing_task(token: str) -> None:
    signal("failing", token)
    raise RuntimeError(f"probe failure {token}")


async def last_task(token: str) -> None:
    await signal_async("last", token)


inner = App()


@inner.post("/probe/{token}")
async def probe(token: str, tasks: BackgroundTasks) -> dict[str, Any]:
    tasks.add_task(slow_async_task, token)
    tasks.add_task(slow_sync_task, token)
    tasks.add_task(failing_task, token)
    tasks.add_task(last_task, token)
    return {"pid": os.getpid(), "token": token, "thread": threading.get_ident()}


@inner.get("/pid")
async def pid() -> dict[str, int]:
    return {"pid": os.getpid()}


@inner.get("/hold/{token}")
async def hold(token: str) -> dict[str, int]:
    """Block this worker's whole event loop until released: it cannot accept meanwhile."""
    signal("holding", token, wait=True)
    return {"pid": os.getpid()}


@inner.get("/returned")
async def returned(path: str) -> dict[str, str]:
    """Wait until the ASGI call for ``path`` has returned, i.e. its tasks are done."""
    with anyio.move_on_after(LIMIT):
        await _calls.wait_for(path)
        return {"returned": path}
    raise HTTPException(504, f"{path} did not return")


for _name, _example in EXAMPLES.items():
    inner.mount(f"/examples/{_name}", _example)


class _Returned:
    """The paths whose ASGI call has returned, and who waits for which."""

    def __init__(self) -> None:
        self.paths: set[str] = set()
        self.waiters: dict[str, anyio.Event] = {}

    def add(self, path: str) -> None:
        self.paths.add(path)
        if (event := self.waiters.pop(path, None)) is not None:
            event.set()

    async def wait_for(self, path: str) -> None:
        if path not in self.paths:
            await self.waiters.setdefault(path, anyio.Event()).wait()


_calls = _Returned()


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """``inner``, noting each HTTP call once it has returned."""
    try:
        await inner(scope, receive, send)
    finally:
        if scope["type"] == "http":
            _calls.add(scope["path"])
