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
from .http_middleware import HTTPMiddleware
from .openapi import build_document, install_endpoints, pages
from .requests import ClientDisconnect, Request, State
from .responses import JSONResponse, PlainTextResponse, Response
from .routing import Router
from .websocket_routing import INTERNAL_ERROR, CloseGuard

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
        dependencies: ``Depends(...)`` run before every route's handler, values discarded.
        title, version, description, servers, openapi_tags: the OpenAPI document's
            ``info``, ``servers`` and ``tags`` (see ``docs/openapi.md``).
        openapi_url, docs_url, redoc_url, swagger_ui_oauth2_redirect_url: where the
            document, Swagger UI, ReDoc and Swagger UI's OAuth2 redirect page are served;
            None turns one off (``openapi_url=None``: no document and no docs pages).
        swagger_js_url, swagger_css_url, redoc_js_url: the docs pages' assets, for a
            deployment that serves its own copies.
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
        dependencies: Sequence[Any] | None = None,
        title: str = "asgi_bg",
        version: str = "0.1.0",
        description: str = "",
        openapi_url: str | None = "/openapi.json",
        docs_url: str | None = "/docs",
        redoc_url: str | None = "/redoc",
        swagger_ui_oauth2_redirect_url: str | None = "/docs/oauth2-redirect",
        servers: Sequence[dict[str, Any]] = (),
        openapi_tags: Sequence[dict[str, Any]] = (),
        swagger_js_url: str = pages.SWAGGER_JS_URL,
        swagger_css_url: str = pages.SWAGGER_CSS_URL,
        redoc_js_url: str = pages.REDOC_JS_URL,
    ) -> None:
        self.router = Router(dependencies=dependencies)
        # {original: replacement}, looked up per request by the injector (tests set it).
        self.dependency_overrides: dict[Callable[..., Any], Callable[..., Any]] = {}
        self.state = State()
        self.tasks = TaskRunner(task_threads, on_task_error)
        self.task_backend = task_backend
        self.task_submit_timeout = task_submit_timeout
        self.task_registry: dict[str, Callable[..., Any]] = {}
        if task_backend is not None:
            self.tasks.backend_stats = task_backend.stats
        self._admit = None
        if max_pending_tasks is not None:
            self.tasks.limit = max_pending_tasks  # the runner holds the bound; admit asks it
            self._admit = _backlog_bound(self)
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
        self.websocket = self.router.websocket
        self.add_websocket_route = self.router.add_websocket_route
        self.url_path_for = self.router.url_path_for
        self.title, self.version, self.description = title, version, description
        self.openapi_url, self.docs_url, self.redoc_url = openapi_url, docs_url, redoc_url
        self.swagger_ui_oauth2_redirect_url = swagger_ui_oauth2_redirect_url
        self.servers, self.openapi_tags = list(servers), list(openapi_tags)
        self.swagger_js_url, self.swagger_css_url = swagger_js_url, swagger_css_url
        self.redoc_js_url = redoc_js_url
        self.openapi_schema: dict[str, Any] | None = None
        install_endpoints(self)

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document of the app's routes, built on first call and cached
        in ``openapi_schema`` (routes added later are not in it)."""
        if self.openapi_schema is None:
            self.openapi_schema = build_document(self)
        return self.openapi_schema

    # --- configuration ------------------------------------------------------------------

    def add_middleware(self, cls: Callable[..., ASGIApp], **kwargs: Any) -> None:
        """Wrap the app in pure-ASGI middleware ``cls(app, **kwargs)`` (outermost last added)."""
        if self._stack is not None:
            raise RuntimeError("Cannot add middleware after the application has started")
        self._middleware.insert(0, (cls, (), kwargs))

    def middleware(self, middleware_type: str) -> Callable[[F], F]:
        """``@app.middleware("http")`` around ``async def mw(request, call_next) -> Response``."""
        if middleware_type != "http":
            raise ValueError(f'middleware type is "http", not {middleware_type!r}')

        def register(dispatch: F) -> F:
            self.add_middleware(HTTPMiddleware, dispatch=dispatch)
            return dispatch

        return register

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
        # PERF: plain lists and tuples, read in place (no Python __len__ nor property).
        if context.tasks or context.response_background or context.teardowns or context.closers:
            await self._after_response(scope, context)

    async def _other_scope(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await run_lifespan(self, scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        else:
            raise RuntimeError(f"asgi_bg does not serve {kind!r} scopes")

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One WebSocket connection: closed when the endpoint ends (1011 if it raised),
        then its background tasks and teardowns run, as after an HTTP response."""
        context = RequestContext(self.tasks, self._admit)
        scope[CONTEXT_KEY] = context
        scope["app"] = self
        label = RequestLabel(scope)
        guard = CloseGuard(receive, send)
        try:
            await (self._stack or self._build_stack())(scope, guard.receive, guard.send)
        except Exception as exc:
            exc = await context.failed(exc, label)
            logger.error("Exception while serving %s", label, exc_info=exc)
            if (errors := scope.get(ERRORS_KEY)) is not None:
                errors.append(exc)
            await guard.close(INTERNAL_ERROR)
        except BaseException:
            await context.abandon(scope.get(ERRORS_KEY), label)
            raise
        await guard.close(1000)  # before the tasks: they run once the connection closed
        # PERF: plain lists and tuples, read in place (no Python __len__ nor property).
        if context.tasks or context.response_background or context.teardowns or context.closers:
            await self._after_response(scope, context)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The router and the exception handlers: the innermost layer, under any middleware.

        Without middleware the app calls it directly: one exception path either way.
        """
        if scope["type"] == "websocket":
            await self.router(scope, receive, send)  # HTTP exception handlers do not apply
            return
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
            response = await self.server_error_response(scope, receive, exc)
            await response(scope, receive, send)
        except Exception as error:
            # The error handler failed too: nothing more can be answered; the server
            # closes the connection.
            logger.error("The 500 handler failed while serving %s", label, exc_info=error)

    async def server_error_response(
        self, scope: Scope, receive: Receive, exc: Exception
    ) -> Response:
        """The answer to an exception nothing handled: the app's 500 (or ``Exception``)
        handler, the traceback with ``debug=True``, else a plain 500."""
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
            if context.teardowns or context.closers:
                await context.teardown(errors, label)
            else:
                context.done()
        except BaseException:
            # Cancelled while the tasks ran (the runner named them): the resources
            # of generator dependencies must still be released.
            await context.abandon(errors, label)
            raise


def _backlog_bound(app: App) -> Callable[[BackgroundTask], None]:
    """The admission check for ``max_pending_tasks``: unfinished in-process tasks."""

    def admit(task: BackgroundTask) -> None:
        if task.call is not None and app.task_backend is not None:
            return  # goes to the backend, not to the in-process backlog
        if app.tasks.backlog >= app.tasks.limit:
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
    return JSONResponse({"detail": exc.errors()}, 422)
