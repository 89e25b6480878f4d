"""Long-lived worker threads for ``def`` background tasks, fed through one queue.

PERF: a trip through ``anyio.to_thread.run_sync`` costs ~270,000 instructions (callgrind,
asyncio) against ~61,000 for handing a job to a waiting thread through a
``queue.SimpleQueue`` and waking the loop with one ``call_soon_threadsafe``: anyio's
per-call limiter, cancel scope and worker bookkeeping, and a ``queue.Queue`` built from
Python locks. So while the app's lifespan runs, each worker is one long
``anyio.to_thread.run_sync`` call (hence ``anyio.from_thread`` works in tasks, as before)
that takes runs of tasks off a queue; the workers report finished runs back to the loop
in batches: one wake-up for every run finished since the loop last looked.

Without a lifespan (or on another event loop than the lifespan's) the runner keeps making
one ``to_thread`` trip per run instead.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from queue import Empty, SimpleQueue
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread

from ._cancel import running_loop

# An idle worker ends after this long, as anyio's own idle threads do.
IDLE_SECONDS = 10.0

Job = tuple[contextvars.Context, Callable[..., Any], tuple[Any, ...], Any]


class _Waiter:
    """What a run's caller awaits on trio (an asyncio ``Future`` does the same there)."""

    __slots__ = ("event", "result")

    def __init__(self) -> None:
        import trio  # noqa: PLC0415  (only ever reached on trio)

        self.event = trio.Event()
        self.result: Any = None

    def done(self) -> bool:
        return self.event.is_set()

    def set_result(self, result: Any) -> None:
        self.result = result
        self.event.set()

    async def wait(self) -> Any:
        await self.event.wait()
        return self.result


class _Outbox:
    """Finished runs, handed to the loop in batches: one wake-up per batch."""

    def __init__(self, wake: Callable[[Callable[[], None]], Any]) -> None:
        self._wake = wake
        self._lock = threading.Lock()
        self._items: list[tuple[Any, Any]] = []
        self._scheduled = False

    def post(self, waiter: Any, result: Any) -> None:
        """From a worker: ``waiter`` gets ``result`` on the loop, soon."""
        with self._lock:
            self._items.append((waiter, result))
            if self._scheduled:
                return
            self._scheduled = True
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            self._wake(self._deliver)

    def _deliver(self) -> None:
        with self._lock:
            items, self._items = self._items, []
            self._scheduled = False
        for waiter, result in items:
            if not waiter.done():  # a cancelled wait left its waiter behind
                waiter.set_result(result)


class _Crew:
    """One lifespan's worker threads and their queue; a later lifespan gets a new crew,
    so a thread still stuck in an abandoned task never counts in the next one."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.jobs: SimpleQueue[Job | None] = SimpleQueue()
        self.lock = threading.Lock()
        self.idle = 0  # waiting workers no job was promised to yet
        self.threads = 0

    def submit(self, job: Job) -> bool:
        """Queue ``job``; True when a new worker must be started for it."""
        with self.lock:
            start = self.idle == 0 and self.threads < self.size
            if start:
                self.threads += 1
            elif self.idle:
                self.idle -= 1
        self.jobs.put(job)
        return start

    def stop(self) -> None:
        for _ in range(self.threads):
            self.jobs.put(None)  # idle workers end; a stuck one ends when it is done

    def work(self) -> None:
        """A worker thread: jobs until told to stop or idle for too long."""
        job = self._next()  # the job this worker was started for
        while job is not None:
            context, func, args, (outbox, waiter) = job
            result = context.run(func, *args)
            with self.lock:
                # Idle before the caller hears back, so the caller's next run finds it.
                self.idle += 1
            outbox.post(waiter, result)
            job = self._next()

    def _next(self) -> Job | None:
        while True:
            try:
                return self.jobs.get(timeout=IDLE_SECONDS)
            except Empty:
                with self.lock:
                    if self.idle:  # no job is on its way to this worker: end it
                        self.idle -= 1
                        self.threads -= 1
                        return None


class WorkerPool:
    """Up to ``size`` threads, started on demand while ``serving()`` is entered."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._crew = _Crew(size)
        self._group: anyio.abc.TaskGroup | None = None
        self._loop: object = None
        self._outbox: _Outbox | None = None
        self._trio = False

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[None]:
        """Host the workers in this task (the lifespan's) until the block ends."""
        loop = running_loop()
        self._trio = loop is None
        if loop is None:
            import trio.lowlevel  # noqa: PLC0415

            token = trio.lowlevel.current_trio_token()
            self._loop, self._outbox = token, _Outbox(token.run_sync_soon)
        else:
            self._loop, self._outbox = loop, _Outbox(loop.call_soon_threadsafe)
        crew = self._crew = _Crew(self.size)
        error: Exception | None = None
        async with anyio.create_task_group() as group:
            self._group = group
            try:
                yield
            except Exception as exc:
                error = exc  # raised below as it is, not inside the group's ExceptionGroup
            finally:
                self._group = None
                crew.stop()
                group.cancel_scope.cancel()  # abandons the stuck ones
        if error is not None:
            raise error

    def ready(self) -> bool:
        """Whether runs can go to the workers from the running event loop."""
        if self._group is None:
            return False
        if self._trio:
            import trio.lowlevel  # noqa: PLC0415

            return trio.lowlevel.current_trio_token() is self._loop
        return running_loop() is self._loop

    async def run(self, func: Callable[..., Any], *args: Any) -> Any:
        """``func(*args)`` on a worker, in this context; what it returns."""
        outbox = self._outbox
        assert outbox is not None and self._group is not None
        if self._trio:
            waiter: Any = _Waiter()
        else:
            waiter = self._loop.create_future()  # type: ignore[attr-defined]
        crew = self._crew
        if crew.submit((contextvars.copy_context(), func, args, (outbox, waiter))):
            self._group.start_soon(_host, crew)
        if self._trio:
            return await waiter.wait()
        return await waiter


async def _host(crew: _Crew) -> None:
    await anyio.to_thread.run_sync(
        crew.work, abandon_on_cancel=True, limiter=anyio.CapacityLimiter(math.inf)
    )
