"""The task runner's view of the task its batch runs in: cancel scopes opened only on need.

PERF: ``anyio.CancelScope()`` resolves the backend on every call, and entering and
leaving it on asyncio goes through a weak-key dictionary: about 30,000 of the 145,000
instructions of a request with one trivial async task (callgrind). On asyncio the runner
starts async tasks eagerly and opens a scope only when one really waits on the loop,
with the backend's own scope class. Cancel scopes nest strictly, so the scope may only be
opened while the task has no scope of its own open; while it has, shutdown cancels the
task the way asyncio does (``Task.cancel()``, taken back with ``uncancel()``), unless
one of those scopes is shielded. On trio a native scope is opened for every batch, as
before (trio's own ``sleep`` opens a scope, so the eager path would rarely apply).

This reads anyio's and trio's private state: ``tests/test_background.py`` pins each use
down on both backends.
"""

from __future__ import annotations

from asyncio import events, tasks
from typing import Any
from weakref import ref

from anyio._backends._asyncio import CancelScope as _AsyncioScope
from anyio._backends._asyncio import _task_states

# PERF: asyncio.current_task() and WeakKeyDictionary.get() are Python functions on 3.11;
# their C-level parts cost a third as much, on every request with tasks.
running_loop = events._get_running_loop
_current_tasks: dict[Any, Any] = tasks._current_tasks  # type: ignore[attr-defined]
_states: dict[Any, Any] = _task_states.data  # type: ignore[attr-defined]


class Host:
    """The task a batch of background tasks runs in."""

    __slots__ = ("outer", "task", "trio")

    def __init__(self) -> None:
        loop = running_loop()
        self.trio = loop is None  # no asyncio loop in this thread: trio
        # asyncio: the scope the batch's tasks start in; any scope inside it is a task's own.
        self.outer: object = None
        if loop is None:
            import trio.lowlevel  # noqa: PLC0415  (only ever reached on trio)

            self.task: Any = trio.lowlevel.current_task()
        else:
            self.task = _current_tasks[loop]
            self.outer = self.innermost()

    def innermost(self) -> object:
        """The task's innermost anyio cancel scope (asyncio only), or None."""
        state = _states.get(ref(self.task))
        return None if state is None else state.cancel_scope

    def open_scope(self) -> Any:
        """A new cancel scope of this backend, entered; leave it with ``__exit__``."""
        if self.trio:
            import trio  # noqa: PLC0415

            scope: Any = trio.CancelScope()
        else:
            scope = _AsyncioScope()
        scope.__enter__()
        return scope

    def shielded_inside(self, outer: object) -> bool:
        """Whether a scope the task opened inside ``outer`` (asyncio) shields it now."""
        scope: Any = self.innermost()
        while scope is not None and scope is not outer:
            if scope._shield:
                return True
            scope = scope._parent_scope
        return False
