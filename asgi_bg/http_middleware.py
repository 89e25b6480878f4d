"""``@app.middleware("http")``: ``async def mw(request, call_next) -> Response``, as pure ASGI.

Starlette's version of this breaks background tasks and contextvars; this one must not:

* the inner response's tasks are not run here: the app runs them, as for any request,
  once the final body of the response *this* middleware sends reached the server, and
  they are counted like any other;
* the inner app runs in a child task (its body is streamed while ``dispatch`` holds
  the response), so the contextvars the handler set are copied back into the request's
  own context when it finished: its tasks, and the rest of the middleware, see them.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._context import CONTEXT_KEY
from ._types import ASGIApp, Message, Receive, Scope, Send
from .requests import Request
from .responses import Response, StreamingResponse

CallNext = Callable[[Request], Awaitable[Response]]
Dispatch = Callable[[Request, CallNext], Awaitable[Response]]


class HTTPMiddleware:
    """Run ``dispatch(request, call_next)`` around the app for every HTTP request.

    ``call_next(request)`` runs the rest of the app and returns its response with the
    body still streaming; ``dispatch`` may edit its headers or return another response.
    """

    def __init__(self, app: ASGIApp, dispatch: Dispatch) -> None:
        self.app = app
        self.dispatch = dispatch

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        failure: Exception | None = None
        wire = _StartWatch(send)
        async with anyio.create_task_group() as group:
            inner = _Inner(self.app, scope, receive, request, group)
            try:
                response = await self.dispatch(request, inner.call_next)
                await response(scope, receive, wire)
            except Exception as exc:
                # Raised as itself below: the task group would wrap it in a group.
                failure = exc
                group.cancel_scope.cancel()
            finally:
                inner.close()
        if failure is not None:
            await _answer_piped_failure(scope, receive, wire, failure)
            raise failure
        inner.adopt_context()


class _StartWatch:
    """The middleware's ``send``, noting whether a response really started through it."""

    __slots__ = ("send", "started")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)


async def _answer_piped_failure(
    scope: Scope, receive: Receive, wire: _StartWatch, exc: Exception
) -> None:
    """``dispatch`` raised after ``call_next``: the inner response the request's context
    saw start only went into the pipe. Nothing reached the server, so answer the error
    here; the app's outer layer then logs it and, seeing a response, sends nothing more.
    """
    context = scope.get(CONTEXT_KEY)
    if wire.started or context is None or not context.started:
        return  # a response did go out, or the app's outer layer will answer
    app = scope.get("app")
    answer = getattr(app, "server_error_response", None)
    response = await answer(scope, receive, exc) if answer is not None else _plain_500()
    await response(scope, receive, wire)


def _plain_500() -> Response:
    return Response("Internal Server Error", 500, media_type="text/plain")


class _Inner:
    """The rest of the app, run by ``call_next`` in a child task of the middleware."""

    def __init__(
        self, app: ASGIApp, scope: Scope, receive: Receive, request: Request, group: TaskGroup
    ) -> None:
        self.app = app
        self.scope = scope
        self.receive = receive
        self.request = request
        self.group = group
        self.replayed = False
        self.changed: dict[contextvars.ContextVar[Any], Any] = {}
        self.error: BaseException | None = None
        self.send_stream: MemoryObjectSendStream[Message] | None = None
        self.receive_stream: MemoryObjectReceiveStream[Message] | None = None

    async def call_next(self, request: Request) -> Response:
        """Start the inner app; return its response once it started (or raise its error)."""
        if self.send_stream is not None:
            raise RuntimeError("call_next() may be called once per request")
        self.send_stream, self.receive_stream = anyio.create_memory_object_stream[Message]()
        self.group.start_soon(self._run, contextvars.copy_context())
        start = await self._next_message()
        if start is None:
            if self.error is not None:
                raise self.error
            raise RuntimeError("the app returned without sending a response")
        response = StreamingResponse(self._body(), status_code=start["status"])
        response.raw_headers = list(start.get("headers", []))
        return response

    async def _run(self, before: contextvars.Context) -> None:
        assert self.send_stream is not None
        async with self.send_stream:
            try:
                await self.app(self.scope, self._receive, self._send)
            except Exception as exc:
                self.error = exc  # raised by call_next, or after the partial body
        after = contextvars.copy_context()
        self.changed = {var: value for var, value in after.items() if before.get(var) is not value}

    async def _receive(self) -> Message:
        # ``dispatch`` may have read the body already: the inner app reads it again.
        body = self.request._body
        if body is not None and not self.replayed:
            self.replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await self.receive()

    async def _send(self, message: Message) -> None:
        assert self.send_stream is not None
        # When dispatch answered with another response, the inner body is dropped.
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            await self.send_stream.send(message)

    async def _next_message(self) -> Message | None:
        assert self.receive_stream is not None
        try:
            return await self.receive_stream.receive()
        except anyio.EndOfStream:
            return None

    async def _body(self) -> AsyncIterator[bytes]:
        while (message := await self._next_message()) is not None:
            yield message.get("body", b"")
            if not message.get("more_body", False):
                break
        if self.error is not None:
            raise self.error  # the body broke off: the response must not look complete

    def close(self) -> None:
        """Stop listening to the inner app (its remaining messages are dropped)."""
        if self.receive_stream is not None:
            self.receive_stream.close()

    def adopt_context(self) -> None:
        """Set, in the request's context, the contextvars the inner app changed."""
        for var, value in self.changed.items():
            var.set(value)
