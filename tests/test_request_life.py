"""One owner for a request's life: the phases, the one exception path, the lifespan's exit
stack, and the defects the scattered state used to cause (issue 10)."""

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import PlainTextResponse as StarlettePlainText
from starlette.routing import Route

from asgi_bg import (
    App,
    BackgroundTasks,
    Depends,
    FileResponse,
    HTTPException,
    JSONResponse,
    Request,
)
from asgi_bg._context import IllegalTransition, Phase, RequestContext
from asgi_bg._types import ASGIApp, Message, Receive, Scope, Send
from asgi_bg.backends.base import TaskCall
from asgi_bg.background import TaskRunner
from asgi_bg.testing import AsyncTestClient

pytestmark = pytest.mark.anyio

Log = list[str]


class PassThrough:
    """Pure ASGI middleware that hands ``send`` on unchanged (as most do)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def starlette_child() -> Starlette:
    async def hello(request: Any) -> StarlettePlainText:
        return StarlettePlainText("from the mounted app")

    return Starlette(routes=[Route("/hello", hello)])


@pytest.mark.parametrize(
    "middleware",
    [
        (PassThrough, {}),
        (TrustedHostMiddleware, {"allowed_hosts": ["testserver"]}),
    ],
    ids=["pass-through", "starlette-trusted-host"],
)
async def test_a_mount_behind_send_preserving_middleware_is_reached(
    anyio_backend: str, middleware: tuple[Any, dict[str, Any]]
) -> None:
    # Used to recurse until RecursionError: the mount wrapped the already wrapped send.
    app = App(middleware=[middleware])
    app.mount("/child", starlette_child())

    async with AsyncTestClient(app) as client:
        response = await client.get("/child/hello")

    assert response.status_code == 200
    assert response.text == "from the mounted app"


async def test_a_failing_file_response_discards_the_handlers_tasks(
    anyio_backend: str, tmp_path: Path
) -> None:
    log: Log = []
    app = App()

    @app.get("/file")
    async def send_file(tasks: BackgroundTasks) -> FileResponse:
        tasks.add_task(log.append, "ran")
        return FileResponse(tmp_path / "missing.txt")

    async with AsyncTestClient(app) as client:
        response = await client.get("/file")

    assert response.status_code == 404
    assert log == []
    assert app.tasks.stats()["discarded"] == 1


class RecordingBackend:
    """A task backend that only records whether it was started and stopped."""

    name = "recording"

    def __init__(self, log: Log) -> None:
        self.log = log

    async def start(self, registry: Mapping[str, Callable[..., Any]]) -> None:
        self.log.append("backend started")

    async def submit(self, calls: Sequence[TaskCall]) -> None:
        raise AssertionError("not used")

    async def stop(self) -> None:
        self.log.append("backend stopped")

    def stats(self) -> dict[str, int]:
        return {}


async def drive_lifespan(app: App, state: dict[str, Any] | None = None) -> list[str]:
    """Run startup then (if it succeeded) shutdown; the message types the app answered."""
    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    answers: list[str] = []

    async def receive() -> Message:
        return inbox.pop(0)

    async def send(message: Message) -> None:
        answers.append(message["type"])
        if message["type"] == "lifespan.startup.failed":
            inbox.clear()

    scope: dict[str, Any] = {"type": "lifespan", "asgi": {"version": "3.0"}}
    if state is not None:
        scope["state"] = state
    await app(scope, receive, send)
    return answers


async def test_the_backend_is_stopped_when_the_lifespan_fails_on_entry(
    anyio_backend: str,
) -> None:
    log: Log = []

    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        raise RuntimeError("no database")
        yield  # pragma: no cover

    app = App(lifespan=lifespan, task_backend=RecordingBackend(log))

    assert await drive_lifespan(app) == ["lifespan.startup.failed"]
    assert log == ["backend started", "backend stopped"]


async def test_the_backend_is_stopped_when_the_lifespan_raises_on_exit(
    anyio_backend: str,
) -> None:
    log: Log = []

    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        log.append("lifespan entered")
        yield
        raise RuntimeError("close failed")

    app = App(lifespan=lifespan, task_backend=RecordingBackend(log))

    answers = await drive_lifespan(app)

    assert answers == ["lifespan.startup.complete", "lifespan.shutdown.failed"]
    assert log == ["backend started", "lifespan entered", "backend stopped"]


async def test_lifespan_state_without_a_state_scope_refuses_to_start(anyio_backend: str) -> None:
    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[dict[str, str]]:
        yield {"db": "connection"}

    app = App(lifespan=lifespan)

    assert await drive_lifespan(app, state=None) == ["lifespan.startup.failed"]
    state: dict[str, Any] = {}
    assert await drive_lifespan(app, state=state) == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert state == {"db": "connection"}


class OwnerError(Exception):
    """Raised by a handler; the dependency turns it into a 400 (FastAPI's tutorial)."""


async def test_a_dependency_exit_code_sees_the_handlers_exception_before_the_answer(
    anyio_backend: str,
) -> None:
    log: Log = []

    async def get_db() -> AsyncIterator[str]:
        try:
            yield "db"
        except OwnerError as exc:
            log.append("dependency saw OwnerError")
            raise HTTPException(400, "Owner error") from exc
        finally:
            log.append("db closed")

    app = App()

    @app.get("/items")
    async def items(db: Annotated[str, Depends(get_db)], tasks: BackgroundTasks) -> None:
        tasks.add_task(log.append, "task ran")
        raise OwnerError

    async with AsyncTestClient(app) as client:
        response = await client.get("/items")

    assert response.status_code == 400
    assert response.json() == {"detail": "Owner error"}
    assert log == ["dependency saw OwnerError", "db closed"]
    assert app.tasks.stats()["discarded"] == 1


class Teapot(Exception):
    """Answered 418 by an exception handler."""


async def teapot_handler(request: Request, exc: Teapot) -> JSONResponse:
    return JSONResponse({"detail": "teapot"}, 418)


async def crash_handler(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": f"crashed: {type(exc).__name__}"}, 500)


@pytest.mark.parametrize("middleware", [[], [(PassThrough, {})]], ids=["bare", "middleware"])
async def test_one_exception_path_with_or_without_middleware(
    anyio_backend: str, middleware: list[Any]
) -> None:
    log: Log = []
    app = App(
        middleware=middleware,
        exception_handlers={Teapot: teapot_handler, Exception: crash_handler},
    )

    @app.get("/teapot")
    async def teapot(tasks: BackgroundTasks) -> None:
        tasks.add_task(log.append, "teapot task")
        raise Teapot

    @app.get("/crash")
    async def crash(tasks: BackgroundTasks) -> None:
        tasks.add_task(log.append, "crash task")
        raise KeyError("boom")

    async with AsyncTestClient(app, raise_server_exceptions=False) as client:
        teapot_response = await client.get("/teapot")
        crash_response = await client.get("/crash")

    assert (teapot_response.status_code, teapot_response.json()) == (418, {"detail": "teapot"})
    assert (crash_response.status_code, crash_response.json()) == (
        500,
        {"detail": "crashed: KeyError"},
    )
    assert log == []
    assert app.tasks.stats()["discarded"] == 2


async def test_the_phases_follow_the_response(anyio_backend: str) -> None:
    seen: list[Phase] = []
    app = App()

    @app.get("/")
    async def handler(request: Request, tasks: BackgroundTasks) -> None:
        context: RequestContext = request.scope["asgi_bg.context"]
        seen.append(context.phase)
        tasks.add_task(lambda: seen.append(context.phase))

    async with AsyncTestClient(app) as client:
        await client.get("/")

    assert seen == [Phase.RECEIVED, Phase.TASKS]


def test_an_event_the_phase_does_not_allow_is_a_clear_error() -> None:
    context = RequestContext(TaskRunner())
    context.response_started()
    context.body_sent()

    with pytest.raises(IllegalTransition, match="handled while the request is sent"):
        context.handled()


async def test_stats_while_a_thread_trip_runs_show_one_running_and_the_rest_pending(
    anyio_backend: str,
) -> None:
    entered = anyio.Event()
    release = anyio.Event()
    app = App()

    def blocking() -> None:
        anyio.from_thread.run_sync(entered.set)
        anyio.from_thread.run(release.wait)

    @app.post("/")
    async def handler(tasks: BackgroundTasks) -> None:
        for _ in range(3):
            tasks.add_task(blocking)

    async with AsyncTestClient(app) as client, anyio.create_task_group() as group:
        group.start_soon(client.post, "/")
        await entered.wait()
        during = app.tasks.stats()
        release.set()

    after = app.tasks.stats()
    assert (during["running"], during["pending"], during["succeeded"]) == (1, 2, 0)
    assert (after["running"], after["pending"], after["succeeded"]) == (0, 0, 3)
    assert after["scheduled"] == 3


async def test_the_backlog_is_bounded_by_default(anyio_backend: str) -> None:
    release = anyio.Event()
    parked = anyio.Event()
    app = App()

    async def wait() -> None:
        await release.wait()

    async def mark_parked() -> None:
        parked.set()
        await release.wait()

    @app.post("/fill")
    async def fill(tasks: BackgroundTasks) -> None:
        tasks.add_task(mark_parked)  # the first of 1000, all waiting for the release
        for _ in range(999):
            tasks.add_task(wait)

    @app.post("/one-more")
    async def one_more(tasks: BackgroundTasks) -> None:
        tasks.add_task(wait)

    async with AsyncTestClient(app) as client, anyio.create_task_group() as group:
        group.start_soon(client.post, "/fill")
        await parked.wait()  # the 1000 tasks of /fill are in the runner
        refused = await client.post("/one-more")
        release.set()

    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert app.tasks.stats()["refused"] == 1
