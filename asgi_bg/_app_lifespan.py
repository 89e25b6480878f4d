"""The app's side of the ASGI lifespan protocol, in one exit stack.

Startup starts the task backend, then enters the user's lifespan; shutdown drains the
background tasks, leaves the user's lifespan and stops the backend. Whatever the
user's lifespan does (fails on entry, raises on exit), the exit stack still stops what
was started.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

from ._types import Receive, Scope, Send

if TYPE_CHECKING:
    from .applications import App

logger = logging.getLogger("asgi_bg.error")


class LifespanStateUnsupported(RuntimeError):
    """The lifespan yielded state, but the server's lifespan scope has no ``state``."""


async def run_lifespan(app: App, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve one ``lifespan`` scope for ``app``."""
    await receive()  # lifespan.startup
    async with AsyncExitStack() as stack:
        try:
            await _start(app, scope, stack)
        except Exception as exc:
            logger.error("Application startup failed", exc_info=exc)
            await stack.aclose()  # stop what did start (the task backend)
            await send({"type": "lifespan.startup.failed", "message": _one_line(exc)})
            return
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        try:
            await stack.aclose()
        except Exception as exc:
            logger.error("Application shutdown failed", exc_info=exc)
            await send({"type": "lifespan.shutdown.failed", "message": _one_line(exc)})
            return
    await send({"type": "lifespan.shutdown.complete"})


async def _start(app: App, scope: Scope, stack: AsyncExitStack) -> None:
    # Entered first, so the task threads are there for everything and stop last.
    await stack.enter_async_context(app.tasks.workers.serving())
    backend = app.task_backend
    if backend is not None:
        await backend.start(app.task_registry)
        stack.push_async_callback(backend.stop)
    state = await stack.enter_async_context(app.lifespan_context(app))
    # Pushed last, so it runs first: tasks may use what the user's lifespan opened.
    stack.push_async_callback(app.tasks.shutdown, app.shutdown_timeout)
    if state is None:
        return
    if not isinstance(state, Mapping):
        raise TypeError(f"the lifespan must yield a mapping or None, not {type(state).__name__}")
    if not isinstance(scope.get("state"), dict):
        # As Starlette: dropping the state silently would fail later, in a request.
        raise LifespanStateUnsupported(
            "the lifespan yielded state, but the server does not support lifespan state"
        )
    scope["state"].update(state)


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


@asynccontextmanager
async def no_lifespan(app: Any) -> AsyncIterator[None]:
    """The lifespan of an app that declares none."""
    yield
