"""Per-request state shared by the route and the app's outermost layer.

The app creates one ``RequestContext`` per HTTP request and puts it in the scope, so the
route can hand over the request's tasks and generator-dependency teardowns, and the
outermost layer runs them once the response has gone to the server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec

from ._types import Message, Send
from .background import BackgroundTask, BackgroundTasks

P = ParamSpec("P")

CONTEXT_KEY = "asgi_bg.context"
# Set by the test client: handler and task errors are appended here to be re-raised.
ERRORS_KEY = "asgi_bg.errors"

Teardown = Callable[[BaseException | None], Awaitable[None]]


class RequestContext:
    """The request's task collection, teardowns and error record."""

    __slots__ = (
        "_send",
        "admit",
        "cache",
        "error",
        "registered",
        "response_background",
        "started",
        "tasks",
        "teardowns",
    )

    def __init__(self, admit: Callable[[BackgroundTask], None] | None = None) -> None:
        # Called for each task the handler queues (the app's backlog bound), or None.
        self.admit = admit
        self.registered = False  # an ``@app.task`` function was queued
        self.tasks: BackgroundTasks | None = None
        self.response_background: list[BackgroundTask] = []
        self.teardowns: list[Teardown] = []
        self.error: BaseException | None = None  # what the handler raised, for teardowns
        self.cache: dict[Any, Any] | None = None
        self.started = False

    def tracking(self, send: Send) -> Send:
        """Wrap ``send`` to note when the response starts.

        Only needed where code we do not control sends (user middleware, mounted apps);
        asgi_bg's own responses set ``started`` themselves.
        """
        self._send = send
        return self._tracked_send

    async def _tracked_send(self, message: Message) -> None:
        self.started = True
        await self._send(message)

    def background_tasks(self) -> BackgroundTasks:
        """The request's one ``BackgroundTasks`` object, created on first use."""
        tasks = self.tasks
        if tasks is None:
            tasks = self.tasks = _RequestTasks(self)
        return tasks

    def queued(self, task: BackgroundTask) -> None:
        """Note a task the handler queued; the backlog bound may refuse it."""
        if self.admit is not None:
            self.admit(task)
        if task.call is not None:
            self.registered = True

    def new_tasks(self, background: BackgroundTask | BackgroundTasks) -> list[BackgroundTask]:
        """The tasks a response's ``background=`` adds to those already queued."""
        if background is self.tasks:
            return []  # the handler passed the injected collection itself: run it once
        if isinstance(background, BackgroundTasks):
            return background.tasks
        return [background]

    def add_response_background(self, background: BackgroundTask | BackgroundTasks) -> None:
        """Queue a response's own ``background=`` after the injected tasks."""
        self.response_background.extend(self.new_tasks(background))

    def all_tasks(self) -> list[BackgroundTask]:
        """Injected tasks first, then the responses' own, in the order added.

        Calls handed to the app's task backend are left out: they run there.
        """
        injected = self.tasks.tasks if self.tasks is not None else []
        tasks = injected + self.response_background
        if self.registered:
            tasks = [task for task in tasks if not task.submitted]
        return tasks


class _RequestTasks(BackgroundTasks):
    """The injected collection: every ``add_task`` is seen by the request's context."""

    __slots__ = ("_context",)

    def __init__(self, context: RequestContext) -> None:
        super().__init__()
        self._context = context

    def add_task(self, func: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> None:
        """Queue ``func(*args, **kwargs)`` to run after the response."""
        task = BackgroundTask(func, *args, **kwargs)
        self._context.queued(task)
        self.tasks.append(task)
