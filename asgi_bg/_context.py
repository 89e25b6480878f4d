"""One owner for a request's life: its phase, its tasks, its teardowns, its failure.

The app creates one ``RequestContext`` per HTTP request and puts it in the scope. Every
other part reports to it through a verb: the route when its handler returned
(``handled``), responses and the send wrapper when the response starts and ends
(``response_started``, ``body_sent``), the exception layers when something raised
(``failed``), the app when the call is over (``tasks_to_run``, ``teardown``). Nothing
else writes its state, and which tasks run or are discarded is decided here only.

The phases, in order: received → handled → started → sent → tasks → teardown → done.
A failure before the response started moves to ``FAILED`` (an error answer may still
start); after it started, to ``BROKEN`` (the response can never complete).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ParamSpec

import anyio

from ._types import Message, Send
from .background import BackgroundTask, BackgroundTasks

if TYPE_CHECKING:
    from .background import TaskRunner

P = ParamSpec("P")

CONTEXT_KEY = "asgi_bg.context"
# Set by the test client: handler and task errors are appended here to be re-raised.
ERRORS_KEY = "asgi_bg.errors"

Teardown = Callable[[BaseException | None], Awaitable[None]]
Admit = Callable[[BackgroundTask], None]

logger = logging.getLogger("asgi_bg.error")

# Generator-dependency teardowns still run when the request is cancelled, but bounded.
_TEARDOWN_GRACE = 5.0


class Phase(enum.IntEnum):
    """Where a request is in its life.

    PERF: an ``IntEnum`` hashes in C; a plain ``Enum`` member's ``__hash__`` is Python
    code, and the transition table looks a phase up several times per request
    (callgrind: ~1,500 instructions per look-up of a 32,000-instruction /hello).
    """

    RECEIVED = 1  # the app has the request; the handler runs
    HANDLED = 2  # the handler returned; its response is next
    STARTED = 3  # http.response.start went to the server
    SENT = 4  # the final body went to the server: the client can have it all
    FAILED = 5  # raised before the response started: an error answer may follow
    BROKEN = 6  # raised after the response started: it can never complete
    TASKS = 7  # the call's response part is over; the background tasks run
    TEARDOWN = 8  # generator dependencies are being closed
    DONE = 9


_ANSWERING = (Phase.RECEIVED, Phase.HANDLED, Phase.FAILED)
_ALL = tuple(Phase)

# The transition table, h11's way: verb -> {phase it may come from: phase it moves to}.
# Reporting the same event twice (a response and the send wrapper both see the start)
# is allowed and changes nothing.
_MOVES: dict[str, dict[Phase, Phase]] = {
    "handled": {Phase.RECEIVED: Phase.HANDLED},
    "response_started": {
        **dict.fromkeys(_ANSWERING, Phase.STARTED),
        Phase.STARTED: Phase.STARTED,
        Phase.SENT: Phase.SENT,  # a send wrapper seeing a whole response already reported
    },
    "body_sent": {Phase.STARTED: Phase.SENT, Phase.SENT: Phase.SENT},
    # One start and one final body, reported at once (the body is known in full).
    # From SENT too: a response piped through ``@app.middleware("http")`` reported first.
    "whole_response": dict.fromkeys((*_ANSWERING, Phase.SENT), Phase.SENT),
    "failed": {
        **dict.fromkeys(_ANSWERING, Phase.FAILED),
        **dict.fromkeys((Phase.STARTED, Phase.SENT, Phase.BROKEN), Phase.BROKEN),
    },
    "tasks_to_run": dict.fromkeys(_ALL[:6], Phase.TASKS),
    # From TEARDOWN too: a cancelled teardown is finished by a shielded second pass.
    "teardown": dict.fromkeys(_ALL[:8], Phase.TEARDOWN),
    "done": dict.fromkeys(_ALL, Phase.DONE),
}


_HANDLED = _MOVES["handled"]
_RESPONSE_STARTED = _MOVES["response_started"]
_BODY_SENT = _MOVES["body_sent"]
_WHOLE_RESPONSE = _MOVES["whole_response"]
_TASKS_TO_RUN = _MOVES["tasks_to_run"]


class IllegalTransition(RuntimeError):
    """A part of asgi_bg reported an event its request's phase does not allow."""


class RequestContext:
    """The life of one request: phase, tasks, teardowns and what went wrong."""

    __slots__ = (
        "_runner",
        "admit",
        "cache",
        "closers",
        "error",
        "phase",
        "registered",
        "response_background",
        "tasks",
        "teardowns",
    )

    def __init__(self, runner: TaskRunner, admit: Admit | None = None) -> None:
        self.phase = Phase.RECEIVED
        self._runner = runner
        # Called for each task the request queues (the app's backlog bound), or None.
        self.admit = admit
        self.registered = False  # an ``@app.task`` function was queued
        # The injected collection's tasks. Only the list: the collection refers to this
        # context, and a reference back would make a cycle per request, left for the
        # garbage collector (~1.6 µs of a 33 µs request with one task, in its pauses).
        self.tasks: list[BackgroundTask] | None = None
        # PERF: shared empty tuples until first used; two lists per request cost more
        # than the rest of this constructor.
        self.response_background: list[BackgroundTask] | tuple[()] = ()
        self.teardowns: list[Teardown] | tuple[()] = ()
        # Run after every teardown, even when the request failed (uploads' files).
        self.closers: list[Teardown] | tuple[()] = ()
        self.error: BaseException | None = None  # the first failure, for teardowns
        self.cache: dict[Any, Any] | None = None

    def _illegal(self, verb: str) -> IllegalTransition:
        phase = self.phase.name.lower()
        return IllegalTransition(f"{verb} while the request is {phase}")

    def _move(self, verb: str) -> None:
        try:
            self.phase = _MOVES[verb][self.phase]
        except KeyError:
            raise self._illegal(verb) from None

    @property
    def started(self) -> bool:
        """True once a response has started: no other answer can be sent."""
        return self.phase in (Phase.STARTED, Phase.SENT, Phase.BROKEN)

    # --- what the handler queues ----------------------------------------------------

    def background_tasks(self) -> BackgroundTasks:
        """A ``BackgroundTasks`` for the request's injected collection: each one made
        here adds to the same tasks (the injector makes one per request)."""
        if self.tasks is None:
            self.tasks = []
        return _RequestTasks(self)

    def queued(self, task: BackgroundTask) -> None:
        """Note a task the request queued; the backlog bound may refuse it (503)."""
        if self._runner.backlog >= self._runner.limit and self.admit is not None:
            self.admit(task)
        if task.call is not None:
            self.registered = True

    def new_tasks(self, background: BackgroundTask | BackgroundTasks) -> list[BackgroundTask]:
        """The tasks a response's ``background=`` adds to those already queued."""
        if isinstance(background, BackgroundTasks):
            if background.tasks is self.tasks:
                return []  # the handler passed the injected collection itself: run it once
            return background.tasks
        return [background]

    def add_teardown(self, teardown: Teardown, *, last: bool = False) -> None:
        """Run ``teardown(error)`` after the tasks, or at once if the request fails.

        ``last=True``: after every other teardown, and only at the very end of the call,
        failed or not, since tasks (an error response's own ones too) and teardowns may
        still use what it releases (an upload's file).
        """
        if last:
            if not self.closers:
                self.closers = []
            self.closers.append(teardown)
        else:
            if not self.teardowns:
                self.teardowns = []
            self.teardowns.append(teardown)

    # --- what the response reports ----------------------------------------------------

    # PERF: the three verbs of every response look their move up themselves instead of
    # through ``_move``: one Python call less each (~1,000 instructions of a /hello).

    def handled(self) -> None:
        """The handler returned; its response is about to be committed and sent."""
        try:
            self.phase = _HANDLED[self.phase]
        except KeyError:
            raise self._illegal("handled") from None

    def response_started(
        self, background: BackgroundTask | BackgroundTasks | None = None, *, whole: bool = False
    ) -> None:
        """``http.response.start`` went out; ``background`` runs after the injected tasks.

        ``whole=True``: the whole body goes out in the first body message, so the final
        body is reported in the same move (one call less per request). If the client is
        gone before it went out, the tasks still run, as for any response the handler
        completed.
        """
        try:
            self.phase = (_WHOLE_RESPONSE if whole else _RESPONSE_STARTED)[self.phase]
        except KeyError:
            raise self._illegal("whole_response" if whole else "response_started") from None
        if background is not None:
            self._add_background(background)

    def _add_background(self, background: BackgroundTask | BackgroundTasks) -> None:
        self.response_background = [*self.response_background, *self.new_tasks(background)]

    def body_sent(self) -> None:
        """The final body went out."""
        try:
            self.phase = _BODY_SENT[self.phase]
        except KeyError:
            raise self._illegal("body_sent") from None

    def tracking(self, send: Send) -> Send:
        """``send`` wrapped to report the response's start and end here.

        Needed only where code asgi_bg does not control sends (user middleware, mounted
        apps). Wrapping a send this request already wraps returns it unchanged.
        """
        if isinstance(send, _TrackedSend) and send.context is self:
            return send
        return _TrackedSend(self, send)

    # --- when something raised ----------------------------------------------------------

    async def failed(self, exc: Exception, label: object) -> Exception:
        """Record a failure: discard the tasks queued so far, and close the generator
        dependencies now, with ``exc`` thrown into them.

        Returns the exception to answer: a dependency's exit code may replace ``exc``
        (``except OwnerError: raise HTTPException(400)``).
        """
        self._move("failed")
        if self.error is None:
            self.error = exc
        self._runner.discard(self._take_tasks(), label, exc)
        replaced = await self._close_dependencies(exc, label)
        return replaced or exc

    def _take_tasks(self) -> list[BackgroundTask]:
        tasks = self._unsubmitted()
        if self.tasks is not None:
            self.tasks.clear()
        self.response_background = ()
        return tasks

    def _unsubmitted(self) -> list[BackgroundTask]:
        tasks = [*(self.tasks or ()), *self.response_background]
        if self.registered:
            tasks = [task for task in tasks if not task.submitted]
        return tasks

    async def _close_dependencies(self, exc: Exception, label: object) -> Exception | None:
        replaced: Exception | None = None
        while self.teardowns:
            teardown = self.teardowns.pop()
            try:
                await teardown(replaced or exc)
            except Exception as raised:
                if raised is not (replaced or exc):
                    replaced = raised
        if replaced is not None:
            logger.debug("A dependency answered %r for %s", replaced, label)
        return replaced

    # --- after the response -------------------------------------------------------------

    def tasks_to_run(self) -> list[BackgroundTask]:
        """The one decision of what runs after the response.

        Tasks of a failed handler were discarded when it failed; what is left is the
        injected collection and the responses' own ``background``, less the calls handed
        to the task backend (they run there).
        """
        try:
            self.phase = _TASKS_TO_RUN[self.phase]
        except KeyError:
            raise self._illegal("tasks_to_run") from None
        if self.registered or self.response_background or self.tasks is None:
            return self._unsubmitted()
        return self.tasks  # PERF: the common case, without a copy (the runner copies)

    def done(self) -> None:
        """The call is over, with nothing to tear down (PERF: no coroutine for it)."""
        self.phase = Phase.DONE  # from any phase (see ``_MOVES``)

    async def teardown(self, errors: list[BaseException] | None, label: object) -> None:
        """Close the generator dependencies, last opened first; failures are logged."""
        self._move("teardown")
        for pending in (self.teardowns, self.closers):
            # Each teardown is taken off its list before it runs, so none runs twice when
            # a cancellation interrupts this loop and the shielded retry finishes it.
            while pending:
                teardown = pending.pop()
                try:
                    await teardown(self.error)
                except Exception as exc:
                    logger.error("Dependency teardown failed for %s", label, exc_info=exc)
                    if errors is not None:
                        errors.append(exc)
        self._move("done")

    async def abandon(self, errors: list[BaseException] | None, label: object) -> None:
        """The call was cancelled: name the tasks that will not run, then tear down within
        a grace period, shielded from the cancellation."""
        if self.phase not in (Phase.TASKS, Phase.TEARDOWN, Phase.DONE):
            # Before the tasks started; once they run, the runner names its own.
            self._runner.cancel_unstarted(self._take_tasks(), label)
        if self.teardowns or self.closers:
            with anyio.CancelScope(shield=True), anyio.move_on_after(_TEARDOWN_GRACE):
                await self.teardown(errors, label)
        self._move("done")


class _TrackedSend:
    """A ``send`` that reports the response's start and end to the request's context."""

    __slots__ = ("context", "send")

    def __init__(self, context: RequestContext, send: Send) -> None:
        self.context = context
        self.send = send

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.context.response_started()
        elif kind == "http.response.body" and not message.get("more_body", False):
            self.context.body_sent()
        await self.send(message)


class _RequestTasks(BackgroundTasks):
    """The injected collection: every ``add_task`` is seen by the request's context.

    Its ``tasks`` is the context's list, also when read, appended to or replaced
    directly, as Starlette's ``BackgroundTasks.tasks`` may be.
    """

    __slots__ = ("_context",)

    def __init__(self, context: RequestContext) -> None:
        # PERF: no super().__init__: the base's one field is the property below.
        self._context = context

    @property
    def tasks(self) -> list[BackgroundTask]:
        """The request's injected tasks, in order."""
        tasks = self._context.tasks
        assert tasks is not None  # made before this collection
        return tasks

    @tasks.setter
    def tasks(self, tasks: list[BackgroundTask]) -> None:
        self._context.tasks = list(tasks)

    def add_task(self, func: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> None:
        """Queue ``func(*args, **kwargs)`` to run after the response."""
        task = BackgroundTask(func, *args, **kwargs)
        self._context.queued(task)
        self.tasks.append(task)
