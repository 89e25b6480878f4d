"""The app the reliability tests load, in-process (`make_app()`) or by import path.

`reliability_apps:app` is what the subprocess tests serve (`python -m asgi_bg`, uvicorn):
it announces task progress on stderr (`MARK ...`) so a test can synchronise on it, and
prints `STATS {json}` with the task runner's counts when lifespan shutdown ends.

Every task records itself in a `Ledger` under `kind:ident`, so a test can check that
each queued task ran exactly once.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

from asgi_bg import App, BackgroundTasks, StreamingResponse

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """Resident memory of this process (Linux `/proc/self/statm`, second field)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_SIZE


class Ledger:
    """Counts how often each task ran; safe from worker threads."""

    def __init__(self, *, announce: bool = False) -> None:
        self.announce = announce
        self.runs: Counter[str] = Counter()
        self.started: Counter[str] = Counter()
        self._lock = threading.Lock()
        # Released by a test to end `block` tasks; never set in the subprocess app.
        self.release = threading.Event()

    def start(self, key: str) -> None:
        with self._lock:
            self.started[key] += 1
        self.say(f"MARK started {key}")

    def done(self, key: str, *, quiet: bool = False) -> None:
        with self._lock:
            self.runs[key] += 1
        if not quiet:
            self.say(f"MARK finished {key}")

    def say(self, text: str) -> None:
        if self.announce:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()

    def summary(self) -> dict[str, int]:
        """How many distinct tasks ran, how many ran more than once, and all runs."""
        with self._lock:
            runs = list(self.runs.values())
        return {"distinct": len(runs), "repeated": sum(n > 1 for n in runs), "total": sum(runs)}


# --- tasks (module level, so their logged names are short and stable) -----------------------


async def count_async(ledger: Ledger, ident: str) -> None:
    ledger.done(f"async:{ident}", quiet=True)


def count_sync(ledger: Ledger, ident: str) -> None:
    ledger.done(f"sync:{ident}", quiet=True)


async def slow_async(ledger: Ledger, ident: str, seconds: float) -> None:
    ledger.start(f"slow_async:{ident}")
    await anyio.sleep(seconds)
    ledger.done(f"slow_async:{ident}")


def slow_sync(ledger: Ledger, ident: str, seconds: float) -> None:
    ledger.start(f"slow_sync:{ident}")
    ledger.release.wait(seconds)  # blocks its thread; a test may end it early
    ledger.done(f"slow_sync:{ident}")


async def failing_task(ledger: Ledger, ident: str) -> None:
    raise RuntimeError(f"task failure {ident}")


# --- the app -------------------------------------------------------------------------------


def make_app(
    *,
    task_threads: int = 40,
    shutdown_timeout: float = 30.0,
    announce: bool = False,
    max_pending_tasks: int | None = None,
) -> App:
    """The reliability app. Unbounded backlog by default: these runs push every task
    through however far the backlog grows (the bound is measured on its own)."""
    ledger = Ledger(announce=announce)

    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        yield
        # Runs after the runner's own shutdown: the counts are final here.
        ledger.say("STATS " + json.dumps({"tasks": app.tasks.stats(), **ledger.summary()}))

    app = App(
        lifespan=lifespan,
        task_threads=task_threads,
        shutdown_timeout=shutdown_timeout,
        max_pending_tasks=max_pending_tasks,
    )
    app.state.ledger = ledger
    _task_routes(app, ledger)
    _plain_routes(app)
    return app


def _task_routes(app: App, ledger: Ledger) -> None:
    @app.post("/work/{ident}")
    async def work(ident: str, tasks: BackgroundTasks) -> dict[str, str]:
        tasks.add_task(count_async, ledger, ident)
        tasks.add_task(count_sync, ledger, ident)
        return {"queued": ident}

    @app.post("/slow/{ident}")
    async def slow(ident: str, tasks: BackgroundTasks, seconds: float = 0.3) -> dict[str, str]:
        tasks.add_task(slow_async, ledger, ident, seconds)
        tasks.add_task(slow_sync, ledger, ident, seconds)
        return {"queued": ident}

    @app.post("/slow-async/{ident}")
    async def slow_async_only(
        ident: str, tasks: BackgroundTasks, seconds: float = 0.3
    ) -> dict[str, str]:
        tasks.add_task(slow_async, ledger, ident, seconds)
        return {"queued": ident}

    @app.post("/block/{ident}")
    async def block(ident: str, tasks: BackgroundTasks, seconds: float = 30.0) -> None:
        tasks.add_task(slow_sync, ledger, ident, seconds)

    @app.post("/fail/{ident}")
    async def fail(ident: str, tasks: BackgroundTasks) -> None:
        tasks.add_task(failing_task, ledger, ident)
        tasks.add_task(count_async, ledger, ident)  # runs although the one before failed

    @app.get("/stats")
    async def stats() -> dict[str, Any]:
        return {
            "tasks": app.tasks.stats(),
            "threads": threading.active_count(),
            "rss": rss_bytes(),
            **ledger.summary(),
        }

    @app.post("/join")
    async def join() -> dict[str, int]:
        """Wait (bounded) until no task is pending or running, then answer the counts."""
        with anyio.move_on_after(10):
            await app.tasks.join()
        return app.tasks.stats()


def _plain_routes(app: App) -> None:
    @app.get("/async")
    async def async_endpoint() -> str:
        return "async"

    @app.get("/sync")
    def sync_endpoint() -> str:
        return "sync"

    @app.get("/stream")
    async def stream(chunks: int = 3, size: int = 10) -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            for _ in range(chunks):
                yield b"x" * size

        return StreamingResponse(body())


app = make_app(announce=True)
