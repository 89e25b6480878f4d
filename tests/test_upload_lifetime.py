"""An upload outlives its response: it is open and readable in the background tasks its
request queued and in its teardowns, and closed (its temporary file deleted) after them,
also when a task fails, the request is cancelled, or shutdown cancels the tasks.

FastAPI 0.106 closed uploads before the background tasks ran; these tests pin the
opposite. "Gone" is checked on the file itself: closed, and no descriptor of this process
still refers to its (unlinked) inode.
"""

import os
import sys
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
import httpx
import pytest
from asgi_support import http_scope, recording

from asgi_bg import (
    App,
    BackgroundTask,
    BackgroundTasks,
    Depends,
    File,
    JSONResponse,
    Request,
    UploadFile,
)
from asgi_bg._types import Message
from asgi_bg.testing import AsyncTestClient, TestClient

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/fd")

BIG = os.urandom(3 * 1024 * 1024)  # past the 1 MiB spool limit: a real temporary file
LIMIT = 10.0  # only turns a hang into a failure

Log = list[str]


def open_inodes() -> set[int]:
    inodes = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            inodes.add(os.stat(f"/proc/self/fd/{name}").st_ino)
        except OSError:
            continue  # closed meanwhile (the listing's own descriptor)
    return inodes


class Seen:
    """What a task saw of the upload, and how to tell it is gone afterwards."""

    def __init__(self) -> None:
        self.data = b""
        self.upload: UploadFile | None = None
        self.inode = 0

    async def read(self, upload: UploadFile) -> None:
        self.upload = upload
        self.inode = os.fstat(upload.file.fileno()).st_ino
        await upload.seek(0)
        self.data = await upload.read()

    def gone(self) -> bool:
        assert self.upload is not None
        return bool(self.upload.file.closed) and self.inode not in open_inodes()


def upload_app(seen: Seen, log: Log, *, fail: bool = False) -> App:
    app = App()

    async def task(upload: UploadFile) -> None:
        await seen.read(upload)
        log.append(f"task read {len(seen.data)} bytes")
        if fail:
            raise RuntimeError("task failed")

    @app.post("/jobs", status_code=202)
    async def submit(file: UploadFile, tasks: BackgroundTasks) -> dict[str, str]:
        tasks.add_task(task, file)
        return {"id": "job-1"}

    return app


def test_a_task_reads_the_whole_upload_after_the_202(anyio_backend: str) -> None:
    seen, log = Seen(), list[str]()
    app = recording(upload_app(seen, log), log)

    response = TestClient(app, backend=anyio_backend).post("/jobs", files={"file": ("b", BIG)})

    assert (response.status_code, response.json()) == (202, {"id": "job-1"})
    assert log == ["response complete", f"task read {len(BIG)} bytes"]
    assert seen.data == BIG
    assert seen.gone()


def test_the_temporary_file_is_gone_after_a_failing_task(anyio_backend: str) -> None:
    seen, log = Seen(), list[str]()
    client = TestClient(upload_app(seen, log, fail=True), backend=anyio_backend)

    with pytest.raises(RuntimeError, match="task failed"):
        client.post("/jobs", files={"file": ("b", BIG)})

    assert seen.data == BIG
    assert seen.gone()


def test_the_responses_own_background_task_reads_the_upload(anyio_backend: str) -> None:
    seen = Seen()
    app = App()

    @app.post("/")
    async def handler(file: UploadFile) -> JSONResponse:
        return JSONResponse({"ok": True}, background=BackgroundTask(seen.read, file))

    response = TestClient(app, backend=anyio_backend).post("/", files={"file": ("b", BIG)})

    assert response.json() == {"ok": True}
    assert seen.data == BIG
    assert seen.gone()


def test_a_teardown_runs_after_the_tasks_and_still_reads_the_upload(anyio_backend: str) -> None:
    log: Log = []
    app = App()

    async def audit(file: Annotated[UploadFile, File()]) -> AsyncIterator[None]:
        yield
        await file.seek(0)
        log.append(f"teardown read {len(await file.read())} bytes")

    async def task(file: UploadFile) -> None:
        log.append(f"task read {len(await file.read())} bytes")

    @app.post("/")
    async def handler(
        file: UploadFile, tasks: BackgroundTasks, _: Annotated[None, Depends(audit)]
    ) -> None:
        tasks.add_task(task, file)

    TestClient(app, backend=anyio_backend).post("/", files={"file": ("b", BIG)})

    assert log == [f"task read {len(BIG)} bytes", f"teardown read {len(BIG)} bytes"]


def test_request_form_uploads_live_as_long_as_injected_ones(anyio_backend: str) -> None:
    seen = Seen()
    app = App()

    @app.post("/")
    async def handler(request: Request, tasks: BackgroundTasks) -> None:
        form = await request.form()
        upload = form["file"]
        assert isinstance(upload, UploadFile)
        tasks.add_task(seen.read, upload)

    TestClient(app, backend=anyio_backend).post("/", files={"file": ("b", BIG)})

    assert seen.data == BIG
    assert seen.gone()


def multipart(content: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """A multipart body with one file field ``file``, and its headers."""
    request = httpx.Request("POST", "http://testserver/", files={"file": ("b", content)})
    return request.read(), [(k.lower(), v) for k, v in request.headers.raw]


def waiting_app(seen: Seen, started: anyio.Event) -> App:
    app = App(shutdown_timeout=0)

    async def task(upload: UploadFile) -> None:
        await seen.read(upload)
        started.set()
        await anyio.sleep_forever()

    @app.post("/")
    async def handler(file: UploadFile, tasks: BackgroundTasks) -> None:
        tasks.add_task(task, file)

    return app


@pytest.mark.anyio
async def test_the_upload_is_closed_when_the_request_is_cancelled_mid_task() -> None:
    seen, started = Seen(), anyio.Event()
    app = waiting_app(seen, started)
    body, headers = multipart(BIG)
    messages: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> Message:
        if not messages:
            await anyio.sleep_forever()  # no disconnect: only the cancellation ends it
        return messages.pop()

    async def send(message: Message) -> None:
        pass

    with anyio.fail_after(LIMIT):
        async with anyio.create_task_group() as group:
            group.start_soon(app, http_scope("/", "POST", headers=headers), receive, send)
            await started.wait()
            group.cancel_scope.cancel()

    assert seen.data == BIG
    assert seen.gone()


@pytest.mark.anyio
async def test_the_upload_is_closed_when_shutdown_cancels_the_task() -> None:
    seen, started = Seen(), anyio.Event()
    app = waiting_app(seen, started)
    client = AsyncTestClient(app)

    with anyio.fail_after(LIMIT):
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: client.post("/", files={"file": ("b", BIG)}))
            await started.wait()
            await app.tasks.shutdown(0)  # what lifespan shutdown does after its grace

    assert app.tasks.stats()["cancelled"] == 1
    assert seen.gone()


def save_upload(upload: Any) -> None:
    raise AssertionError("never called: add_task refuses the call")


def test_a_registered_task_cannot_take_an_upload(anyio_backend: str) -> None:
    app = App()
    app.task(save_upload)

    @app.post("/")
    async def handler(file: UploadFile, tasks: BackgroundTasks) -> None:
        tasks.add_task(save_upload, file)

    client = TestClient(app, backend=anyio_backend)
    with pytest.raises(TypeError, match=r"UploadFile.*save it.*pass the path"):
        client.post("/", files={"file": ("b", b"data")})
