"""The quick start's app: the seed's two examples side by side, plus the task counters.

Serve it: ``python -m asgi_bg examples.app:app``, then try::

    curl -X POST localhost:8000/send-notification/me@example.com
    curl -X POST "localhost:8000/log/me@example.com?q=hello"
    curl localhost:8000/tasks

The notification goes to ``log.txt``, the dependency example appends to ``log-deps.txt``
(both in ``ASGI_BG_EXAMPLES_DIR``, by default the working directory).
"""

from typing import Annotated

from asgi_bg import App, BackgroundTasks, Depends

from ._paths import log_path
from .background_notification import send_notification

app = App()
app.post("/send-notification/{email}")(send_notification)


def write_log(message: str) -> None:
    with open(log_path("log-deps.txt"), mode="a") as log:
        log.write(message)


def get_query(background_tasks: BackgroundTasks, q: str | None = None) -> str | None:
    if q:
        background_tasks.add_task(write_log, f"found query: {q}\n")
    return q


@app.post("/log/{email}")
async def log_message(
    email: str, background_tasks: BackgroundTasks, q: Annotated[str, Depends(get_query)]
) -> dict[str, str]:
    background_tasks.add_task(write_log, f"message to {email}\n")
    return {"message": "Message sent"}


@app.get("/tasks")
async def task_counts() -> dict[str, int]:
    """What the background task runner has done so far."""
    return app.tasks.stats()
