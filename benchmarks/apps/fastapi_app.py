"""The contender built on FastAPI, written as its documentation (the seed) shows.

``response_model=None`` keeps FastAPI's behaviour for the documentation's unannotated
handlers (no response validation) while the handlers stay typed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import BackgroundTasks, Depends, FastAPI
from fastapi.responses import PlainTextResponse

from benchmarks.workload import (
    COUNTERS,
    NOTIFICATION,
    STATS_PATH,
    notify_async,
    write_log,
    write_notification,
)

app = FastAPI()


@app.get("/hello", response_model=None)
async def hello() -> PlainTextResponse:
    return PlainTextResponse("Hello, World!")


@app.get("/items/{item_id}", response_model=None)
async def read_item(item_id: int, q: str | None = None) -> dict[str, object]:
    return {"item_id": item_id, "q": q}


@app.post("/send-notification/{email}", response_model=None)
async def send_notification(email: str, background_tasks: BackgroundTasks) -> dict[str, str]:
    background_tasks.add_task(notify_async, email, message=NOTIFICATION)
    background_tasks.add_task(write_notification, email, message=NOTIFICATION)
    COUNTERS.queue(2)
    return {"message": "Notification sent in the background"}


@app.post("/send-notification-async/{email}", response_model=None)
async def send_notification_async(email: str, background_tasks: BackgroundTasks) -> dict[str, str]:
    background_tasks.add_task(notify_async, email, message=NOTIFICATION)
    COUNTERS.queue(1)
    return {"message": "Notification sent in the background"}


def get_query(background_tasks: BackgroundTasks, q: str | None = None) -> str | None:
    if q:
        COUNTERS.queue(1)
        background_tasks.add_task(write_log, f"found query: {q}\n")
    return q


@app.post("/send-notification-dep/{email}", response_model=None)
async def send_notification_dependency(
    email: str, background_tasks: BackgroundTasks, q: Annotated[str | None, Depends(get_query)]
) -> dict[str, str]:
    COUNTERS.queue(1)
    background_tasks.add_task(write_log, f"message to {email}\n")
    return {"message": "Message sent"}


@app.get(STATS_PATH, response_model=None)
async def task_stats() -> dict[str, int]:
    return COUNTERS.snapshot()
