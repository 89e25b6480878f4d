"""The durable backend: DBOS Transact on a SQLite file (no server) or on PostgreSQL.

``submit`` journals a request's registered calls as one DBOS workflow, enqueued on a
DBOS queue, before it returns; the workflow runs them in order, one DBOS step per call,
and each step hands its call back to the app's event loop (``run_registered``: ``async
def`` functions awaited, ``def`` functions in worker threads). A workflow that was
enqueued or running when the process died is run again by DBOS's recovery when the app
starts next (DBOS puts it back in the queue; with several processes on one journal
any live one may take it), from its first call that had not finished: delivery is
at-least-once.

DBOS is thread based (and keeps its own asyncio loop in a thread), so every DBOS call
runs in a worker thread: the app's loop may be asyncio or trio and is never blocked.
DBOS is a per-process singleton: one ``DurableBackend`` may be started at a time.

Install with ``pip install "asgi_bg[durable]"``.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
from dbos import DBOS, DBOSConfig

from .base import TaskCall, refuse_below_one, run_registered, submit_in_thread

__all__ = ["DurableBackend"]

logger = logging.getLogger("asgi_bg.backends.durable")

# Workflow and step names are stored in the journal: changing them strands the work of
# the previous release, so they are fixed strings, not derived from code locations.
WORKFLOW_NAME: Final = "asgi_bg.durable.calls"
STEP_NAME: Final = "asgi_bg.durable.call"
# DBOS recovers only the workflows of its own application version. By default it hashes
# the workflow source, so any asgi_bg upgrade would strand pending work: pin it instead.
APPLICATION_VERSION: Final = "asgi_bg-durable-1"

_OK: Final = "ok"
_FAILED: Final = "failed"


class _Deferred(BaseException):
    """Raised in a DBOS thread when the call cannot run now (the backend is stopping).

    A ``BaseException`` on purpose: DBOS records ``Exception`` outcomes, so this leaves
    the workflow ``PENDING`` and the call unrecorded; recovery runs it after a restart.
    """


# The started backend of this process (DBOS is a singleton, so there is at most one).
_active: DurableBackend | None = None
_active_lock = threading.Lock()


@DBOS.step(name=STEP_NAME)
def _run_call(call_json: str) -> str:
    backend = _active
    if backend is None:
        raise _Deferred
    return backend._dispatch(call_json)


@DBOS.workflow(name=WORKFLOW_NAME)
def _run_calls(calls: list[str]) -> None:
    # One step per call: after a crash the workflow resumes at the first unfinished call.
    for call_json in calls:
        _run_call(call_json)


def _database_url(path_or_url: str) -> str:
    if "://" in path_or_url:
        return path_or_url
    return "sqlite:///" + os.path.abspath(path_or_url)


def _dbos_config(
    app_name: str,
    url: str,
    executor_id: str | None,
    run_tasks: bool,
    extra: Mapping[str, Any] | None,
) -> dict[str, Any]:
    if executor_id is None:
        executor_id = "local" if run_tasks else "asgi_bg-journal"
    return {
        "name": app_name,
        "system_database_url": url,
        "application_version": APPLICATION_VERSION,
        "executor_id": executor_id,
        "log_level": "WARNING",
        # How often DBOS's listener thread polls SQLite; also how long its shutdown takes.
        "notification_listener_polling_interval_sec": 0.2,
        **(extra or {}),
    }


# What ``stats`` reports.
_COUNTS: Final = (
    "submitted",
    "submit_failed",
    "journaling",
    "running",
    "succeeded",
    "failed",
    "deferred",
)


class DurableBackend:
    """Journal registered calls with DBOS (SQLite or PostgreSQL); run them, even after a crash.

    Args:
        path_or_url: the SQLite file (created if missing), or a DBOS system database URL
            (``sqlite:///...``, ``postgresql://...``).
        concurrency: journaled requests whose calls run at once in this process (each
            holds one DBOS thread while its calls run on the app's loop).
        task_threads: worker threads for ``def`` tasks (their own limiter).
        poll_interval: seconds between two looks at the queue: the delay before a
            journaled call starts, at most.
        journal_threads: worker threads that write the journal (their own limiter, so
            a slow disk never takes the threads the app uses).
        shutdown_timeout: seconds ``stop`` waits for running calls before it cancels
            them; a cancelled call stays journaled and runs again after a restart.
        run_tasks: False makes this process journal only: the calls run in a process
            with ``run_tasks=True`` on the same database (web processes that only
            journal, one worker that runs).
        executor_id: this process's name in the journal. DBOS recovers the unfinished
            work of its own executor only: with several task-running processes on one
            database give each a distinct, stable id. Default: ``"local"``, or
            ``"asgi_bg-journal"`` with ``run_tasks=False``.
        app_name: the DBOS application name (the journal's namespace).
        queue: the DBOS queue the calls go through.
        dbos_config: extra ``DBOSConfig`` entries (log level, pool size, ...).
    """

    name = "durable"
    # Set by ``start``; ``stop`` clears the first three.
    _token: anyio.lowlevel.EventLoopToken | None = None
    _queue: Any = None
    _dbos: DBOS | None = None
    _journal_limiter: anyio.CapacityLimiter | None = None
    _task_limiter: anyio.CapacityLimiter | None = None

    def __init__(
        self,
        path_or_url: str = "tasks.sqlite",
        *,
        concurrency: int = 16,
        task_threads: int = 8,
        poll_interval: float = 0.1,
        journal_threads: int = 4,
        shutdown_timeout: float = 30.0,
        run_tasks: bool = True,
        executor_id: str | None = None,
        app_name: str = "asgi_bg",
        queue: str = "asgi_bg",
        dbos_config: Mapping[str, Any] | None = None,
    ) -> None:
        refuse_below_one(
            concurrency=concurrency, task_threads=task_threads, journal_threads=journal_threads
        )
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        self.url = _database_url(path_or_url)
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.shutdown_timeout = shutdown_timeout
        self.queue_name = queue
        self.run_tasks = run_tasks
        self._config = _dbos_config(app_name, self.url, executor_id, run_tasks, dbos_config)
        self._task_threads = task_threads
        self._journal_threads = journal_threads
        self._registry: Mapping[str, Callable[..., Any]] = {}
        # Loop side: whether calls may still start, and the scopes of the running ones.
        self._accepting = False
        self._scopes: set[anyio.CancelScope] = set()
        self._idle: anyio.Event | None = None
        # Thread side: DBOS threads inside ``_dispatch``.
        self._lock = threading.Lock()
        self._closing = False
        self._dispatching = 0
        self._counts = dict.fromkeys(_COUNTS, 0)

    # --- the app side -----------------------------------------------------------------------

    async def start(self, registry: Mapping[str, Callable[..., Any]]) -> None:
        """Open the journal, register the queue, recover unfinished work; then run it."""
        global _active  # noqa: PLW0603 - DBOS itself is a process-wide singleton
        with _active_lock:
            if _active is not None:
                raise RuntimeError("another DurableBackend is running in this process")
            _active = self
        self._registry = registry
        self._token = anyio.lowlevel.current_token()
        self._journal_limiter = anyio.CapacityLimiter(self._journal_threads)
        self._task_limiter = anyio.CapacityLimiter(self._task_threads)
        self._accepting = True
        with self._lock:
            self._closing = False
        try:
            await anyio.to_thread.run_sync(self._launch, limiter=self._journal_limiter)
        except BaseException:
            self._accepting = False
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(DBOS.destroy)
            with _active_lock:
                _active = None
            raise

    def _launch(self) -> None:
        config: DBOSConfig = self._config  # type: ignore[assignment]
        self._dbos = DBOS(config=config)
        if not self.run_tasks:
            DBOS.listen_queues([])  # DBOS's own internal queue is still served
        DBOS.launch()  # recovery of this executor's unfinished workflows starts here
        self._queue = DBOS.register_queue(
            self.queue_name,
            worker_concurrency=self.concurrency,
            polling_interval_sec=self.poll_interval,
            on_conflict="always_update",
        )

    async def submit(self, calls: Sequence[TaskCall]) -> None:
        """Journal ``calls`` as one workflow; returns once the journal write committed."""
        if not calls:
            return
        if self._queue is None or self._journal_limiter is None:
            raise RuntimeError("the durable backend is not started (lifespan startup)")
        self._counts["journaling"] += 1
        try:
            enqueue = functools.partial(self._queue.enqueue, _run_calls)
            await submit_in_thread(self._counts, calls, enqueue, self._journal_limiter)
        finally:
            self._counts["journaling"] -= 1

    async def stop(self) -> None:
        """Let running calls finish (``shutdown_timeout``), cancel the rest, close DBOS.

        Calls cancelled or not started yet stay in the journal and run after a restart.
        """
        global _active  # noqa: PLW0603
        if self._token is None:
            return
        self._accepting = False
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(self.shutdown_timeout):
                await self._wait_idle()
            for scope in list(self._scopes):
                scope.cancel()
            await self._wait_idle()
            with self._lock:
                self._closing = True
            await anyio.to_thread.run_sync(self._quiesce)
            await anyio.to_thread.run_sync(DBOS.destroy)
            # A DBOS thread that had just passed the closing check answers on our loop.
            with anyio.move_on_after(5.0):
                while True:
                    with self._lock:
                        if not self._dispatching:
                            break
                    await anyio.sleep(0.01)
        self._queue = None
        self._dbos = None
        self._token = None
        with _active_lock:
            if _active is self:
                _active = None

    def stats(self) -> dict[str, int]:
        """``submitted`` and ``submit_failed`` calls, ``journaling``: submits waiting for
        their journal write; ``running``, ``succeeded``, ``failed`` calls in this process;
        ``deferred``: left in the journal by a shutdown."""
        return dict(self._counts)

    def _quiesce(self, limit: float = 5.0) -> None:
        """Stop dequeuing, then let in-flight workflows unwind before DBOS closes its
        database (they find the backend closing and leave their calls journaled)."""
        dbos = self._dbos
        if dbos is None:
            return
        for event in dbos.background_thread_stop_events:
            event.set()
        active = getattr(dbos, "_active_workflows_set", None)  # not public: best effort
        deadline = time.monotonic() + limit
        while active is not None and active.activeList() and time.monotonic() < deadline:
            time.sleep(0.005)

    async def _wait_idle(self) -> None:
        while self._scopes:
            self._idle = anyio.Event()
            await self._idle.wait()

    # --- the worker side -------------------------------------------------------------------

    def _dispatch(self, call_json: str) -> str:
        """In a DBOS thread: run one call on the app's loop and wait for it."""
        with self._lock:
            if self._closing:
                raise _Deferred
            self._dispatching += 1
        try:
            outcome = anyio.from_thread.run(self._run, call_json, token=self._token)
        except Exception as exc:  # the loop is gone: leave the call to the recovery
            raise _Deferred from exc
        finally:
            with self._lock:
                self._dispatching -= 1
        if outcome is None:
            raise _Deferred
        return outcome

    async def _run(self, call_json: str) -> str | None:
        """On the app's loop: the call's outcome, or None when it must run again later."""
        if not self._accepting:
            self._counts["deferred"] += 1
            return None
        call = TaskCall.from_json(call_json)
        if call.name not in self._registry:
            self._counts["failed"] += 1
            logger.error("Refused %s: not a registered task of this app", call.name)
            return _FAILED
        scope = anyio.CancelScope()
        self._scopes.add(scope)
        self._counts["running"] += 1
        try:
            with scope:
                await run_registered(self._registry, call, limiter=self._task_limiter)
        except Exception as exc:
            self._counts["failed"] += 1
            logger.error("Durable task %s failed", call.name, exc_info=exc)
            return _FAILED
        finally:
            self._counts["running"] -= 1
            self._scopes.discard(scope)
            if not self._scopes and self._idle is not None:
                self._idle.set()
        if scope.cancelled_caught:
            self._counts["deferred"] += 1
            logger.warning("Durable task %s cancelled by shutdown; it runs again", call.name)
            return None
        self._counts["succeeded"] += 1
        return _OK
