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

import asyncio
from typing import Any

from anyio._backends._asyncio import CancelScope as _AsyncioScope
from anyio._backends._asyncio import _task_states


class Host:
    """The task a batch of background tasks runs in."""

    __slots__ = ("task", "trio")

    def __init__(self) -> None:
        try:
            task: Any = asyncio.current_task()
        except RuntimeError:  # no asyncio loop in this thread: trio
            task = None
        self.trio = task is None
        if task is None:
            import trio.lowlevel  # noqa: PLC0415  (only ever reached on trio)

            task = trio.lowlevel.current_task()
        self.task = task

    def innermost(self) -> object:
        """The task's innermost anyio cancel scope (asyncio only), or None."""
        state = _task_states.get(self.task)
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
