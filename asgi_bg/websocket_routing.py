"""WebSocket routes: the registration-time checks and the per-connection handler.

A WebSocket route is injected by the same plan as an HTTP route (path, query, header,
cookie, ``Depends``, ``BackgroundTasks``); what makes no sense for a WebSocket (a body,
a ``Request``, a sync or generator endpoint) is refused when the route is added.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ._context import CONTEXT_KEY, RequestContext
from ._types import Message, Receive, Scope, Send
from .exceptions import ConfigurationError, RequestValidationError
from .injection import Plan, Solver, compile_plan, plan_reads, run_endpoint
from .websockets import WebSocket, WebSocketDisconnect, WebSocketState

if TYPE_CHECKING:
    from .routing import CompiledPath

# RFC 6455 section 7.4.1: 1008 "policy violation", the close code for input the
# endpoint refuses (FastAPI uses it for invalid parameters too).
POLICY_VIOLATION = 1008
INTERNAL_ERROR = 1011
# RFC 6455 section 5.5: a control frame's payload is at most 125 bytes, 2 of them the code.
_MAX_REASON = 123


class WebSocketRoute:
    """One WebSocket endpoint at one path; ``handle`` is its ASGI app."""

    def __init__(
        self,
        path: str,
        endpoint: Callable[..., Any],
        compiled: CompiledPath,
        *,
        name: str | None = None,
        dependencies: Sequence[Any] = (),
    ) -> None:
        self.path = path
        self.endpoint = endpoint
        self.compiled = compiled
        self.name = name or getattr(endpoint, "__name__", None) or type(endpoint).__name__
        where = f"WebSocket route {path} ({self.name})"
        types = {k: c.type for k, c in compiled.converters.items()}
        # ``dependencies=[...]`` of the route and of the groups around it (the app, its
        # routers, ``include_router``), outermost first: run for their effects.
        self.dependencies = list(dependencies)
        self.plan: Plan = compile_plan(endpoint, types, where=where, dependencies=dependencies)
        _check_plan(self.plan, where)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the endpoint for one connection; the app closes what it leaves open."""
        context: RequestContext = scope[CONTEXT_KEY]
        websocket = WebSocket(scope, receive, send)
        try:
            await run_endpoint(self.plan, Solver(websocket, context))
        except WebSocketDisconnect:
            return  # the client left while the endpoint waited: a normal end
        except RequestValidationError as exc:
            if websocket.application_state is not WebSocketState.DISCONNECTED:
                await websocket.close(POLICY_VIOLATION, validation_reason(exc.errors()))

    def __repr__(self) -> str:
        return f"WebSocketRoute({self.path!r}, {self.name!r})"


def _check_plan(plan: Plan, where: str) -> None:
    if plan.mode != "async":
        raise ConfigurationError(f"{where}: a WebSocket endpoint must be an 'async def' function")
    if plan.body_fields or plan.reads_form:
        raise ConfigurationError(f"{where}: a WebSocket has no request body to read from")
    if plan_reads(plan, "request"):
        raise ConfigurationError(f"{where}: annotate the parameter WebSocket, not Request")


def validation_reason(errors: list[dict[str, Any]]) -> str:
    """A close reason naming the first invalid parameter, cut to what a frame holds."""
    first = errors[0]
    reason = f"{'.'.join(str(part) for part in first['loc'])}: {first['msg']}"
    if len(errors) > 1:
        reason += f" (and {len(errors) - 1} more)"
    encoded = reason.encode("utf-8")[:_MAX_REASON]
    return encoded.decode("utf-8", errors="ignore")


async def reject(scope: Scope, receive: Receive, send: Send) -> None:
    """No WebSocket route for this path: close before accepting (servers answer 403)."""
    await send({"type": "websocket.close", "code": 1000, "reason": ""})


class CloseGuard:
    """Wraps ``receive`` and ``send`` to see where the conversation is, so that whatever
    the endpoint left open gets closed.

    The app's tasks run after the connection closed, so the app closes it itself when
    the endpoint returns rather than leaving that to the server.
    """

    __slots__ = ("_receive", "_send", "accepted", "finished")

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self.accepted = False
        self.finished = False  # closed by either side, or refused with an HTTP response

    async def receive(self) -> Message:
        """The ``receive`` the app below gets."""
        message = await self._receive()
        if message["type"] == "websocket.disconnect":
            self.finished = True
        return message

    async def send(self, message: Message) -> None:
        """The ``send`` the app below gets."""
        kind = message["type"]
        if kind == "websocket.accept":
            self.accepted = True
        elif kind == "websocket.close" or (
            kind == "websocket.http.response.body" and not message.get("more_body", False)
        ):
            self.finished = True
        await self._send(message)

    async def close(self, code: int) -> None:
        """Close if still open (before ``accept``, this refuses the handshake)."""
        if self.finished:
            return
        try:
            await self.send({"type": "websocket.close", "code": code, "reason": ""})
        except (OSError, RuntimeError):
            # The connection ended under us (ASGI 2.4 raises OSError; some servers raise
            # RuntimeError for a close after the client's): nothing is left to close.
            self.finished = True
