"""DurableBackend (DBOS on SQLite): journaled calls run on the app's loop, on asyncio and
trio; failures are logged by function name; unregistered names never run; a shutdown
leaves unfinished calls in the journal and the next start runs them; a locked journal
answers 503 within the deadline while the loop serves other requests."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from asgi_bg import App, BackgroundTasks
from asgi_bg.backends import TaskCall
from asgi_bg.backends.durable import DurableBackend
from asgi_bg.testing import AsyncTestClient

pytestmark = pytest.mark.anyio

DONE: list[str] = []
RELEASE = threading.Event()


def record(message: str) -> None:
    DONE.append(f"def {message}")


async def record_async(message: str, *, times: int = 1) -> None:
    await anyio.lowlevel.checkpoint()
    DONE.append(f"async {message * times}")


def explode(message: str) -> None:
    raise ValueError(f"boom {message}")


async def block(message: str) -> None:
    DONE.append(f"started {message}")
    await anyio.sleep_forever()


def not_registered(message: str) -> None:  # pragma: no cover - must never run
    DONE.append(f"unregistered {message}")


REGISTRY: dict[str, Callable[..., Any]] = {
    "record": record,
    "record_async": record_async,
    "explode": explode,
    "block": block,
}


@pytest.fixture(autouse=True)
def _clean() -> None:
    DONE.clear()


@pytest.fixture(scope="session")
def template_journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A journal with its schema and queue: DBOS finds a new queue only after a second."""
    path = tmp_path_factory.mktemp("journal") / "tasks.sqlite"

    async def create() -> None:
        backend = backend_for(path)
        await backend.start(REGISTRY)
        await backend.stop()

    anyio.run(create)
    return path


@pytest.fixture
def journal(template_journal: Path, tmp_path: Path) -> Path:
    """A fresh copy of the template journal."""
    path = tmp_path / "tasks.sqlite"
    for suffix in ("", "-wal", "-shm"):
        source = template_journal.with_name(template_journal.name + suffix)
        if source.exists():
            shutil.copyfile(source, path.with_name(path.name + suffix))
    return path


async def wait_for(predicate: Callable[[], bool], limit: float = 10.0) -> None:
    with anyio.fail_after(limit):
        while True:
            if predicate():
                return
            await anyio.sleep(0.01)


def backend_for(path: Path, **options: Any) -> DurableBackend:
    return DurableBackend(str(path), poll_interval=0.02, **options)


async def test_calls_run_in_order_on_the_loop(anyio_backend: str, journal: Path) -> None:
    backend = backend_for(journal)
    await backend.start(REGISTRY)
    try:
        await backend.submit(
            [TaskCall("record", ["a"]), TaskCall("record_async", ["b"], {"times": 2})]
        )
        await wait_for(lambda: len(DONE) == 2)
        assert DONE == ["def a", "async bb"]
        assert backend.stats() == {
            "submitted": 2,
            "submit_failed": 0,
            "journaling": 0,
            "running": 0,
            "succeeded": 2,
            "failed": 0,
            "deferred": 0,
        }
    finally:
        await backend.stop()


async def test_failures_are_logged_by_name_and_the_next_call_runs(
    anyio_backend: str, journal: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend = backend_for(journal)
    await backend.start(REGISTRY)
    try:
        with caplog.at_level(logging.ERROR, "asgi_bg.backends.durable"):
            await backend.submit(
                [
                    TaskCall("explode", ["x"]),
                    TaskCall("tests:not_registered", ["y"]),
                    TaskCall("record", ["after"]),
                ]
            )
            await wait_for(lambda: DONE == ["def after"])
        assert backend.stats()["failed"] == 2
        messages = [r.getMessage() for r in caplog.records]
        assert "Durable task explode failed" in messages
        assert "Refused tests:not_registered: not a registered task of this app" in messages
        failure = next(r for r in caplog.records if r.getMessage().startswith("Durable task"))
        assert failure.exc_info is not None and "boom x" in str(failure.exc_info[1])
    finally:
        await backend.stop()


async def test_shutdown_leaves_unfinished_calls_for_the_next_start(
    anyio_backend: str, journal: Path
) -> None:
    path = journal
    backend = backend_for(path, shutdown_timeout=0.2)
    await backend.start(REGISTRY)
    await backend.submit([TaskCall("record", ["first"]), TaskCall("block", ["b"])])
    await wait_for(lambda: DONE == ["def first", "started b"])
    with anyio.fail_after(10):
        await backend.stop()  # cancels `block`: not finished, so it stays journaled
    assert backend.stats()["deferred"] == 1

    # The next start resumes the workflow at its first unfinished call.
    again = {**REGISTRY, "block": record}
    backend = backend_for(path)
    await backend.start(again)
    try:
        await wait_for(lambda: DONE[-1:] == ["def b"])
        assert DONE == ["def first", "started b", "def b"]
    finally:
        await backend.stop()


async def test_the_seed_route_through_the_app(anyio_backend: str, journal: Path) -> None:
    app = App(task_backend=backend_for(journal))
    app.task(record)
    app.task(record_async)

    @app.post("/notify/{email}")
    async def notify(email: str, tasks: BackgroundTasks) -> dict[str, str]:
        tasks.add_task(record, f"to {email}")
        tasks.add_task(record_async, email, times=1)
        return {"message": "sent"}

    async with AsyncTestClient(app) as client:
        response = await client.post("/notify/me@example.com")
        assert response.status_code == 200
        await wait_for(lambda: len(DONE) == 2)
        assert DONE == ["def to me@example.com", "async me@example.com"]
        stats = app.tasks.stats()
        assert stats["backend_submitted"] == 2
        assert stats["backend_succeeded"] == 2


async def test_locked_journal_answers_503_and_the_loop_keeps_serving(
    anyio_backend: str, journal: Path
) -> None:
    path = journal
    backend = backend_for(path)
    app = App(task_backend=backend, task_submit_timeout=0.5)
    app.task(record)

    @app.post("/work")
    async def work(tasks: BackgroundTasks) -> dict[str, bool]:
        tasks.add_task(record, "locked out")
        return {"ok": True}

    @app.get("/plain")
    async def plain() -> dict[str, bool]:
        return {"ok": True}

    async with AsyncTestClient(app) as client:
        lock = sqlite3.connect(path, timeout=0.1, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        try:
            timings: dict[str, float] = {}
            answered: list[str] = []

            async def timed(name: str, call: Any) -> None:
                started = time.monotonic()
                response = await call
                timings[name] = time.monotonic() - started
                timings[f"{name} status"] = response.status_code
                answered.append(name)

            async with anyio.create_task_group() as group:
                group.start_soon(timed, "work", client.post("/work"))
                await wait_for(lambda: backend.stats()["journaling"] == 1)
                group.start_soon(timed, "plain", client.get("/plain"))
            assert timings["work status"] == 503
            # The deadline answered it (0.5 s); the bound is generous for a loaded machine.
            assert 0.5 <= timings["work"] < 5.0
            # The plain request, sent while the journal write waited, was answered first.
            assert timings["plain status"] == 200
            assert answered == ["plain", "work"]
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        assert app.tasks.stats()["backend_submit_failed"] == 1


async def test_submit_before_start_raises(anyio_backend: str, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="not started"):
        await backend_for(tmp_path / "t.sqlite").submit([TaskCall("record", ["x"])])


async def test_counts_below_one_are_refused_when_built(anyio_backend: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^task_threads, journal_threads must be >= 1$"):
        DurableBackend(str(tmp_path / "t.sqlite"), task_threads=0, journal_threads=-1)
    with pytest.raises(ValueError, match="poll_interval must be positive"):
        DurableBackend(str(tmp_path / "t.sqlite"), poll_interval=0)


async def test_one_backend_per_process(anyio_backend: str, journal: Path, tmp_path: Path) -> None:
    first = backend_for(journal)
    await first.start(REGISTRY)
    try:
        with pytest.raises(RuntimeError, match="another DurableBackend"):
            await backend_for(tmp_path / "b.sqlite").start(REGISTRY)
    finally:
        await first.stop()
