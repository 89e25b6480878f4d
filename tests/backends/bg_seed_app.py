"""The seed's dependency example with ``@app.task`` on ``write_log``, for subprocess tests.

Served by ``python -m asgi_bg bg_seed_app:app`` (and imported by the Celery worker,
``bg_worker``). The backend comes from the environment:

* ``ASGI_BG_TEST_BACKEND``: ``durable``, ``celery`` or unset (in-process);
* ``ASGI_BG_TEST_DB``: the durable backend's SQLite file or database URL;
* ``ASGI_BG_TEST_EXECUTOR``: the durable backend's ``executor_id`` (default ``local``);
* ``ASGI_BG_TEST_JOURNAL_ONLY=1``: the durable backend journals and does not run (as a
  process that dies before it got to its calls);
* ``ASGI_BG_TEST_BROKER_URL`` (Redis or AMQP), ``ASGI_BG_TEST_VISIBILITY``: the Celery
  broker; ``ASGI_BG_TEST_PREFETCH``: the worker's prefetch multiplier (default 1);
* ``ASGI_BG_EXAMPLES_DIR``: where ``log.txt`` and the ``slow`` task's files go.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Any

from asgi_bg import App, BackgroundTasks, Depends


def backend_from_env() -> Any:
    kind = os.environ.get("ASGI_BG_TEST_BACKEND", "")
    if kind == "durable":
        from asgi_bg.backends.durable import DurableBackend  # noqa: PLC0415

        journal_only = os.environ.get("ASGI_BG_TEST_JOURNAL_ONLY") == "1"
        return DurableBackend(
            os.environ["ASGI_BG_TEST_DB"],
            poll_interval=0.05,
            run_tasks=not journal_only,
            executor_id=os.environ.get("ASGI_BG_TEST_EXECUTOR", "local"),
        )
    if kind == "celery":
        from celery import Celery  # noqa: PLC0415

        from asgi_bg.backends.celery import CeleryBackend  # noqa: PLC0415

        visibility = float(os.environ.get("ASGI_BG_TEST_VISIBILITY", "3600"))
        celery_app = Celery("bg_seed_app", broker=os.environ["ASGI_BG_TEST_BROKER_URL"])
        celery_app.conf.broker_transport_options = {
            # Redis: recover a dead worker's message quickly, restore sweeps every second.
            "unacked_restore_interval": 1,
            "unacked_restore_throttle": 1,
        }
        if prefetch := os.environ.get("ASGI_BG_TEST_PREFETCH"):
            celery_app.conf.worker_prefetch_multiplier = int(prefetch)
        return CeleryBackend(celery_app, visibility_timeout=visibility)
    return None


def log_path(name: str = "log.txt") -> Path:
    return Path(os.environ.get("ASGI_BG_EXAMPLES_DIR", ".")) / name


app = App(task_backend=backend_from_env())


# --- the seed, with @app.task added ------------------------------------------------------------


@app.task
def write_log(message: str) -> None:
    with open(log_path(), mode="a") as log:
        log.write(message)


def get_query(background_tasks: BackgroundTasks, q: str | None = None) -> str | None:
    if q:
        message = f"found query: {q}\n"
        background_tasks.add_task(write_log, message)
    return q


@app.post("/send-notification/{email}")
async def send_notification(
    email: str, background_tasks: BackgroundTasks, q: Annotated[str, Depends(get_query)]
) -> dict[str, str]:
    message = f"message to {email}\n"
    background_tasks.add_task(write_log, message)
    return {"message": "Message sent"}


# --- for the crash tests -----------------------------------------------------------------------


@app.task
def slow(tag: str) -> None:
    """Note the start (with the pid), wait for ``go-<tag>`` (bounded), note the end."""
    write_log(f"started {tag} {os.getpid()}\n")
    deadline = time.monotonic() + 30.0
    while not log_path(f"go-{tag}").exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"go-{tag} never appeared")
        time.sleep(0.02)
    write_log(f"done {tag} {os.getpid()}\n")


@app.post("/slow/{tag}")
async def start_slow(tag: str, background_tasks: BackgroundTasks) -> dict[str, str]:
    background_tasks.add_task(slow, tag)
    return {"queued": tag}


# --- for the load run across several web processes ---------------------------------------------


@app.task
def count(key: str) -> None:
    """Note one run of ``key`` with the pid; long enough that a kill lands mid-task."""
    time.sleep(0.02)
    with open(log_path("runs.txt"), mode="a") as runs:
        runs.write(f"{key} {os.getpid()}\n")


@app.post("/count/{key}")
async def start_count(key: str, background_tasks: BackgroundTasks) -> dict[str, str]:
    background_tasks.add_task(count, key)
    return {"queued": key}
