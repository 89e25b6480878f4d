"""Handing a request's registered calls to the app's task backend before the response.

The client must never get a 2xx for work that was not made durable, so the calls are
journaled or published after the handler returned and before ``http.response.start``,
under the app's ``task_submit_timeout``. If that fails, the request fails: 503.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anyio

from ._context import RequestContext
from .backends.base import TaskBackendUnavailable
from .background import BackgroundTask, BackgroundTasks

if TYPE_CHECKING:
    from .applications import App

logger = logging.getLogger("asgi_bg.background")


async def submit_registered(app: App, context: RequestContext, response: Any) -> None:
    """Submit the request's registered calls, or raise ``TaskBackendUnavailable``."""
    backend = app.task_backend
    if backend is None:
        return  # no backend: registered functions run in-process with the others
    tasks = _registered(context, getattr(response, "background", None))
    if not tasks:
        return
    try:
        with anyio.fail_after(app.task_submit_timeout):
            await backend.submit([task.call for task in tasks if task.call is not None])
    except Exception as exc:
        names = ", ".join(task.name for task in tasks)
        logger.error("Task backend %s could not take %s", backend.name, names, exc_info=exc)
        raise TaskBackendUnavailable(f"{backend.name} did not accept the tasks in time") from exc
    for task in tasks:
        task.submitted = True
    context.registered = True  # the in-process run leaves submitted tasks out


def _registered(
    context: RequestContext, background: BackgroundTask | BackgroundTasks | None
) -> list[BackgroundTask]:
    tasks = list(context.tasks.tasks) if context.tasks is not None else []
    if background is not None:
        tasks += context.new_tasks(background)
    return [task for task in tasks if task.call is not None]
