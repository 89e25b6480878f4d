"""Faults, one at a time, on the embedded server over loopback, with healthy traffic
alongside: the documented outcome holds, the error is logged once with the task's name
and the request's method and path, the healthy requests and their tasks are untouched,
and nothing hangs (every block is bounded by `embedded`'s limit)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from reliability_apps import count_async, make_app
from reliability_support import (
    ClientError,
    KeepAliveClient,
    embedded,
    run_load,
)

from asgi_bg import App, BackgroundTasks, StreamingResponse
from asgi_bg.server import LifespanFailure, serve

pytestmark = pytest.mark.anyio

HEALTHY = 100
LIMIT = 10.0


def fault_app(**options: Any) -> App:
    app = make_app(**options)
    ledger = app.state.ledger
    app.state.chunks = 0

    @app.get("/boom")
    async def boom(tasks: BackgroundTasks) -> None:
        tasks.add_task(count_async, ledger, "boom")
        raise RuntimeError("handler failure")

    @app.get("/midstream")
    async def midstream(tasks: BackgroundTasks) -> StreamingResponse:
        tasks.add_task(count_async, ledger, "midstream")

        async def body() -> AsyncIterator[bytes]:
            yield b"first"
            raise RuntimeError("stream broke")

        return StreamingResponse(body())

    @app.post("/upload")
    async def upload(data: dict[str, Any], tasks: BackgroundTasks) -> dict[str, Any]:
        tasks.add_task(count_async, ledger, "upload")
        return data

    @app.get("/big-stream")
    async def big_stream(tasks: BackgroundTasks) -> StreamingResponse:
        tasks.add_task(count_async, ledger, "big-stream")

        async def body() -> AsyncIterator[bytes]:
            for _ in range(100_000):  # 1.6 GB if nobody stopped it
                app.state.chunks += 1
                yield b"x" * 16384

        return StreamingResponse(body())

    return app


async def healthy(port: int, app: App) -> None:
    """Healthy requests with tasks: all answered 200, and each of their tasks ran once."""
    report = await run_load(port, HEALTHY, 4, prefix="ok")
    assert report.errors == []
    assert report.statuses == {200: HEALTHY}
    runs = app.state.ledger.runs

    def mine() -> list[int]:
        return [n for key, n in list(runs.items()) if key.split(":", 1)[1].startswith("ok-")]

    # Not `join()`: some faults leave tasks running on purpose.
    with anyio.fail_after(LIMIT):
        while len(mine()) < 2 * HEALTHY:  # noqa: ASYNC110 - counted from threads too
            await anyio.sleep(0.01)
    assert mine() == [1] * (2 * HEALTHY)


@asynccontextmanager
async def alongside_healthy_traffic(
    app: App, **options: Any
) -> AsyncIterator[Callable[[], Awaitable[int]]]:
    """Serve `app`; the block gets the port, and healthy traffic runs during it."""
    async with embedded(app, **options) as server, anyio.create_task_group() as group:
        group.start_soon(healthy, server.port, app)

        async def port() -> int:
            return server.port

        yield port


def records(caplog: pytest.LogCaptureFixture, *fragments: str) -> list[logging.LogRecord]:
    """Records at WARNING or above whose message holds every fragment."""
    return [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and all(f in r.getMessage() for f in fragments)
    ]


def problems(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in records(caplog)]


def traceback_of(record: logging.LogRecord) -> str:
    assert record.exc_info is not None and record.exc_info[1] is not None
    return f"{type(record.exc_info[1]).__name__}: {record.exc_info[1]}"


# --- tasks ------------------------------------------------------------------------------------


async def test_a_failing_task_is_logged_once_and_the_next_task_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = fault_app()
    async with alongside_healthy_traffic(app) as port:
        client = await KeepAliveClient.connect(await port())
        assert (await client.request("POST", "/fail/f1")).status == 200
        assert (await client.request("GET", "/async")).status == 200  # connection kept
        await client.aclose()
        with anyio.fail_after(LIMIT):
            await app.tasks.join()

    (record,) = records(caplog, "reliability_apps.failing_task", "POST /fail/f1")
    assert (record.name, record.levelname) == ("asgi_bg.background", "ERROR")
    assert traceback_of(record) == "RuntimeError: task failure f1"
    assert problems(caplog) == [f"{record.name}: {record.getMessage()}"]
    assert app.state.ledger.runs["async:f1"] == 1  # the task after the failing one
    assert app.tasks.stats()["failed"] == 1


async def test_tasks_that_hang_or_block_a_thread_are_cancelled_and_named_at_shutdown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = fault_app()
    ledger = app.state.ledger
    try:
        async with alongside_healthy_traffic(app, shutdown_timeout=0.3) as port:
            client = await KeepAliveClient.connect(await port())
            assert (await client.request("POST", "/slow-async/h1?seconds=600")).status == 200
            assert (await client.request("POST", "/block/b1?seconds=600")).status == 200
            await client.aclose()
            with anyio.fail_after(LIMIT):
                while ledger.started.total() < 2:  # noqa: ASYNC110 - set from a thread
                    await anyio.sleep(0.01)
            stopping = time.perf_counter()
        stopped = time.perf_counter() - stopping
    finally:
        ledger.release.set()

    # The tasks would hold shutdown for 600 s: the shutdown timeout (0.3 s), then
    # cancellation. The upper bound is generous because the machine may be loaded.
    assert 0.3 <= stopped < 0.3 + 10.0
    for name, path in [("slow_async", "/slow-async/h1"), ("slow_sync", "/block/b1")]:
        (record,) = records(caplog, "Cancelled background task", name, f"POST {path}")
        assert record.name == "asgi_bg.background"
    stats = app.tasks.stats()
    assert (stats["cancelled"], stats["running"], stats["pending"]) == (2, 0, 0)
    assert stats["succeeded"] == 2 * HEALTHY


# --- handlers ---------------------------------------------------------------------------------


async def test_a_handler_raising_before_its_response_answers_500_and_discards_its_tasks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = fault_app()
    async with alongside_healthy_traffic(app) as port:
        client = await KeepAliveClient.connect(await port())
        assert (await client.request("GET", "/boom")).status == 500
        assert (await client.request("GET", "/async")).status == 200  # connection kept
        await client.aclose()

    (error,) = records(caplog, "GET /boom", "Exception")
    assert (error.name, traceback_of(error)) == ("asgi_bg.error", "RuntimeError: handler failure")
    (discard,) = records(caplog, "Discarded 1 background task", "reliability_apps.count_async")
    assert "GET /boom" in discard.getMessage()
    assert len(problems(caplog)) == 2
    assert "async:boom" not in app.state.ledger.runs
    assert app.tasks.stats()["discarded"] == 1


async def test_a_response_breaking_off_midway_closes_the_connection_and_discards_its_tasks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = fault_app()
    async with alongside_healthy_traffic(app) as port:
        client = await KeepAliveClient.connect(await port())
        with pytest.raises(ClientError):  # the chunked body is never terminated
            await client.request("GET", "/midstream")
        await client.aclose()

    # Once with its traceback; the server adds one line saying what it did about it.
    (error,) = [r for r in records(caplog, "GET /midstream") if r.exc_info]
    assert (error.name, traceback_of(error)) == ("asgi_bg.error", "RuntimeError: stream broke")
    (server,) = records(caplog, "returned without completing its response to GET /midstream")
    assert server.name == "asgi_bg.server"
    assert len(records(caplog, "Discarded 1 background task", "GET /midstream")) == 1
    assert len(problems(caplog)) == 3
    assert "async:midstream" not in app.state.ledger.runs
    assert app.tasks.stats()["discarded"] == 1


# --- lifespan ---------------------------------------------------------------------------------


def lifespan_failing(at: str) -> Callable[[App], Any]:
    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        if at == "startup":
            raise RuntimeError("no database")
        yield
        raise RuntimeError("cannot flush")

    return lifespan


async def test_a_failing_startup_stops_the_server_before_it_serves(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App(lifespan=lifespan_failing("startup"))
    with anyio.fail_after(LIMIT), pytest.raises(LifespanFailure, match="no database"):
        await serve(app, port=0)

    # The traceback once (the app); the server's one line says it did not start.
    (error,) = [r for r in records(caplog, "startup failed") if r.exc_info]
    assert traceback_of(error) == "RuntimeError: no database"
    assert len(records(caplog, "Application startup failed: RuntimeError: no database")) == 1
    assert len(problems(caplog)) == 2


async def test_a_failing_shutdown_is_logged_once_after_every_task_ran(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = fault_app()
    app.lifespan_context = lifespan_failing("shutdown")
    async with alongside_healthy_traffic(app):
        pass  # the healthy traffic runs; its tasks all ran (checked) before shutdown

    (error,) = [r for r in records(caplog, "shutdown failed") if r.exc_info]
    assert traceback_of(error) == "RuntimeError: cannot flush"
    assert len(records(caplog, "Application shutdown failed: RuntimeError: cannot flush")) == 1
    assert len(problems(caplog)) == 2
    assert app.tasks.stats()["succeeded"] == 2 * HEALTHY


# --- clients that go away ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "sent", [b"", b"GE", b"POST /work/x HTTP/1.1\r\nHost: t\r\nContent-Le"], ids=repr
)
async def test_a_client_gone_before_its_headers_never_reaches_the_app(
    sent: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    app = fault_app()
    async with alongside_healthy_traffic(app) as port:
        stream = await anyio.connect_tcp("127.0.0.1", await port())
        if sent:
            await stream.send(sent)
        await stream.aclose()

    assert problems(caplog) == []
    assert app.tasks.stats()["scheduled"] == 2 * HEALTHY  # the healthy ones only


async def test_a_client_gone_mid_upload_is_logged_once_and_queues_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = fault_app()
    async with alongside_healthy_traffic(app) as port:
        stream = await anyio.connect_tcp("127.0.0.1", await port())
        head = b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n"
        await stream.send(head + b'{"a": "' + b"x" * 100)
        await stream.aclose()
        with anyio.fail_after(LIMIT):
            while not records(caplog, "POST /upload"):  # noqa: ASYNC110 - a log to wait on
                await anyio.sleep(0.01)

    (error,) = records(caplog, "POST /upload")
    assert error.name == "asgi_bg.error"
    assert error.getMessage() == "Client went away while sending the body of POST /upload"
    assert error.exc_info is None  # not an app error: no traceback
    assert len(problems(caplog)) == 1
    assert "async:upload" not in app.state.ledger.runs


async def test_a_client_gone_mid_stream_stops_the_stream_and_its_tasks_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = fault_app()
    async with alongside_healthy_traffic(app) as port:
        stream = await anyio.connect_tcp("127.0.0.1", await port())
        await stream.send(b"GET /big-stream HTTP/1.1\r\nHost: t\r\n\r\n")
        received = 0
        with anyio.fail_after(LIMIT):
            while received < 256 * 1024:
                received += len(await stream.receive())
        await stream.aclose()
        with anyio.fail_after(LIMIT):
            while app.state.ledger.runs["async:big-stream"] == 0:  # noqa: ASYNC110
                await anyio.sleep(0.01)

    assert problems(caplog) == []  # a client going away is not the app's error
    assert app.state.chunks < 1000  # stopped, not streamed into the void
    assert app.state.ledger.runs["async:big-stream"] == 1
