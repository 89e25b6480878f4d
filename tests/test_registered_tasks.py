"""``@app.task``: registered calls checked at ``add_task``, handed to the app's task backend
before the response starts, 503 when the backend cannot take them; the backlog bound."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import anyio
import pytest

from asgi_bg import App, BackgroundTask, BackgroundTasks, JSONResponse
from asgi_bg._types import Message, Scope
from asgi_bg.backends import TaskCall
from asgi_bg.testing import AsyncTestClient, TestClient

LOG: list[str] = []
app = App()


@app.task
def write_log(message: str) -> None:
    LOG.append(message)


@app.task
async def write_log_async(message: str, *, times: int = 1) -> None:
    LOG.append(message * times)


def plain(message: str) -> None:
    LOG.append(f"plain {message}")


class MemoryBackend:
    """A backend that journals calls in memory, recording when it was asked."""

    name = "memory"

    def __init__(self, events: list[str], *, fail: bool = False, hang: bool = False) -> None:
        self.events = events
        self.fail = fail
        self.hang = hang
        self.calls: list[TaskCall] = []
        self.registry: Mapping[str, Callable[..., Any]] = {}

    async def start(self, registry: Mapping[str, Callable[..., Any]]) -> None:
        self.registry = registry
        self.events.append("backend start")

    async def submit(self, calls: Sequence[TaskCall]) -> None:
        self.events.append("submit " + ",".join(c.name.rpartition(":")[2] for c in calls))
        if self.hang:
            await anyio.sleep_forever()
        if self.fail:
            raise ConnectionError("broker down")
        self.calls.extend(calls)

    async def stop(self) -> None:
        self.events.append("backend stop")

    def stats(self) -> dict[str, int]:
        return {"submitted": len(self.calls)}


def app_with(backend: MemoryBackend | None, **options: Any) -> App:
    """A second app sharing the module-level registered functions."""
    new = App(task_backend=backend, **options)
    new.task(write_log)
    new.task(write_log_async)

    @new.post("/mixed")
    async def mixed(tasks: BackgroundTasks) -> JSONResponse:
        tasks.add_task(write_log, "registered")
        tasks.add_task(plain, "in-process")
        return JSONResponse({"ok": True}, background=BackgroundTask(write_log_async, "own"))

    @new.get("/plain")
    async def plain_endpoint() -> str:
        return "answered"

    return new


@pytest.fixture(autouse=True)
def clean_log() -> None:
    LOG.clear()


def test_registered_tasks_run_in_process_without_a_backend(anyio_backend: str) -> None:
    client = TestClient(app_with(None), backend=anyio_backend)

    response = client.post("/mixed")

    assert response.json() == {"ok": True}
    assert LOG == ["registered", "plain in-process", "own"]


@pytest.mark.anyio
async def test_a_backend_gets_the_registered_calls_before_the_response_starts() -> None:
    events: list[str] = []
    backend = MemoryBackend(events)
    target = app_with(backend)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        events.append(message["type"])

    scope: Scope = {"type": "http", "method": "POST", "path": "/mixed", "headers": []}
    async with AsyncTestClient(target):
        await target(scope, receive, send)

    assert events == [
        "backend start",
        "submit write_log,write_log_async",
        "http.response.start",
        "http.response.body",
        "backend stop",
    ]
    assert [(c.name, c.args, c.kwargs) for c in backend.calls] == [
        (f"{__name__}:write_log", ["registered"], {}),
        (f"{__name__}:write_log_async", ["own"], {}),
    ]
    assert LOG == ["plain in-process"]  # only the unregistered one ran here
    stats = target.tasks.stats()
    assert (stats["scheduled"], stats["succeeded"], stats["backend_submitted"]) == (1, 1, 2)


def test_a_backend_that_fails_answers_503_and_drops_the_requests_tasks(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    target = app_with(MemoryBackend([], fail=True))
    client = TestClient(target, raise_server_exceptions=False, backend=anyio_backend)

    with caplog.at_level(logging.ERROR, logger="asgi_bg.background"):
        response = client.post("/mixed")

    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert "memory" in response.json()["detail"]
    assert LOG == []  # not a 2xx, so nothing of the request ran
    assert target.tasks.stats()["discarded"] == 2
    assert "write_log" in caplog.text
    assert client.get("/plain").text == '"answered"'


@pytest.mark.anyio
async def test_a_hung_backend_answers_503_within_the_deadline_and_the_loop_keeps_serving() -> None:
    target = app_with(MemoryBackend([], hang=True), task_submit_timeout=0.5)
    client = AsyncTestClient(target, raise_server_exceptions=False)
    answers: list[str] = []

    async def plain_requests() -> None:
        for _ in range(3):
            answers.append((await client.get("/plain")).text)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(plain_requests)
            response = await client.post("/mixed")

    assert response.status_code == 503
    assert answers == ['"answered"'] * 3


class NotJSON:
    pass


@pytest.mark.parametrize(
    ("args", "kwargs", "named"),
    [
        ((NotJSON(),), {}, "argument 0 (NotJSON)"),
        (("ok",), {"times": (1, 2)}, "argument 'times' (tuple)"),
        (({1: "int keys"},), {}, "argument 0 (dict)"),
        ((float("nan"),), {}, "argument 0 (float)"),
    ],
)
def test_arguments_that_do_not_survive_json_are_refused_at_add_task(
    args: tuple[Any, ...], kwargs: dict[str, Any], named: str, anyio_backend: str
) -> None:
    target = App()
    target.task(write_log_async)

    @target.post("/")
    async def endpoint(tasks: BackgroundTasks) -> None:
        tasks.add_task(write_log_async, *args, **kwargs)

    with pytest.raises(TypeError, match="write_log_async") as caught:
        TestClient(target, backend=anyio_backend).post("/")

    assert named in str(caught.value)
    assert LOG == []


def test_a_registered_function_that_does_not_import_back_is_refused(anyio_backend: str) -> None:
    target = App()

    @target.task
    def local_task() -> None:  # <locals> in its name: a worker could never import it
        LOG.append("ran")

    @target.post("/")
    async def endpoint(tasks: BackgroundTasks) -> None:
        tasks.add_task(local_task)

    with pytest.raises(TypeError, match="cannot be imported back"):
        TestClient(target, backend=anyio_backend).post("/")


@pytest.mark.anyio
async def test_the_backlog_bound_answers_503_with_retry_after() -> None:
    target = App(max_pending_tasks=1)
    release = anyio.Event()
    started = anyio.Event()

    async def slow() -> None:
        started.set()
        await release.wait()

    @target.post("/queue")
    async def queue(tasks: BackgroundTasks) -> str:
        tasks.add_task(slow)
        return "queued"

    @target.get("/free")
    async def free() -> str:
        return "no task"

    client = AsyncTestClient(target, raise_server_exceptions=False)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(client.post, "/queue")
            await started.wait()
            refused = await client.post("/queue")
            free_answer = await client.get("/free")
            release.set()
        accepted_again = await client.post("/queue")

    assert (refused.status_code, refused.headers["retry-after"]) == (503, "1")
    assert free_answer.status_code == 200
    assert accepted_again.status_code == 200
    stats = target.tasks.stats()
    assert (stats["refused"], stats["succeeded"], stats["discarded"]) == (1, 2, 0)


@pytest.mark.anyio
async def test_the_backlog_bound_also_sees_a_responses_own_background() -> None:
    target = App(max_pending_tasks=1)
    release = anyio.Event()
    started = anyio.Event()

    async def slow() -> None:
        started.set()
        await release.wait()

    @target.post("/queue")
    async def queue() -> JSONResponse:
        return JSONResponse({"queued": True}, background=BackgroundTask(slow))

    client = AsyncTestClient(target, raise_server_exceptions=False)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(client.post, "/queue")
            await started.wait()
            refused = await client.post("/queue")
            release.set()

    assert (refused.status_code, refused.headers["retry-after"]) == (503, "1")
    assert target.tasks.stats()["refused"] == 1
