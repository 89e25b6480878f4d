"""Lifespan shutdown and background tasks: wait up to ``shutdown_timeout``, then cancel and
name what is left. Nothing disappears silently.

The lifespan protocol is driven directly (as a server would) so the test decides exactly
when ``lifespan.shutdown`` is sent.
"""

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread
import pytest

from asgi_bg import App, BackgroundTasks
from asgi_bg._types import Message, Scope
from asgi_bg.testing import TestClient

TIMEOUT = 10

Log = list[str]


def task_name(func: Callable[..., Any]) -> str:
    return f"{func.__module__}.{func.__qualname__}"


def http_scope(path: str = "/") -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "state": {},
    }


class Server:
    """The server side of one lifespan and any number of HTTP calls, on one log."""

    def __init__(self, app: App, log: Log) -> None:
        self.app = app
        self.log = log
        self.started = anyio.Event()
        self.shutdown_requested = anyio.Event()
        self.finished = anyio.Event()
        self._lifespan_messages = 0

    async def lifespan(self) -> None:
        async def receive() -> Message:
            self._lifespan_messages += 1
            if self._lifespan_messages == 1:
                return {"type": "lifespan.startup"}
            await self.shutdown_requested.wait()
            self.log.append("server: shutdown")
            return {"type": "lifespan.shutdown"}

        async def send(message: Message) -> None:
            self.log.append(f"server got {message['type']}")
            if message["type"] == "lifespan.startup.complete":
                self.started.set()

        await self.app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
        self.finished.set()

    async def request(self, path: str = "/") -> None:
        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.log.append(f"server: response to {path} complete")

        await self.app(http_scope(path), receive, send)
        if anyio.get_cancelled_exc_class() is asyncio.CancelledError:
            # A shutdown that cancelled the call's tasks leaves no cancellation request
            # behind on the server's task (asyncio counts them).
            task = asyncio.current_task()
            assert task is not None and task.cancelling() == 0
        self.log.append(f"server: {path} returned")


def recording_lifespan(log: Log) -> Callable[[App], Any]:
    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        log.append("lifespan: startup")
        yield
        log.append("lifespan: exit")

    return lifespan


@pytest.mark.anyio
async def test_shutdown_waits_for_running_tasks(anyio_backend: str) -> None:
    log: Log = []
    app = App(lifespan=recording_lifespan(log), shutdown_timeout=TIMEOUT)
    task_started = anyio.Event()
    release = anyio.Event()

    async def slow() -> None:
        task_started.set()
        await release.wait()
        log.append("slow task finished")

    def after() -> None:
        log.append("next task finished")

    @app.get("/")
    async def handler(tasks: BackgroundTasks) -> None:
        tasks.add_task(slow)
        tasks.add_task(after)

    server = Server(app, log)
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as group:
            group.start_soon(server.lifespan)
            await server.started.wait()
            group.start_soon(server.request)
            await task_started.wait()

            server.shutdown_requested.set()
            await anyio.wait_all_tasks_blocked()
            assert not server.finished.is_set()  # still waiting for the task
            release.set()

    assert log == [
        "lifespan: startup",
        "server got lifespan.startup.complete",
        "server: response to / complete",
        "server: shutdown",
        "slow task finished",
        "next task finished",
        "server: / returned",
        "lifespan: exit",
        "server got lifespan.shutdown.complete",
    ]
    stats = app.tasks.stats()
    assert (stats["succeeded"], stats["cancelled"]) == (2, 0)


@pytest.mark.anyio
async def test_shutdown_timeout_cancels_and_names_each_task(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    log: Log = []
    app = App(lifespan=recording_lifespan(log), shutdown_timeout=0.1)
    task_started = anyio.Event()

    async def stuck() -> None:
        task_started.set()
        await anyio.sleep_forever()

    def never_started() -> None:
        log.append("never_started ran")

    async def also_never_started() -> None:
        log.append("also_never_started ran")

    @app.get("/")
    async def handler(tasks: BackgroundTasks) -> None:
        tasks.add_task(stuck)
        tasks.add_task(never_started)
        tasks.add_task(also_never_started)

    server = Server(app, log)
    with caplog.at_level(logging.WARNING, logger="asgi_bg.background"):
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as group:
                group.start_soon(server.lifespan)
                await server.started.wait()
                group.start_soon(server.request)
                await task_started.wait()
                server.shutdown_requested.set()

    assert log[-4:] == [
        "server: shutdown",
        "server: / returned",
        "lifespan: exit",
        "server got lifespan.shutdown.complete",
    ]
    stats = app.tasks.stats()
    assert (stats["scheduled"], stats["cancelled"], stats["succeeded"]) == (3, 3, 0)
    assert (stats["running"], stats["pending"]) == (0, 0)
    messages = [r.getMessage() for r in caplog.records if r.name == "asgi_bg.background"]
    for func in (stuck, never_started, also_never_started):
        assert any(f"Cancelled background task {task_name(func)}" in m for m in messages), func


class _Signal(logging.Handler):
    """Sets an event when the runner logs that the shutdown timeout was reached."""

    def __init__(self) -> None:
        super().__init__()
        self.reached = anyio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Shutdown timeout"):
            self.reached.set()


def _stuck_tasks(log: Log, started: anyio.Event, release: anyio.Event) -> dict[str, Any]:
    """Async tasks that wait from their first step, each holding a different scope open."""

    async def own_scope() -> None:
        with anyio.CancelScope():
            started.set()
            await anyio.sleep_forever()
        log.append("own_scope went on")

    async def own_group() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(anyio.sleep_forever)
            started.set()
            await anyio.sleep_forever()
        log.append("own_group went on")

    async def shielded() -> None:
        with anyio.CancelScope(shield=True):
            started.set()
            await release.wait()
            log.append("shielded part finished")
        await anyio.sleep_forever()
        log.append("shielded went on")

    async def swallows() -> None:
        try:
            started.set()
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            log.append("swallowed")

    return {f.__name__: f for f in (own_scope, own_group, shielded, swallows)}


@pytest.mark.anyio
@pytest.mark.parametrize("shape", ["own_scope", "own_group", "shielded", "swallows"])
async def test_shutdown_cancels_a_task_holding_its_own_scope_and_names_the_rest(
    anyio_backend: str, shape: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The runner opens its cancel scope only once a task waits, and never inside a scope
    # the task opened itself: shutdown must still stop and name such a task.
    log: Log = []
    app = App(lifespan=recording_lifespan(log), shutdown_timeout=0.1)
    started, release = anyio.Event(), anyio.Event()
    stuck = _stuck_tasks(log, started, release)[shape]

    async def never_started() -> None:
        log.append("never_started ran")

    @app.get("/")
    async def handler(tasks: BackgroundTasks) -> None:
        tasks.add_task(stuck)
        tasks.add_task(never_started)

    server = Server(app, log)
    signal = _Signal()
    logging.getLogger("asgi_bg.background").addHandler(signal)
    try:
        with caplog.at_level(logging.WARNING, logger="asgi_bg.background"):
            with anyio.fail_after(TIMEOUT):
                async with anyio.create_task_group() as group:
                    group.start_soon(server.lifespan)
                    await server.started.wait()
                    group.start_soon(server.request)
                    await started.wait()
                    server.shutdown_requested.set()
                    await signal.reached.wait()
                    release.set()
    finally:
        logging.getLogger("asgi_bg.background").removeHandler(signal)

    assert not any(entry.endswith("went on") or entry.endswith("ran") for entry in log), log
    assert ("shielded part finished" in log) == (shape == "shielded")
    assert ("swallowed" in log) == (shape == "swallows")
    assert log[-3:] == [
        "server: / returned",
        "lifespan: exit",
        "server got lifespan.shutdown.complete",
    ]
    stats = app.tasks.stats()
    assert stats["cancelled"] == (1 if shape == "swallows" else 2)
    assert (stats["running"], stats["pending"]) == (0, 0)
    messages = [r.getMessage() for r in caplog.records if r.name == "asgi_bg.background"]
    assert any(f"Cancelled background task {task_name(never_started)}" in m for m in messages)


@pytest.mark.anyio
async def test_shutdown_timeout_gives_up_on_a_blocked_def_task_and_names_it(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A thread cannot be cancelled: the task is abandoned, counted and named, and the
    ``def`` task queued behind it in the same thread trip never starts."""
    log: Log = []
    ran: Log = []
    app = App(shutdown_timeout=0.1)
    task_started = threading.Event()
    release = threading.Event()
    thread_done = threading.Event()
    waiter = anyio.CapacityLimiter(1)

    def blocked() -> None:
        task_started.set()
        release.wait(TIMEOUT)

    def queued() -> None:
        ran.append("queued")

    def marks_thread_done() -> None:  # would run next in the same thread trip
        thread_done.set()

    @app.get("/")
    async def handler(tasks: BackgroundTasks) -> None:
        tasks.add_task(blocked)
        tasks.add_task(queued)
        tasks.add_task(marks_thread_done)

    server = Server(app, log)
    try:
        with caplog.at_level(logging.WARNING, logger="asgi_bg.background"):
            with anyio.fail_after(TIMEOUT):
                async with anyio.create_task_group() as group:
                    group.start_soon(server.lifespan)
                    await server.started.wait()
                    group.start_soon(server.request)
                    assert await anyio.to_thread.run_sync(
                        task_started.wait, TIMEOUT, limiter=waiter
                    )
                    server.shutdown_requested.set()
    finally:
        release.set()

    assert server.finished.is_set()
    stats = app.tasks.stats()
    assert (stats["cancelled"], stats["running"], stats["pending"]) == (3, 0, 0)
    messages = [r.getMessage() for r in caplog.records if r.name == "asgi_bg.background"]
    for func in (blocked, queued, marks_thread_done):
        assert any(f"Cancelled background task {task_name(func)}" in m for m in messages), func
    # Released now, the abandoned thread must not go on to the cancelled tasks.
    assert not await anyio.to_thread.run_sync(thread_done.wait, 0.2, limiter=waiter)
    assert ran == []


@pytest.mark.anyio
async def test_tasks_finished_before_shutdown_are_not_waited_for(anyio_backend: str) -> None:
    log: Log = []
    app = App(lifespan=recording_lifespan(log), shutdown_timeout=TIMEOUT)

    @app.get("/")
    async def handler(tasks: BackgroundTasks) -> None:
        tasks.add_task(log.append, "task")

    server = Server(app, log)
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as group:
            group.start_soon(server.lifespan)
            await server.started.wait()
            await server.request()
            server.shutdown_requested.set()

    assert log == [
        "lifespan: startup",
        "server got lifespan.startup.complete",
        "server: response to / complete",
        "task",
        "server: / returned",
        "server: shutdown",
        "lifespan: exit",
        "server got lifespan.shutdown.complete",
    ]


def test_test_client_context_manager_runs_startup_requests_and_shutdown(
    anyio_backend: str,
) -> None:
    log: Log = []
    app = App(lifespan=recording_lifespan(log))

    @app.get("/")
    def handler(tasks: BackgroundTasks) -> None:
        log.append("handler")
        tasks.add_task(log.append, "task")

    with TestClient(app, backend=anyio_backend) as client:
        assert log == ["lifespan: startup"]
        client.get("/")
        assert log == ["lifespan: startup", "handler", "task"]

    assert log == ["lifespan: startup", "handler", "task", "lifespan: exit"]
