"""Committing a request's tasks before its response starts.

Once ``http.response.start`` is out, the client's answer is decided, so everything that
may still refuse the request happens here, after the handler returned: the backlog
bound sees the response's own ``background=`` tasks (503 when full), and registered
calls are journaled or published to the app's task backend under
``task_submit_timeout`` (503 when it fails). The client never gets a 2xx for work that
was not accepted.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anyio

from ._context import RequestContext
from .backends.base import TaskBackendUnavailable
from .background import BackgroundTask

if TYPE_CHECKING:
    from .applications import App

logger = logging.getLogger("asgi_bg.background")


async def commit_tasks(app: App, context: RequestContext, response: Any) -> None:
    """Admit the response's own tasks, then submit the request's registered calls."""
    background = getattr(response, "background", None)
    added = context.new_tasks(background) if background is not None else []
    for task in added:
        context.queued(task)
    if context.registered and app.task_backend is not None:
        queued = context.tasks or []
        await _submit(app, [task for task in queued + added if task.call is not None])


async def _submit(app: App, tasks: list[BackgroundTask]) -> None:
    backend = app.task_backend
    assert backend is not None
    try:
        with anyio.fail_after(app.task_submit_timeout):
            await backend.submit([task.call for task in tasks if task.call is not None])
    except Exception as exc:
        names = ", ".join(task.name for task in tasks)
        logger.error("Task backend %s could not take %s", backend.name, names, exc_info=exc)
        raise TaskBackendUnavailable(f"{backend.name} did not accept the tasks in time") from exc
    for task in tasks:
        task.submitted = True
