"""The contender built on Starlette, written the way its documentation shows.

Starlette has no dependency injection, so the seed's ``get_query`` dependency is a plain
call inside the handler, as a Starlette user would write it.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.background import BackgroundTasks
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from benchmarks.workload import (
    COUNTERS,
    NOTIFICATION,
    STATS_PATH,
    notify_async,
    write_log,
    write_notification,
)


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Hello, World!")


async def read_item(request: Request) -> JSONResponse:
    item_id: int = request.path_params["item_id"]
    return JSONResponse({"item_id": item_id, "q": request.query_params.get("q")})


async def send_notification(request: Request) -> JSONResponse:
    email: str = request.path_params["email"]
    tasks = BackgroundTasks()
    tasks.add_task(notify_async, email, message=NOTIFICATION)
    tasks.add_task(write_notification, email, message=NOTIFICATION)
    COUNTERS.queue(2)
    return JSONResponse({"message": "Notification sent in the background"}, background=tasks)


async def send_notification_async(request: Request) -> JSONResponse:
    tasks = BackgroundTasks()
    tasks.add_task(notify_async, request.path_params["email"], message=NOTIFICATION)
    COUNTERS.queue(1)
    return JSONResponse({"message": "Notification sent in the background"}, background=tasks)


def get_query(background_tasks: BackgroundTasks, q: str | None) -> str | None:
    if q:
        COUNTERS.queue(1)
        background_tasks.add_task(write_log, f"found query: {q}\n")
    return q


async def send_notification_dependency(request: Request) -> JSONResponse:
    tasks = BackgroundTasks()
    get_query(tasks, request.query_params.get("q"))
    COUNTERS.queue(1)
    tasks.add_task(write_log, f"message to {request.path_params['email']}\n")
    return JSONResponse({"message": "Message sent"}, background=tasks)


async def task_stats(request: Request) -> JSONResponse:
    return JSONResponse(COUNTERS.snapshot())


app = Starlette(
    routes=[
        Route("/hello", hello),
        Route("/items/{item_id:int}", read_item),
        Route("/send-notification/{email}", send_notification, methods=["POST"]),
        Route("/send-notification-async/{email}", send_notification_async, methods=["POST"]),
        Route("/send-notification-dep/{email}", send_notification_dependency, methods=["POST"]),
        Route(STATS_PATH, task_stats),
    ]
)
