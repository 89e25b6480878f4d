"""Uploads through the embedded server: the task reads the whole file after the client
has its 202, and a body over ``max_body`` is refused 413 with no temporary file left
open."""

from collections.abc import AsyncIterator
from typing import IO

import anyio
import httpx
import pytest
from server_support import running

from asgi_bg import App, BackgroundTasks, UploadFile

pytestmark = pytest.mark.anyio

LIMIT = 10.0  # only turns a hang into a failure
MiB = 1024 * 1024


def multipart(data: bytes) -> tuple[bytes, bytes, dict[str, str]]:
    """The head and tail around a file's bytes in a one-file multipart body, and headers."""
    head = b'--X\r\nContent-Disposition: form-data; name="file"; filename="f.bin"\r\n\r\n'
    return head, b"\r\n--X--\r\n", {"content-type": "multipart/form-data; boundary=X"}


async def test_a_task_reads_the_whole_upload_after_the_client_has_its_202() -> None:
    app = App()
    answered, read = anyio.Event(), anyio.Event()
    seen: list[bytes] = []
    data = bytes(range(256)) * (5 * MiB // 256)

    async def task(upload: UploadFile) -> None:
        await answered.wait()  # the client has the 202: the upload must still be readable
        seen.append(await upload.read())
        read.set()

    @app.post("/jobs", status_code=202)
    async def submit(file: UploadFile, tasks: BackgroundTasks) -> str:
        tasks.add_task(task, file)
        return "queued"

    head, tail, headers = multipart(data)
    async with running(app, max_body=10 * MiB) as server:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            response = await client.post("/jobs", content=head + data + tail, headers=headers)
        assert response.status_code == 202
        answered.set()
        with anyio.fail_after(LIMIT):
            await read.wait()
    assert seen == [data]


async def test_a_body_over_max_body_is_413_and_no_upload_stays_open(
    spooled: list[IO[bytes]],
) -> None:
    app = App()

    @app.post("/")
    async def submit(file: UploadFile) -> int:
        raise AssertionError("never reached: the body is cut off")

    head, tail, headers = multipart(b"")

    async def chunked() -> AsyncIterator[bytes]:
        # No content-length: the server only learns the size while reading.
        yield head
        for _ in range(4):
            yield b"z" * MiB
        yield tail

    async with (
        running(app, max_body=2 * MiB) as server,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client,
    ):
        response = await client.post("/", content=chunked(), headers=headers)
    assert response.status_code == 413
    assert spooled, "the app started parsing the upload"
    assert all(file.closed for file in spooled)
