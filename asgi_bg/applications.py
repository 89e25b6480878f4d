"""The application: routes, middleware, exception handlers, lifespan, and the post-send hook."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

from ._app_lifespan import no_lifespan, run_lifespan
from ._concurrency import is_async_callable, run_in_thread
from ._context import CONTEXT_KEY, ERRORS_KEY, RequestContext
from ._types import ASGIApp, Receive, Scope, Send
from .backends.base import TASK_NAME_ATTR, TaskBackend, TaskBackendUnavailable, task_name
from .background import BackgroundTask, TaskErrorHook, TaskRunner
from .datastructures import RequestLabel
from .exceptions import HTTPException, RequestValidationError
from .requests import ClientDisconnect, Request, State
from .responses import JSONResponse, PlainTextResponse, Response
from .routing import Router

F = TypeVar("F", bound=Callable[..., Any])
ExceptionHandler = Callable[[Request, Any], Response | Awaitable[Response]]
Lifespan = Callable[["App"], AbstractAsyncContextManager[Any]]

logger = logging.getLogger("asgi_bg.error")

# Each request waiting for its tasks holds its ASGI call (~12 KiB with the server's
# connection state): a flood of slow tasks must be refused long before memory runs out.
# 1000 keeps such a flood under ~15 MiB (benchmarks/reliability.py, "flood").
DEFAULT_MAX_PENDING_TASKS = 1000


class App:
    """An ASGI 3 application whose background tasks run after the response, done right.

    Args:
        lifespan: ``lifespan(app)`` returning an async context manager, entered at
            startup and left at shutdown (after background tasks drained).
        middleware: pure-ASGI middleware as ``(cls, kwargs)`` pairs, outermost first.
        exception_handlers: ``{ExceptionType or status_code: handler(request, exc)}``.
        task_threads: worker threads for ``def`` background tasks (their own limiter).
        shutdown_timeout: seconds lifespan shutdown waits for running tasks before it
            cancels them, naming each.
        on_task_error: ``hook(task, exc)`` called after a background task raised.
        debug: answer unhandled errors with their traceback instead of a plain 500.
        task_backend: where ``@app.task`` functions go (``asgi_bg.backends``); None
            runs them in-process like any other task.
        task_submit_timeout: seconds the backend gets to take a request's registered
            calls before the request is answered 503.
        max_pending_tasks: bound on unfinished in-process tasks (default 1000); beyond
            it, a request that queues another task is answered 503 with
            ``Retry-After``, and ``stats()["refused"]`` counts it. None: no bound.
    """

    def __init__(
        self,
        *,
        lifespan: Lifespan | None = None,
        middleware: Sequence[Any] = (),
        exception_handlers: Mapping[type[BaseException] | int, ExceptionHandler] | None = None,
        task_threads: int = 40,
        shutdown_timeout: float = 30.0,
        on_task_error: TaskErrorHook | None = None,
        debug: bool = False,
        task_backend: TaskBackend | None = None,
        task_submit_timeout: float = 5.0,
        max_pending_tasks: int | None = DEFAULT_MAX_PENDING_TASKS,
    ) -> None:
        self.router = Router()
        self.state = State()
        self.tasks = TaskRunner(task_threads, on_task_error)
        self.task_backend = task_backend
        self.task_submit_timeout = task_submit_timeout
        self.task_registry: dict[str, Callable[..., Any]] = {}
        if task_backend is not None:
            self.tasks.backend_stats = task_backend.stats
        self._admit = None if max_pending_tasks is None else _backlog_bound(self, max_pending_tasks)
        self.shutdown_timeout = shutdown_timeout
        self.debug = debug
        self.lifespan_context = lifespan or no_lifespan
        self._middleware = [_middleware_entry(m) for m in middleware]
        self._handlers: dict[type[BaseException] | int, ExceptionHandler] = {
            HTTPException: _http_exception_handler,
            RequestValidationError: _validation_handler,
            TaskBackendUnavailable: _backend_unavailable_handler,
            **(exception_handlers or {}),
        }
        self._stack: ASGIApp | None = None
        self.get = self.router.get
        self.post = self.router.post
        self.put = self.router.put
        self.patch = self.router.patch
        self.delete = self.router.delete
        self.options = self.router.options
        self.head = self.router.head
        self.route = self.router.route
        self.add_route = self.router.add_route
        self.include_router = self.router.include_router
        self.mount = self.router.mount
        self.url_path_for = self.router.url_path_for

    # --- configuration ------------------------------------------------------------------

    def add_middleware(self, cls: Callable[..., ASGIApp], **kwargs: Any) -> None:
        """Wrap the app in pure-ASGI middleware ``cls(app, **kwargs)`` (outermost last added)."""
        if self._stack is not None:
            raise RuntimeError("Cannot add middleware after the application has started")
        self._middleware.insert(0, (cls, (), kwargs))

    def task(self, func: F) -> F:
        """Register ``func`` as a task of this app (decorator).

        Calls of a registered function go to the app's ``task_backend``, so they may run
        in another process or after a restart; without a backend they run in-process.
        ``add_task`` checks each call: the function must import back from its
        ``module:qualname`` and the arguments must survive a JSON round trip.
        """
        name = task_name(func)
        setattr(func, TASK_NAME_ATTR, name)
        self.task_registry[name] = func
        return func

    def add_exception_handler(
        self, exc_or_status: type[BaseException] | int, handler: ExceptionHandler
    ) -> None:
        """Answer ``exc_or_status`` with ``handler(request, exc)``."""
        self._handlers[exc_or_status] = handler

    def exception_handler(self, exc_or_status: type[BaseException] | int) -> Callable[[F], F]:
        """Decorator form of ``add_exception_handler``."""

        def register(handler: F) -> F:
            self.add_exception_handler(exc_or_status, handler)
            return handler

        return register

    def _build_stack(self) -> ASGIApp:
        app: ASGIApp = self._dispatch
        for cls, args, kwargs in reversed(self._middleware):
            app = cls(app, *args, **kwargs)
        self._stack = app
        return app

    # --- ASGI ---------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._other_scope(scope, receive, send)
            return
        context = RequestContext(self.tasks, self._admit)
        scope[CONTEXT_KEY] = context
        scope["app"] = self
        stack = self._stack or self._build_stack()
        try:
            # Middleware may send on its own: then the context watches the real send.
            await stack(scope, receive, context.tracking(send) if self._middleware else send)
        except Exception as exc:
            await self._server_error(scope, receive, send, context, exc)
        except BaseException:
            await context.abandon(scope.get(ERRORS_KEY), RequestLabel(scope))
            raise
        # PERF: read in place (a property cost ~1,000 instructions of a /hello).
        if context.tasks or context.response_background or context.teardowns:
            await self._after_response(scope, context)

    async def _other_scope(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await run_lifespan(self, scope, receive, send)
        elif kind == "websocket":
            # No WebSocket routes yet: refuse cleanly rather than leave the client hanging.
            await receive()
            await send({"type": "websocket.close", "code": 1000})
        else:
            raise RuntimeError(f"asgi_bg does not serve {kind!r} scopes")

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The router and the exception handlers: the innermost layer, under any middleware.

        Without middleware the app calls it directly: one exception path either way.
        """
        try:
            await self.router.resolve(scope)(scope, receive, send)
        except Exception as exc:
            context: RequestContext = scope[CONTEXT_KEY]
            exc = await context.failed(exc, RequestLabel(scope))
            handler = self._handler_for(exc)
            if handler is None:
                raise exc
            if context.started:
                raise RuntimeError("Handled an exception after the response started") from exc
            response = await _call_handler(handler, Request(scope, receive), exc)
            await response(scope, receive, send)

    def _handler_for(self, exc: BaseException) -> ExceptionHandler | None:
        """The handler for ``exc``; the 500 / ``Exception`` one belongs to the outer layer."""
        handlers = self._handlers
        if isinstance(exc, HTTPException) and exc.status_code in handlers:
            return handlers[exc.status_code]
        for cls in type(exc).__mro__:
            if cls is Exception:
                return None
            if cls in handlers:
                return handlers[cls]
        return None

    async def _server_error(
        self, scope: Scope, receive: Receive, send: Send, context: RequestContext, exc: Exception
    ) -> None:
        """The outermost layer: log, record for the test client, answer 500 if nothing
        was sent yet. Nothing reaches the server."""
        label = RequestLabel(scope)
        # Reported again if the inner layer already did: the context ignores the repeat.
        exc = await context.failed(exc, label)
        if isinstance(exc, ClientDisconnect):
            # Not an app error: one line, no traceback. The 500 below still goes out,
            # for a client that only half-closed its side.
            logger.warning("Client went away while sending the body of %s", label)
        else:
            logger.error("Exception while serving %s", label, exc_info=exc)
            errors = scope.get(ERRORS_KEY)
            if errors is not None:
                errors.append(exc)
        if context.started:
            return  # the server closes a response that never completed
        try:
            response = await self._error_response(scope, receive, exc)
            await response(scope, receive, send)
        except Exception as error:
            # The error handler failed too: nothing more can be answered; the server
            # closes the connection.
            logger.error("The 500 handler failed while serving %s", label, exc_info=error)

    async def _error_response(self, scope: Scope, receive: Receive, exc: Exception) -> Response:
        handler = self._handlers.get(500) or self._handlers.get(Exception)
        if handler is not None:
            return await _call_handler(handler, Request(scope, receive), exc)
        if self.debug:
            return PlainTextResponse("".join(traceback.format_exception(exc)), 500)
        return PlainTextResponse("Internal Server Error", 500)

    async def _after_response(self, scope: Scope, context: RequestContext) -> None:
        """The post-send hook: tasks in order, then generator-dependency teardowns."""
        label = RequestLabel(scope)
        errors = scope.get(ERRORS_KEY)
        try:
            tasks = context.tasks_to_run()
            if tasks:
                await self.tasks.run(tasks, label, errors)
            await context.teardown(errors, label)
        except BaseException:
            # Cancelled while the tasks ran (the runner named them): the resources
            # of generator dependencies must still be released.
            await context.abandon(errors, label)
            raise


def _backlog_bound(app: App, limit: int) -> Callable[[BackgroundTask], None]:
    """The admission check for ``max_pending_tasks``: unfinished in-process tasks."""

    def admit(task: BackgroundTask) -> None:
        if task.call is not None and app.task_backend is not None:
            return  # goes to the backend, not to the in-process backlog
        if app.tasks.backlog() >= limit:
            app.tasks.refused()
            raise HTTPException(
                503, "Too many background tasks pending; retry later", {"Retry-After": "1"}
            )

    return admit


def _middleware_entry(entry: Any) -> tuple[Callable[..., ASGIApp], tuple[Any, ...], dict[str, Any]]:
    """Accept ``(cls, kwargs)``, ``(cls, args, kwargs)`` or Starlette's ``Middleware``."""
    if hasattr(entry, "cls"):
        return entry.cls, tuple(getattr(entry, "args", ())), dict(entry.kwargs)
    if isinstance(entry, tuple | list) and len(entry) == 2:
        return entry[0], (), dict(entry[1])
    if isinstance(entry, tuple | list) and len(entry) == 3:
        return entry[0], tuple(entry[1]), dict(entry[2])
    raise TypeError(f"middleware entries are (cls, kwargs) pairs, got {entry!r}")


async def _call_handler(handler: ExceptionHandler, request: Request, exc: Exception) -> Response:
    if is_async_callable(handler):
        result = await handler(request, exc)  # type: ignore[misc]
    else:
        result = await run_in_thread(handler, request, exc)
    assert isinstance(result, Response), f"exception handler {handler!r} must return a Response"
    return result


async def _http_exception_handler(request: Request, exc: HTTPException) -> Response:
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)


async def _backend_unavailable_handler(request: Request, exc: TaskBackendUnavailable) -> Response:
    return JSONResponse({"detail": str(exc)}, 503, headers={"Retry-After": "5"})


async def _validation_handler(request: Request, exc: RequestValidationError) -> Response:
    return JSONResponse({"detail": exc.errors}, 422)
