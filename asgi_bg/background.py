"""Background tasks: what handlers queue, and the runner that runs them after the response.

The runner (``app.tasks``) is the one place tasks are executed. It keeps the counts
users read with ``stats()``, isolates each task's failure, runs ``def`` tasks in worker
threads under its own limiter, and on shutdown cancels what is left and names it.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Generator, Iterator, Sequence
from types import CoroutineType
from typing import Any, ParamSpec

import anyio
import anyio.lowlevel
import anyio.to_thread

from ._cancel import Host
from ._concurrency import callable_name, is_async_callable
from ._workers import WorkerPool
from .backends.base import TASK_NAME_ATTR, check_call

P = ParamSpec("P")

logger = logging.getLogger("asgi_bg.background")

TaskErrorHook = Callable[["BackgroundTask", BaseException], Any]


class BackgroundTask:
    """One call to make after the response: ``func(*args, **kwargs)``.

    ``async def`` functions are awaited on the event loop; plain functions run in a
    worker thread. Pass it to any response as ``background=``.
    """

    __slots__ = ("args", "call", "func", "is_async", "kwargs", "submitted")

    def __init__(self, func: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> None:
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.is_async = is_async_callable(func)
        # A function registered with ``@app.task`` is checked now, where the mistake is
        # made, not later in a worker: importable by name, JSON-safe arguments.
        self.call = check_call(func, args, kwargs) if hasattr(func, TASK_NAME_ATTR) else None
        self.submitted = False  # handed to the app's task backend instead of run here

    @property
    def name(self) -> str:
        """``module.qualname`` of the function, used in logs."""
        return callable_name(self.func)

    async def __call__(self) -> None:
        """Run the task now (outside any app: no isolation, no counting)."""
        if self.is_async:
            await self.func(*self.args, **self.kwargs)
        else:
            await anyio.to_thread.run_sync(self._call_sync)

    def _call_sync(self) -> None:
        self.func(*self.args, **self.kwargs)

    def __repr__(self) -> str:
        return f"<BackgroundTask {self.name}>"


class BackgroundTasks:
    """The request's ordered task collection; every parameter annotated with it gets this object.

    ``add_task(func, *args, **kwargs)`` queues a call; tasks run in the order added, after
    the client has the whole response.
    """

    __slots__ = ("tasks",)

    def __init__(self, tasks: Sequence[BackgroundTask] | None = None) -> None:
        self.tasks: list[BackgroundTask] = list(tasks) if tasks else []

    def add_task(self, func: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> None:
        """Queue ``func(*args, **kwargs)`` to run after the response."""
        self.tasks.append(BackgroundTask(func, *args, **kwargs))

    async def __call__(self) -> None:
        """Run every task now, in order (outside any app: no isolation, no counting)."""
        for task in self.tasks:
            await task()

    def __len__(self) -> int:
        return len(self.tasks)

    def __iter__(self) -> Iterator[BackgroundTask]:
        return iter(self.tasks)

    def __repr__(self) -> str:
        return f"<BackgroundTasks {[t.name for t in self.tasks]}>"


class _Batch:
    """One request's tasks while they run: their own progress, errors and cancellation.

    Progress is kept where it happens: ``done`` tasks finished as seen from the loop,
    ``handed`` tasks given out and not folded back yet (one async task, or a run of
    ``def`` tasks in one thread trip), ``progress[0]`` of those finished so far (written
    by the worker thread). Pending and running are derived from these, never stored.

    The cancel scope is opened only once something waits on the loop (see ``_cancel``):
    a batch whose tasks never suspend opens none.
    """

    __slots__ = (
        "cancelled",
        "done",
        "errors",
        "failed",
        "handed",
        "host",
        "label",
        "native",
        "outer",
        "progress",
        "scope",
        "stopped",
        "succeeded",
        "tasks",
    )

    def __init__(
        self, tasks: list[BackgroundTask], label: object, errors: list[BaseException] | None
    ) -> None:
        self.tasks = tasks
        self.label = label
        self.errors = errors  # failures are appended here too (the test client re-raises)
        self.done = 0
        self.handed = 0
        self.progress = [0]
        self.succeeded = 0
        self.failed = 0
        self.host = host = Host()
        self.scope: Any = host.open_scope() if host.trio else None
        self.outer = host.outer  # the scope tasks start in
        self.cancelled = False  # by shutdown
        self.native = False  # cancelled with Task.cancel(): to be taken back with uncancel()
        # Read by the worker thread between tasks: once True it starts no further task.
        # PERF: a plain attribute, not a threading.Event (2.1 µs to create, per request).
        self.stopped = False

    def ensure_scope(self) -> None:
        """Open the scope before the runner itself waits (no task's scope is open then)."""
        if self.scope is None:
            self._open_scope()

    def settle_scope(self) -> None:
        """At a suspended task's every wait until the scope is open: open it if the task
        has no scope of its own open; else deliver a pending shutdown natively."""
        if self.host.innermost() is self.outer:
            self._open_scope()
        elif self.cancelled and not self.native:
            self._cancel_natively()

    def _open_scope(self) -> None:
        scope = self.host.open_scope()
        if self.cancelled:
            scope.cancel()
        self.scope = scope

    def cancel(self) -> None:
        """Shutdown: stop this batch's tasks (from another task)."""
        self.cancelled = self.stopped = True
        if self.scope is not None:
            self.scope.cancel()
        elif not self.native:
            self._cancel_natively()

    def _cancel_natively(self) -> None:
        # A shielded scope of the task's own holds the cancellation off, as anyio would;
        # settle_scope retries at each of its waits.
        if not self.host.shielded_inside(self.outer):
            self.native = True
            self.host.task.cancel()

    def close(self, exc: BaseException | None) -> bool:
        """Leave the scope; True when ``exc`` is this batch's own cancellation (swallow it)."""
        swallowed = False
        scope, self.scope = self.scope, None
        if scope is not None:
            swallowed = bool(
                scope.__exit__(None, None, None)
                if exc is None
                else scope.__exit__(type(exc), exc, exc.__traceback__)
            )
        if self.native:
            self.native = False
            # Another cancellation of the same task (its server's) must still go through.
            if self.host.task.uncancel() == 0 and isinstance(exc, asyncio.CancelledError):
                swallowed = True
        return swallowed

    def hand_out(self, count: int) -> list[int]:
        """Start ``count`` tasks at ``done``; returns the counter their runner advances."""
        self.handed = count
        self.progress = [0]
        return self.progress

    def fold(self, failure: bool) -> None:
        """The handed-out tasks are back: the finished ones, plus one that failed."""
        finished = self.progress[0]
        self.succeeded += finished
        self.done += finished
        if failure:
            self.failed += 1
            self.done += 1
        self.handed = 0
        self.progress = [0]

    def counts(self) -> tuple[int, int, int]:
        """``(succeeded, running, pending)`` right now."""
        inside = self.progress[0]
        running = 1 if inside < self.handed else 0
        return self.succeeded + inside, running, len(self.tasks) - self.done - inside - running


_TERMINAL = ("scheduled", "succeeded", "failed", "cancelled", "discarded", "refused")


class TaskRunner:
    """Runs background tasks and reports on them; available as ``app.tasks``.

    Args:
        threads: worker threads for ``def`` tasks (a limiter of their own, so blocking
            tasks never take the threads that ``def`` handlers need).
        on_task_error: called as ``hook(task, exc)`` after a task raised; may be async.
    """

    def __init__(self, threads: int = 40, on_task_error: TaskErrorHook | None = None) -> None:
        if threads < 1:
            raise ValueError("task_threads must be at least 1")
        self.threads = threads
        self.on_task_error = on_task_error
        # Only counts that never go down are stored; the live ones come from the batches.
        self._totals = dict.fromkeys(_TERMINAL, 0)
        self.backend_stats: Callable[[], dict[str, int]] | None = None
        self._batches: set[_Batch] = set()
        # In-process tasks of requests whose tasks have not all finished yet, read by the
        # backlog bound on every add_task (PERF: an attribute, not a sum over the live
        # batches nor a method). Tasks count until their request's batch ends.
        self.backlog = 0
        # ``max_pending_tasks``, set by the app: below it, adding a task asks no question.
        self.limit: float = math.inf
        self._idle: anyio.Event | None = None
        self._limiter: tuple[object, anyio.CapacityLimiter, anyio.CapacityLimiter] | None = None
        # Entered by the app's lifespan; without it, one to_thread trip per run of def tasks.
        self.workers = WorkerPool(threads)

    def refused(self) -> None:
        """Count a task refused by ``max_pending_tasks``."""
        self._totals["refused"] += 1

    def stats(self) -> dict[str, int]:
        """Counts: ``scheduled, pending, running, succeeded, failed, cancelled, discarded``,
        ``refused`` (by ``max_pending_tasks``), and the task backend's own counts
        prefixed with ``backend_``.
        """
        counts = dict(self._totals)
        counts["pending"] = counts["running"] = 0
        for batch in self._batches:
            succeeded, running, pending = batch.counts()
            counts["succeeded"] += succeeded
            counts["failed"] += batch.failed
            counts["running"] += running
            counts["pending"] += pending
        if self.backend_stats is not None:
            counts.update({f"backend_{k}": v for k, v in self.backend_stats().items()})
        return counts

    async def join(self) -> None:
        """Wait until no task is pending or running."""
        while self._batches:
            if self._idle is None:
                self._idle = anyio.Event()
            await self._idle.wait()

    def discard(self, tasks: Sequence[BackgroundTask], label: object, exc: BaseException) -> None:
        """Drop the tasks of a request whose handler raised; counted and logged."""
        if not tasks:
            return
        self._totals["discarded"] += len(tasks)
        logger.warning(
            "Discarded %d background task(s) of %s because the handler raised %s: %s",
            len(tasks),
            label,
            type(exc).__name__,
            ", ".join(t.name for t in tasks),
        )

    async def run(
        self,
        tasks: Sequence[BackgroundTask],
        label: object,
        errors: list[BaseException] | None = None,
    ) -> None:
        """Run one request's tasks in order, isolating each failure.

        ``label`` names the request in logs ("POST /path"); failures are appended to
        ``errors`` when given (the test client re-raises them).
        """
        batch = _Batch(list(tasks), label, errors)
        self._totals["scheduled"] += len(batch.tasks)
        self.backlog += len(batch.tasks)
        self._batches.add(batch)
        # PERF: the loop is here, not in a coroutine of its own (one a request).
        try:
            # A task may swallow a shutdown's cancellation: no further task starts then.
            while batch.done < len(batch.tasks) and not batch.cancelled:
                if batch.tasks[batch.done].is_async:
                    rest = self._start_async(batch)
                    if rest is not None:
                        await rest
                else:
                    await self._run_sync_run(batch)
            if batch.cancelled:
                self._cancel_rest(batch)
        except BaseException as exc:
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                self._cancel_rest(batch)
            if not batch.close(exc):
                raise
        else:
            if batch.scope is not None or batch.native:
                batch.close(None)
        finally:
            self._end(batch)

    def _end(self, batch: _Batch) -> None:
        totals = self._totals
        totals["succeeded"] += batch.succeeded
        totals["failed"] += batch.failed
        self.backlog -= len(batch.tasks)
        self._batches.discard(batch)
        if not self._batches and self._idle is not None:
            self._idle.set()
            self._idle = None

    def _cancel_rest(self, batch: _Batch) -> None:
        batch.stopped = True
        left = batch.tasks[batch.done :]
        self._totals["cancelled"] += len(left)
        batch.done = len(batch.tasks)
        for task in left:
            logger.warning("Cancelled background task %s of %s", task.name, batch.label)

    def _start_async(self, batch: _Batch) -> Awaitable[None] | None:
        """Start the async task at ``batch.done``; what finishes it, or None if it is done.

        PERF: the first step runs here, in a plain function, outside any scope of the
        runner's: a task that never waits costs no coroutine of the runner's nor a
        cancel scope (see _cancel).
        """
        task = batch.tasks[batch.done]
        batch.handed = 1  # running; progress[0] stays 0 until it returns
        try:
            coro = task.func(*task.args, **task.kwargs)
            if batch.scope is None and type(coro) is CoroutineType:
                try:
                    first = coro.send(None)
                except StopIteration:
                    batch.handed = 0
                    batch.succeeded += 1
                    batch.done += 1
                    return None
                return self._finish_async(batch, task, _Rest(batch, coro, first))
        except Exception as exc:
            batch.fold(failure=True)
            return self._failed(task, exc, batch)
        except BaseException:
            batch.handed = 0  # cancelled: not finished, counted as cancelled by the caller
            raise
        batch.ensure_scope()
        return self._finish_async(batch, task, coro)

    async def _finish_async(
        self, batch: _Batch, task: BackgroundTask, rest: Awaitable[object]
    ) -> None:
        try:
            await rest
        except Exception as exc:
            batch.fold(failure=True)
            await self._failed(task, exc, batch)
            return
        except BaseException:
            batch.handed = 0  # cancelled: not finished, counted as cancelled by the caller
            raise
        batch.handed = 0
        batch.succeeded += 1
        batch.done += 1

    async def _run_sync_run(self, batch: _Batch) -> None:
        """Run the consecutive ``def`` tasks at ``batch.done`` in one worker-thread trip.

        PERF: a thread trip costs ~80 µs on the 2-core benchmark machine, more than the
        rest of a request; one trip for a run of sync tasks keeps that cost per request,
        not per task. The thread stops at the first failure so that failure is logged and
        reported before the next task starts, exactly as if each had its own trip.
        """
        tasks = batch.tasks
        end = batch.done
        while end < len(tasks) and not tasks[end].is_async:
            end += 1
        run = tasks[batch.done : end]
        batch.ensure_scope()
        limiter, unbounded = self._thread_limiters()
        # Take the app's thread token here, not in ``run_sync``: tasks waiting for a thread
        # are pending, not running. PERF: ``acquire_nowait`` first, since ``acquire``
        # always yields to the loop once, even when a token is free: 7 µs of a 157 µs
        # request with one sync task (python -m benchmarks, in-process notify, 1.38x ->
        # 1.34x raw).
        try:
            limiter.acquire_nowait()
        except anyio.WouldBlock:
            await limiter.acquire()
        failure: Exception | None = None
        try:
            progress = batch.hand_out(len(run))
            if self.workers.ready():
                failure = await self.workers.run(_call_in_thread, run, batch, progress)
            else:
                failure = await anyio.to_thread.run_sync(
                    _call_in_thread, run, batch, progress, limiter=unbounded, abandon_on_cancel=True
                )
        finally:
            limiter.release()
            batch.fold(failure is not None)
        if failure is not None:
            await self._failed(batch.tasks[batch.done - 1], failure, batch)

    async def _failed(self, task: BackgroundTask, exc: Exception, batch: _Batch) -> None:
        logger.error("Background task %s of %s failed", task.name, batch.label, exc_info=exc)
        if batch.errors is not None:
            batch.errors.append(exc)
        if self.on_task_error is not None:
            batch.ensure_scope()
            await self._call_hook(task, exc, batch)

    async def _call_hook(self, task: BackgroundTask, exc: Exception, batch: _Batch) -> None:
        hook = self.on_task_error
        assert hook is not None
        try:
            if is_async_callable(hook):
                await hook(task, exc)
            else:
                # Like every other sync callable: a blocking hook (an error-reporting
                # HTTP call) must not stall the loop.
                await anyio.to_thread.run_sync(hook, task, exc, limiter=self._thread_limiters()[0])
        except Exception:
            # The hook is user code too: its failure must not stop the remaining tasks.
            logger.exception("on_task_error hook failed for %s of %s", task.name, batch.label)

    def cancel_unstarted(self, tasks: Sequence[BackgroundTask], label: object) -> None:
        """Count and name tasks that will not run because their request was cancelled."""
        self._totals["cancelled"] += len(tasks)
        for task in tasks:
            logger.warning("Cancelled background task %s of %s", task.name, label)

    async def shutdown(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for running tasks, then cancel and name the rest."""
        with anyio.move_on_after(grace):
            await self.join()
        if not self._batches:
            return
        logger.warning(
            "Shutdown timeout (%.1fs) reached with %d request(s) still running background tasks",
            grace,
            len(self._batches),
        )
        for batch in list(self._batches):
            batch.cancel()
        await self.join()

    def _thread_limiters(self) -> tuple[anyio.CapacityLimiter, anyio.CapacityLimiter]:
        """The app's ``task_threads`` limiter, and an unbounded one for ``run_sync`` itself."""
        # A limiter belongs to one event loop; the same app may be driven by several
        # loops in turn (test clients, benchmarks), so keep them per loop.
        token = anyio.lowlevel.current_token().native_token
        cached = self._limiter
        if cached is None or cached[0] is not token:
            limiters = (anyio.CapacityLimiter(self.threads), anyio.CapacityLimiter(math.inf))
            cached = (token, *limiters)
            self._limiter = cached
        return cached[1], cached[2]


class _Rest:
    """The rest of an async task whose first step waited: forwarded to the event loop,
    as ``await`` would, while the batch opens its scope as soon as it safely can."""

    __slots__ = ("batch", "coro", "first")

    def __init__(self, batch: _Batch, coro: CoroutineType[Any, Any, Any], first: Any) -> None:
        self.batch = batch
        self.coro = coro
        self.first = first

    def __await__(self) -> Generator[Any, Any, None]:
        batch, coro, value = self.batch, self.coro, self.first
        while True:
            if batch.scope is None:
                batch.settle_scope()
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # thrown in by the loop: cancellation
                try:
                    value = coro.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    value = coro.send(sent)
                except StopIteration:
                    return


def _call_in_thread(
    tasks: list[BackgroundTask], batch: _Batch, progress: list[int]
) -> Exception | None:
    """Run sync tasks in order until one raises, counting successes in ``progress[0]``."""
    for task in tasks:
        if batch.stopped:
            return None
        try:
            task.func(*task.args, **task.kwargs)
        except Exception as exc:
            return exc
        progress[0] += 1
    return None
