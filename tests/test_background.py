"""Background tasks: when they run, in what order, in which thread, and what their failures do.

Every test runs on asyncio and on trio. Ordering is checked on one event log shared by
the server side (a recording ``send``), the user middleware and the tasks themselves.
"""

# No ``from __future__ import annotations``: handlers below name local dependencies in
# ``Annotated[..., Depends(local)]``, which only eager annotations can resolve.
import contextvars
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import pytest
from asgi_support import http_scope

from asgi_bg import (
    App,
    BackgroundTask,
    BackgroundTasks,
    Depends,
    HTTPException,
    PlainTextResponse,
    Request,
    Response,
    StreamingResponse,
)
from asgi_bg._types import ASGIApp, Message, Receive, Scope, Send
from asgi_bg.testing import AsyncTestClient, TestClient

TIMEOUT = 10  # generous: only reached when a test is about to fail

Log = list[str]


class Boom(Exception):
    """What failing tasks, handlers and teardowns raise."""


def task_name(func: Callable[..., Any]) -> str:
    """The name a task is logged under: ``module.qualname``."""
    return f"{func.__module__}.{func.__qualname__}"


def describe(message: Message) -> str:
    """A message as a server sees it: ``start``, ``body b'..' more`` or ``body b'..' final``."""
    if message["type"] == "http.response.start":
        return f"start {message['status']}"
    if message["type"] == "http.response.body":
        final = "more" if message.get("more_body", False) else "final"
        return f"body {bytes(message.get('body', b''))!r} {final}"
    return str(message["type"])


async def serve_once(
    app: ASGIApp, log: Log, path: str = "/", *, receive: Receive | None = None
) -> None:
    """Play the server: call ``app`` once, recording every message it hands over on ``log``."""
    requested = False

    async def receive_request() -> Message:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        log.append(describe(message))

    with anyio.fail_after(TIMEOUT):
        await app(http_scope(path), receive or receive_request, send)
    log.append("app returned")


class RecordingMiddleware:
    """User middleware that notes when it has returned."""

    def __init__(self, app: ASGIApp, log: Log) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
        self.log.append("middleware returned")


def background_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "asgi_bg.background"]


# --- Ported from Starlette's tests/test_background.py ------------------------------------


@pytest.mark.parametrize("served_by", ["App", "bare ASGI"])
@pytest.mark.parametrize("kind", ["async", "sync"])
def test_task_on_a_response_runs_once_the_call_returns(
    anyio_backend: str, served_by: str, kind: str
) -> None:
    done: Log = []

    async def async_task() -> None:
        done.append("async")

    def sync_task() -> None:
        done.append("sync")

    task = BackgroundTask(async_task if kind == "async" else sync_task)

    async def bare(scope: Scope, receive: Receive, send: Send) -> None:
        response = PlainTextResponse("task initiated", background=task)
        await response(scope, receive, send)

    app: ASGIApp = bare
    if served_by == "App":
        served = App()
        served.add_route("/", lambda: PlainTextResponse("task initiated", background=task))
        app = served

    response = TestClient(app, backend=anyio_backend).get("/")

    assert response.text == "task initiated"
    assert done == [kind]


@pytest.mark.parametrize("served_by", ["App", "bare ASGI"])
def test_multiple_tasks_run_in_the_order_added(anyio_backend: str, served_by: str) -> None:
    amounts: list[int] = []

    async def increment_async(amount: int) -> None:
        amounts.append(amount)

    def increment(amount: int) -> None:
        amounts.append(amount)

    def make_response() -> Response:
        tasks = BackgroundTasks()
        tasks.add_task(increment, amount=1)
        tasks.add_task(increment_async, amount=2)
        tasks.add_task(increment, amount=3)
        return PlainTextResponse("tasks initiated", background=tasks)

    async def bare(scope: Scope, receive: Receive, send: Send) -> None:
        await make_response()(scope, receive, send)

    app: ASGIApp = bare
    if served_by == "App":
        served = App()
        served.add_route("/", make_response)
        app = served

    response = TestClient(app, backend=anyio_backend).get("/")

    assert response.text == "tasks initiated"
    assert amounts == [1, 2, 3]


def test_a_failing_task_does_not_stop_the_next_one(anyio_backend: str) -> None:
    # Starlette's test_multi_tasks_failure_avoids_next_execution, with our opposite rule.
    calls: list[int] = []

    def increment() -> None:
        calls.append(len(calls) + 1)
        if len(calls) == 1:
            raise Boom("task failed")

    app = App()

    @app.get("/")
    async def handler() -> Response:
        tasks = BackgroundTasks()
        tasks.add_task(increment)
        tasks.add_task(increment)
        return PlainTextResponse("tasks initiated", background=tasks)

    with pytest.raises(Boom, match="task failed"):
        TestClient(app, backend=anyio_backend).get("/")
    assert calls == [1, 2]


# --- Ported from FastAPI's background-task tutorial tests -------------------------------


def test_notification_is_written_after_the_response(anyio_backend: str, tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    app = App()

    def write_notification(email: str, message: str = "") -> None:
        log.write_text(f"notification for {email}: {message}")

    @app.post("/send-notification/{email}")
    async def send_notification(email: str, background_tasks: BackgroundTasks) -> dict[str, str]:
        background_tasks.add_task(write_notification, email, message="some notification")
        return {"message": "Notification sent in the background"}

    response = TestClient(app, backend=anyio_backend).post("/send-notification/foo@example.com")

    assert response.status_code == 200
    assert response.json() == {"message": "Notification sent in the background"}
    assert log.read_text() == "notification for foo@example.com: some notification"


def _tutorial_dependency_app(log: Path, spelling: str) -> App:
    app = App()

    def write_log(message: str) -> None:
        with log.open("a") as file:
            file.write(message)

    def get_query(background_tasks: BackgroundTasks, q: str | None = None) -> str | None:
        if q:
            background_tasks.add_task(write_log, f"found query: {q}\n")
        return q

    if spelling == "Annotated":

        @app.post("/send-notification/{email}")
        async def annotated(
            email: str,
            background_tasks: BackgroundTasks,
            q: Annotated[str | None, Depends(get_query)],
        ) -> dict[str, str]:
            background_tasks.add_task(write_log, f"message to {email}\n")
            return {"message": "Message sent"}

    else:

        @app.post("/send-notification/{email}")
        async def default(
            email: str,
            background_tasks: BackgroundTasks,
            q: str | None = Depends(get_query),
        ) -> dict[str, str]:
            background_tasks.add_task(write_log, f"message to {email}\n")
            return {"message": "Message sent"}

    return app


@pytest.mark.parametrize("spelling", ["Annotated", "default"])
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?q=some-query", "found query: some-query\nmessage to foo@example.com\n"),
        ("", "message to foo@example.com\n"),
    ],
)
def test_dependency_queues_on_the_same_tasks(
    anyio_backend: str, tmp_path: Path, spelling: str, query: str, expected: str
) -> None:
    log = tmp_path / "log.txt"
    client = TestClient(_tutorial_dependency_app(log, spelling), backend=anyio_backend)

    response = client.post(f"/send-notification/foo@example.com{query}")

    assert response.status_code == 200, response.text
    assert response.json() == {"message": "Message sent"}
    assert log.read_text() == expected


def test_add_task_passes_positional_and_keyword_arguments(anyio_backend: str) -> None:
    received: list[tuple[Any, ...]] = []

    def sync_task(a: int, b: str, *, c: list[int], d: None = None) -> None:
        received.append(("sync", a, b, c, d))

    async def async_task(a: int, /, b: str = "default", **extra: int) -> None:
        received.append(("async", a, b, extra))

    app = App()

    @app.get("/")
    async def handler(tasks: BackgroundTasks) -> Response:
        tasks.add_task(sync_task, 1, "two", c=[3])
        tasks.add_task(async_task, 4, x=5)
        return Response(background=BackgroundTask(async_task, 6, "seven", y=8))

    TestClient(app, backend=anyio_backend).get("/")

    assert received == [
        ("sync", 1, "two", [3], None),
        ("async", 4, "default", {"x": 5}),
        ("async", 6, "seven", {"y": 8}),
    ]


# --- Failures are isolated ---------------------------------------------------------------


def _app_with_failing_middle_task(
    log: Log, failure: Exception, on_task_error: Callable[..., Any] | None = None
) -> App:
    app = App(on_task_error=on_task_error)

    def first() -> None:
        log.append("first")

    async def failing() -> None:
        log.append("failing")
        raise failure

    def last() -> None:
        log.append("last")

    @app.get("/")
    async def handler(tasks: BackgroundTasks) -> dict[str, bool]:
        tasks.add_task(first)
        tasks.add_task(failing)
        tasks.add_task(last)
        return {"ok": True}

    return app


@pytest.mark.parametrize("hook_kind", ["sync", "async"])
def test_failing_task_is_logged_counted_and_passed_to_the_hook(
    anyio_backend: str, hook_kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    log: Log = []
    failure = Boom("task failed")
    hooked: list[tuple[BackgroundTask, BaseException]] = []

    def sync_hook(task: BackgroundTask, exc: BaseException) -> None:
        hooked.append((task, exc))

    async def async_hook(task: BackgroundTask, exc: BaseException) -> None:
        await anyio.lowlevel.checkpoint()
        hooked.append((task, exc))

    hook = sync_hook if hook_kind == "sync" else async_hook
    app = _app_with_failing_middle_task(log, failure, hook)
    client = TestClient(app, raise_server_exceptions=False, backend=anyio_backend)

    with caplog.at_level(logging.INFO, logger="asgi_bg"):
        response = client.get("/")

    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert log == ["first", "failing", "last"]
    stats = app.tasks.stats()
    assert (stats["scheduled"], stats["succeeded"], stats["failed"]) == (3, 2, 1)
    assert (stats["pending"], stats["running"]) == (0, 0)
    [(task, exc)] = hooked
    assert exc is failure
    assert task.func.__name__ == "failing"
    [record] = background_records(caplog)
    assert record.levelno == logging.ERROR
    assert "_app_with_failing_middle_task.<locals>.failing" in record.getMessage()
    assert "GET /" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[1] is failure


def test_failing_task_is_raised_by_the_test_client_after_the_rest_ran(anyio_backend: str) -> None:
    log: Log = []
    failure = Boom("task failed")
    app = _app_with_failing_middle_task(log, failure)

    with pytest.raises(Boom) as raised:
        TestClient(app, backend=anyio_backend).get("/")

    assert raised.value is failure
    assert log == ["first", "failing", "last"]


def test_a_failing_hook_is_logged_and_the_remaining_tasks_run(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    log: Log = []

    def broken_hook(task: BackgroundTask, exc: BaseException) -> None:
        raise RuntimeError("hook broke")

    app = _app_with_failing_middle_task(log, Boom("task failed"), broken_hook)
    client = TestClient(app, raise_server_exceptions=False, backend=anyio_backend)

    with caplog.at_level(logging.ERROR, logger="asgi_bg.background"):
        assert client.get("/").status_code == 200

    assert log == ["first", "failing", "last"]
    messages = [r.getMessage() for r in background_records(caplog)]
    assert any("on_task_error hook failed" in m for m in messages), messages


def test_a_failure_among_consecutive_def_tasks_is_isolated(anyio_backend: str) -> None:
    """Three ``def`` tasks in a row: the middle one raises, its failure is reported
    before the third starts, and the third still runs."""
    log: Log = []

    def one() -> None:
        log.append("one")

    def two() -> None:
        log.append("two")
        raise Boom("two failed")

    def three() -> None:
        log.append("three")

    def hook(task: BackgroundTask, exc: BaseException) -> None:
        log.append(f"hook {task.func.__name__} {exc}")

    app = App(on_task_error=hook)

    @app.get("/")
    def handler(tasks: BackgroundTasks) -> None:
        tasks.add_task(one)
        tasks.add_task(two)
        tasks.add_task(three)

    response = TestClient(app, raise_server_exceptions=False, backend=anyio_backend).get("/")

    assert response.status_code == 200
    assert log == ["one", "two", "hook two two failed", "three"]
    stats = app.tasks.stats()
    assert (stats["succeeded"], stats["failed"], stats["pending"]) == (2, 1, 0)


# --- Two sources, one object -------------------------------------------------------------


def test_injected_tasks_run_first_then_the_responses_own(anyio_backend: str) -> None:
    log: Log = []
    app = App()

    def record(name: str) -> None:
        log.append(name)

    async def record_async(name: str) -> None:
        log.append(name)

    @app.get("/")
    async def handler(tasks: BackgroundTasks) -> Response:
        # The response's tasks are created first: source decides the order, not time.
        own = BackgroundTasks()
        own.add_task(record, "response 1")
        own.add_task(record_async, "response 2")
        response = PlainTextResponse("ok", background=own)
        tasks.add_task(record_async, "injected 1")
        tasks.add_task(record, "injected 2")
        return response

    @app.get("/single")
    async def single(tasks: BackgroundTasks) -> Response:
        tasks.add_task(record, "injected")
        return PlainTextResponse("ok", background=BackgroundTask(record_async, "response"))

    client = TestClient(app, backend=anyio_backend)

    client.get("/")
    assert log == ["injected 1", "injected 2", "response 1", "response 2"]

    log.clear()
    client.get("/single")
    assert log == ["injected", "response"]
    assert app.tasks.stats()["scheduled"] == 6


def test_passing_the_injected_tasks_as_background_runs_each_once(anyio_backend: str) -> None:
    log: Log = []
    app = App()

    def record(name: str) -> None:
        log.append(name)

    @app.get("/")
    async def handler(tasks: BackgroundTasks) -> Response:
        tasks.add_task(record, "a")
        response = PlainTextResponse("ok", background=tasks)
        tasks.add_task(record, "b")  # added after the response was built: still runs, once
        return response

    TestClient(app, backend=anyio_backend).get("/")

    assert log == ["a", "b"]
    assert app.tasks.stats()["scheduled"] == 2


def test_handler_and_nested_dependencies_share_one_collection(anyio_backend: str) -> None:
    log: Log = []
    seen: list[BackgroundTasks] = []
    app = App()

    def record(name: str) -> None:
        log.append(name)

    def inner(tasks: BackgroundTasks) -> None:  # a def dependency, run in a worker thread
        seen.append(tasks)
        tasks.add_task(record, "inner")

    async def outer(tasks: BackgroundTasks, _: Annotated[None, Depends(inner)]) -> None:
        seen.append(tasks)
        tasks.add_task(record, "outer")

    @app.get("/")
    async def handler(
        background_tasks: BackgroundTasks,
        _outer: Annotated[None, Depends(outer)],
        _inner: Annotated[None, Depends(inner)],  # cached: not called a second time
    ) -> None:
        seen.append(background_tasks)
        background_tasks.add_task(record, "handler")

    TestClient(app, backend=anyio_backend).get("/")

    assert len(seen) == 3
    assert seen[0] is seen[1] is seen[2]
    assert log == ["inner", "outer", "handler"]


# --- Ordering against the response messages ----------------------------------------------


@pytest.mark.anyio
async def test_tasks_start_after_the_final_body_and_after_middleware(anyio_backend: str) -> None:
    log: Log = []
    app = App(middleware=[(RecordingMiddleware, {"log": log})])

    async def record_async(name: str) -> None:
        log.append(name)

    def record(name: str) -> None:
        log.append(name)

    @app.get("/stream")
    async def stream(tasks: BackgroundTasks) -> Response:
        tasks.add_task(record_async, "injected async task")
        tasks.add_task(record, "injected sync task")

        async def chunks() -> AsyncIterator[bytes]:
            for chunk in (b"a", b"b"):
                log.append(f"yield {chunk!r}")
                yield chunk

        return StreamingResponse(chunks(), background=BackgroundTask(record, "response task"))

    @app.get("/json")
    async def json(tasks: BackgroundTasks) -> dict[str, int]:
        tasks.add_task(record_async, "task")
        return {"n": 1}

    await serve_once(app, log, "/stream")
    assert log == [
        "start 200",
        "yield b'a'",
        "body b'a' more",
        "yield b'b'",
        "body b'b' more",
        "body b'' final",
        "middleware returned",
        "injected async task",
        "injected sync task",
        "response task",
        "app returned",
    ]

    log.clear()
    await serve_once(app, log, "/json")
    assert log == [
        "start 200",
        "body b'{\"n\":1}' final",
        "middleware returned",
        "task",
        "app returned",
    ]


@pytest.mark.anyio
async def test_the_response_reaches_the_client_while_a_slow_task_runs(anyio_backend: str) -> None:
    """The server gets the whole response, then the app keeps running its task."""
    release = anyio.Event()
    app = App()

    async def slow() -> None:
        await release.wait()

    @app.get("/")
    async def handler(tasks: BackgroundTasks) -> str:
        tasks.add_task(slow)
        return "done"

    complete = anyio.Event()
    returned = anyio.Event()

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            complete.set()

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def serve() -> None:
        await app(http_scope(), receive, send)
        returned.set()

    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as group:
            group.start_soon(serve)
            await complete.wait()
            await anyio.wait_all_tasks_blocked()
            assert not returned.is_set()
            assert app.tasks.stats()["running"] == 1
            release.set()
    assert app.tasks.stats()["succeeded"] == 1


# --- Disconnects ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_disconnect_mid_stream_stops_the_stream_and_tasks_still_run(
    anyio_backend: str,
) -> None:
    log: Log = []
    first_chunk_sent = anyio.Event()
    app = App()

    async def record(name: str) -> None:
        log.append(name)

    @app.get("/")
    async def handler(tasks: BackgroundTasks) -> Response:
        tasks.add_task(record, "injected task")

        async def endless() -> AsyncIterator[bytes]:
            n = 0
            while True:
                n += 1
                yield str(n).encode()
                await anyio.Event().wait()  # no next chunk: only the disconnect ends this

        return StreamingResponse(endless(), background=BackgroundTask(record, "response task"))

    requested = False

    async def receive() -> Message:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await first_chunk_sent.wait()
        log.append("client disconnects")
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        log.append(describe(message))
        if message["type"] == "http.response.body":
            first_chunk_sent.set()

    with anyio.fail_after(TIMEOUT):
        await app(http_scope(), receive, send)

    assert log == [
        "start 200",
        "body b'1' more",
        "client disconnects",
        "injected task",
        "response task",
    ]
    assert app.tasks.stats()["succeeded"] == 2


@pytest.mark.anyio
async def test_client_gone_after_the_handler_succeeded_tasks_still_run(anyio_backend: str) -> None:
    """The handler sees the disconnect and returns; the server's ``send`` then fails
    (ASGI 2.4: ``OSError`` once the client is gone). The queued tasks run anyway."""
    log: Log = []
    app = App()

    async def record(name: str) -> None:
        log.append(name)

    @app.get("/")
    async def handler(request: Request, tasks: BackgroundTasks) -> Response:
        tasks.add_task(record, "injected task")
        await request.body()
        log.append(f"disconnected={await request.is_disconnected()}")
        return PlainTextResponse("late", background=BackgroundTask(record, "response task"))

    messages: list[Message] = [
        {"type": "http.request", "body": b"", "more_body": False},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        if messages:
            return messages.pop(0)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        raise OSError("client went away")

    with anyio.fail_after(TIMEOUT):
        await app(http_scope(), receive, send)

    assert log == ["disconnected=True", "injected task", "response task"]
    assert app.tasks.stats()["succeeded"] == 2


# --- Handler errors discard the request's tasks ---------------------------------------------


@pytest.mark.parametrize(
    ("error", "status"),
    [(HTTPException(418, "teapot"), 418), (Boom("handler failed"), 500)],
    ids=["HTTPException", "plain exception"],
)
@pytest.mark.parametrize("with_middleware", [False, True], ids=["bare", "middleware"])
def test_tasks_of_a_failing_handler_are_discarded(
    anyio_backend: str,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
    status: int,
    with_middleware: bool,
) -> None:
    log: Log = []
    app = App(middleware=[(RecordingMiddleware, {"log": []})] if with_middleware else [])

    def record(name: str) -> None:
        log.append(name)

    def queue_in_dependency(tasks: BackgroundTasks) -> None:
        tasks.add_task(record, "from dependency")

    @app.get("/")
    async def handler(
        tasks: BackgroundTasks, _: Annotated[None, Depends(queue_in_dependency)]
    ) -> None:
        tasks.add_task(record, "from handler")
        raise error

    client = TestClient(app, raise_server_exceptions=False, backend=anyio_backend)
    with caplog.at_level(logging.WARNING, logger="asgi_bg.background"):
        response = client.get("/")

    assert response.status_code == status
    assert log == []
    stats = app.tasks.stats()
    assert (stats["discarded"], stats["scheduled"], stats["succeeded"]) == (2, 0, 0)
    [record_] = background_records(caplog)
    assert record_.levelno == logging.WARNING
    assert "Discarded 2 background task(s)" in record_.getMessage()
    assert task_name(record) in record_.getMessage()


def test_plain_handler_error_is_raised_by_the_test_client_and_tasks_discarded(
    anyio_backend: str,
) -> None:
    log: Log = []
    app = App()
    failure = Boom("handler failed")

    @app.get("/")
    async def handler(tasks: BackgroundTasks) -> None:
        tasks.add_task(log.append, "never")
        raise failure

    with pytest.raises(Boom) as raised:
        TestClient(app, backend=anyio_backend).get("/")

    assert raised.value is failure
    assert log == []
    assert app.tasks.stats()["discarded"] == 1


def test_an_exception_handlers_own_background_still_runs(anyio_backend: str) -> None:
    log: Log = []
    app = App()

    @app.exception_handler(Boom)
    async def on_boom(request: Request, exc: Boom) -> Response:
        return PlainTextResponse("handled", 409, background=BackgroundTask(log.append, "handler's"))

    @app.get("/")
    async def handler(tasks: BackgroundTasks) -> None:
        tasks.add_task(log.append, "discarded")
        raise Boom

    response = TestClient(app, backend=anyio_backend).get("/")

    assert (response.status_code, response.text) == (409, "handled")
    assert log == ["handler's"]
    stats = app.tasks.stats()
    assert (stats["discarded"], stats["succeeded"]) == (1, 1)


# --- Context and threads ------------------------------------------------------------------

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")
current_user: contextvars.ContextVar[str] = contextvars.ContextVar("current_user", default="unset")


class RequestIdMiddleware:
    """Sets a contextvar for the rest of the request, like a logging middleware would."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id.set("req-42")
        await self.app(scope, receive, send)


def _get(client: TestClient, lifespan: bool, path: str = "/") -> None:
    """One request; with the lifespan running, ``def`` tasks go to the app's long-lived
    worker threads, without it each run makes its own ``anyio.to_thread`` trip."""
    if lifespan:
        with client:
            client.get(path)
    else:
        client.get(path)


LIFESPAN = pytest.mark.parametrize("lifespan", [False, True], ids=["trip", "workers"])


@LIFESPAN
def test_contextvars_from_middleware_and_async_dependencies_reach_tasks(
    anyio_backend: str, lifespan: bool
) -> None:
    seen: list[tuple[str, str, str]] = []
    app = App(middleware=[(RequestIdMiddleware, {})])

    async def authenticate() -> str:
        current_user.set("alice")
        return "alice"

    async def async_task() -> None:
        seen.append(("async", request_id.get(), current_user.get()))

    def sync_task() -> None:
        seen.append(("sync", request_id.get(), current_user.get()))

    @app.get("/")
    async def handler(
        tasks: BackgroundTasks, user: Annotated[str, Depends(authenticate)]
    ) -> Response:
        tasks.add_task(async_task)
        tasks.add_task(sync_task)
        return Response(background=BackgroundTask(sync_task))

    _get(TestClient(app, backend=anyio_backend), lifespan)

    assert seen == [
        ("async", "req-42", "alice"),
        ("sync", "req-42", "alice"),
        ("sync", "req-42", "alice"),
    ]


@LIFESPAN
def test_def_tasks_run_in_worker_threads_and_async_tasks_on_the_loop(
    anyio_backend: str, lifespan: bool
) -> None:
    threads: dict[str, int] = {}
    app = App()

    async def async_task() -> None:
        threads["async task"] = threading.get_ident()

    def sync_task() -> None:
        threads["sync task"] = threading.get_ident()

    @app.get("/")
    async def handler(tasks: BackgroundTasks) -> None:
        threads["loop"] = threading.get_ident()
        tasks.add_task(async_task)
        tasks.add_task(sync_task)

    _get(TestClient(app, backend=anyio_backend), lifespan)

    assert threads["async task"] == threads["loop"]
    assert threads["sync task"] != threads["loop"]


def test_def_tasks_run_in_each_of_successive_lifespans_of_one_app(anyio_backend: str) -> None:
    # Each lifespan hosts its own task threads; none may be left counted by the next one.
    ran: list[int] = []
    app = App()

    def sync_task(number: int) -> None:
        ran.append(number)

    @app.get("/{number}")
    async def handler(number: int, tasks: BackgroundTasks) -> None:
        tasks.add_task(sync_task, number)

    def serve() -> None:
        for number in range(3):
            with TestClient(app, backend=anyio_backend) as client:
                client.get(f"/{number}")

    # In a thread, so that a task never run fails the test instead of hanging it.
    serving = threading.Thread(target=serve, daemon=True)
    serving.start()
    serving.join(TIMEOUT)
    assert not serving.is_alive(), f"tasks stuck after lifespans {ran}"
    assert ran == [0, 1, 2]


@LIFESPAN
def test_def_tasks_can_call_back_into_the_loop_with_anyio_from_thread(
    anyio_backend: str, lifespan: bool
) -> None:
    # API.md: def tasks run through anyio.to_thread, so anyio.from_thread works in them.
    seen: list[str] = []
    app = App()

    async def on_the_loop(word: str) -> str:
        await anyio.lowlevel.checkpoint()
        return word.upper()

    def sync_task() -> None:
        seen.append(anyio.from_thread.run(on_the_loop, "called back"))

    @app.get("/")
    async def handler(tasks: BackgroundTasks) -> None:
        tasks.add_task(sync_task)
        tasks.add_task(sync_task)

    _get(TestClient(app, backend=anyio_backend), lifespan)

    assert seen == ["CALLED BACK", "CALLED BACK"]


@pytest.mark.anyio
async def test_blocking_def_tasks_use_the_apps_own_limited_threads(anyio_backend: str) -> None:
    """``task_threads=2``: two blocked tasks fill it, a third waits its turn, and a ``def``
    handler still answers even with the default thread pool as small as the task pool."""
    app = App(task_threads=2)
    started = [threading.Event() for _ in range(3)]
    release = threading.Event()
    waiter = anyio.CapacityLimiter(3)  # the test's own waits take no thread the app needs

    def blocking(n: int) -> None:
        started[n].set()
        release.wait(TIMEOUT)

    @app.post("/block/{n:int}")
    async def block(n: int, tasks: BackgroundTasks) -> None:
        tasks.add_task(blocking, n)

    @app.get("/sync")
    def sync_handler() -> str:
        return "answered"

    async def wait_started(n: int) -> None:
        assert await anyio.to_thread.run_sync(started[n].wait, TIMEOUT, limiter=waiter)

    default_pool = anyio.to_thread.current_default_thread_limiter()
    default_pool.total_tokens = 2  # were tasks run on it, the def handler would starve
    client = AsyncTestClient(app)
    try:
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as group:
                group.start_soon(client.post, "/block/0")
                group.start_soon(client.post, "/block/1")
                await wait_started(0)
                await wait_started(1)

                response = await client.get("/sync")
                assert response.text == '"answered"'

                group.start_soon(client.post, "/block/2")
                await anyio.wait_all_tasks_blocked()
                stats = app.tasks.stats()
                assert (stats["running"], stats["pending"]) == (2, 1)
                assert not started[2].is_set()

                release.set()
                await wait_started(2)
    finally:
        release.set()
    assert app.tasks.stats()["succeeded"] == 3


# --- Generator dependencies ----------------------------------------------------------------


class Resource:
    def __init__(self, name: str) -> None:
        self.name = name
        self.open = True


@pytest.mark.anyio
async def test_generator_dependencies_tear_down_after_the_tasks_in_reverse_order(
    anyio_backend: str,
) -> None:
    log: Log = []
    app = App()

    def sync_resource() -> Iterator[Resource]:
        resource = Resource("sync")
        log.append("open sync")
        yield resource
        resource.open = False
        log.append("close sync")

    async def async_resource() -> AsyncIterator[Resource]:
        resource = Resource("async")
        log.append("open async")
        yield resource
        resource.open = False
        log.append("close async")

    def use_sync(*resources: Resource) -> None:
        log.append("def task uses " + " ".join(f"{r.name}={r.open}" for r in resources))

    async def use_async(*resources: Resource) -> None:
        log.append("async task uses " + " ".join(f"{r.name}={r.open}" for r in resources))

    @app.get("/")
    async def handler(
        tasks: BackgroundTasks,
        first: Annotated[Resource, Depends(sync_resource)],
        second: Annotated[Resource, Depends(async_resource)],
    ) -> Response:
        tasks.add_task(use_sync, first, second)
        return Response(b"x", background=BackgroundTask(use_async, first, second))

    await serve_once(app, log)

    assert log == [
        "open sync",
        "open async",
        "start 200",
        "body b'x' final",
        "def task uses sync=True async=True",
        "async task uses sync=True async=True",
        "close async",
        "close sync",
        "app returned",
    ]


def _app_with_failing_teardown(log: Log, failure: Exception) -> App:
    app = App()

    def fine() -> Iterator[None]:
        yield
        log.append("fine torn down")

    async def broken() -> AsyncIterator[None]:
        yield
        log.append("broken tears down")
        raise failure

    @app.get("/")
    async def handler(
        tasks: BackgroundTasks,
        _fine: Annotated[None, Depends(fine)],
        _broken: Annotated[None, Depends(broken)],
    ) -> str:
        tasks.add_task(log.append, "task")
        return "ok"

    return app


def test_teardown_error_is_logged_and_the_other_teardowns_run(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    log: Log = []
    failure = Boom("teardown failed")
    app = _app_with_failing_teardown(log, failure)
    client = TestClient(app, raise_server_exceptions=False, backend=anyio_backend)

    with caplog.at_level(logging.ERROR, logger="asgi_bg"):
        response = client.get("/")

    assert response.status_code == 200
    assert log == ["task", "broken tears down", "fine torn down"]
    [record] = [r for r in caplog.records if r.exc_info and r.exc_info[1] is failure]
    assert record.levelno == logging.ERROR
    assert "GET /" in record.getMessage()


def test_teardown_error_is_raised_by_the_test_client(anyio_backend: str) -> None:
    log: Log = []
    failure = Boom("teardown failed")

    with pytest.raises(Boom) as raised:
        TestClient(_app_with_failing_teardown(log, failure), backend=anyio_backend).get("/")

    assert raised.value is failure
    assert log == ["task", "broken tears down", "fine torn down"]


# --- Stats and join -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_stats_follow_the_tasks_and_join_waits_for_them(anyio_backend: str) -> None:
    app = App()
    started = anyio.Event()
    release = anyio.Event()
    joined = anyio.Event()

    async def slow() -> None:
        started.set()
        await release.wait()

    def quick() -> None:
        pass

    @app.get("/")
    async def handler(tasks: BackgroundTasks) -> None:
        tasks.add_task(slow)
        tasks.add_task(quick)

    async def join() -> None:
        await app.tasks.join()
        joined.set()

    zero = dict.fromkeys(
        (
            "scheduled",
            "pending",
            "running",
            "succeeded",
            "failed",
            "cancelled",
            "discarded",
            "refused",
        ),
        0,
    )
    assert app.tasks.stats() == zero
    with anyio.fail_after(1):
        await app.tasks.join()  # nothing runs: returns at once

    client = AsyncTestClient(app)
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as group:
            group.start_soon(client.get, "/")
            await started.wait()
            assert app.tasks.stats() == {**zero, "scheduled": 2, "pending": 1, "running": 1}

            group.start_soon(join)
            await anyio.wait_all_tasks_blocked()
            assert not joined.is_set()

            release.set()
            await joined.wait()
            assert app.tasks.stats() == {**zero, "scheduled": 2, "succeeded": 2}


@pytest.mark.anyio
async def test_stats_count_consecutive_def_tasks_one_at_a_time(anyio_backend: str) -> None:
    app = App()
    started = threading.Event()
    release = threading.Event()
    waiter = anyio.CapacityLimiter(1)

    def blocking() -> None:
        started.set()
        release.wait(TIMEOUT)

    def quick() -> None:
        pass

    @app.get("/")
    async def handler(tasks: BackgroundTasks) -> None:
        tasks.add_task(quick)
        tasks.add_task(blocking)
        tasks.add_task(quick)

    client = AsyncTestClient(app)
    try:
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as group:
                group.start_soon(client.get, "/")
                assert await anyio.to_thread.run_sync(started.wait, TIMEOUT, limiter=waiter)
                stats = app.tasks.stats()
                assert (stats["succeeded"], stats["running"], stats["pending"]) == (1, 1, 1)
                release.set()
    finally:
        release.set()
    stats = app.tasks.stats()
    assert (stats["succeeded"], stats["running"], stats["pending"]) == (3, 0, 0)


def test_a_sync_error_hook_runs_in_a_worker_thread(anyio_backend: str) -> None:
    threads: list[int] = []

    def hook(task: BackgroundTask, exc: BaseException) -> None:
        threads.append(threading.get_ident())

    app = App(on_task_error=hook)

    def boom() -> None:
        raise RuntimeError("boom")

    @app.get("/")
    async def handler(tasks: BackgroundTasks) -> None:
        threads.append(threading.get_ident())  # the event loop's thread
        tasks.add_task(boom)

    TestClient(app, raise_server_exceptions=False, backend=anyio_backend).get("/")

    assert len(threads) == 2
    assert threads[1] != threads[0]


def test_tasks_appended_to_or_replacing_the_injected_list_run(anyio_backend: str) -> None:
    # Starlette's BackgroundTasks.tasks is a plain list; code written against it appends
    # to it or replaces it, bypassing add_task.
    log: Log = []
    app = App()

    @app.get("/appended")
    async def appended(tasks: BackgroundTasks) -> str:
        tasks.tasks.append(BackgroundTask(log.append, "appended"))
        return "ok"

    @app.get("/replaced")
    async def replaced(tasks: BackgroundTasks) -> str:
        tasks.add_task(log.append, "dropped by the replacement")
        tasks.tasks = [BackgroundTask(log.append, "replacement")]
        return "ok"

    with TestClient(app, backend=anyio_backend) as client:
        assert client.get("/appended").text == '"ok"'
        assert client.get("/replaced").text == '"ok"'
    assert log == ["appended", "replacement"]
