"""Response classes as a client sees them: status, headers, body, cookies, files, streams."""

import dataclasses
import datetime
import enum
import hashlib
import os
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import anyio
import pytest

from asgi_bg import (
    App,
    BackgroundTask,
    BackgroundTasks,
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
    responses,
)
from asgi_bg._types import Message, Scope
from asgi_bg.testing import AsyncTestClient

pytestmark = pytest.mark.anyio


def serve(response: Response, path: str = "/") -> App:
    """An app answering ``path`` with ``response`` (GET and HEAD)."""
    app = App()

    @app.get(path)
    async def handler() -> Response:
        return response

    return app


async def test_response_with_bytes_str_status_headers_and_media_type() -> None:
    client = AsyncTestClient(
        serve(Response(b"\x00raw", 201, headers={"X-Thing": "1"}, media_type="application/x-bin"))
    )
    response = await client.get("/")
    assert (response.status_code, response.content) == (201, b"\x00raw")
    assert response.headers["x-thing"] == "1"
    assert response.headers["content-type"] == "application/x-bin"
    assert response.headers["content-length"] == "4"

    response = await AsyncTestClient(serve(Response("héllo"))).get("/")
    assert response.content == "héllo".encode()
    assert response.headers["content-length"] == str(len("héllo".encode()))
    assert "content-type" not in response.headers


async def test_explicit_headers_are_not_duplicated() -> None:
    response = Response("x", headers={"Content-Type": "text/custom", "content-length": "1"})
    got = await AsyncTestClient(serve(response)).get("/")
    assert got.headers.get_list("content-type") == ["text/custom"]
    assert got.headers.get_list("content-length") == ["1"]


async def test_no_content_has_no_content_length() -> None:
    got = await AsyncTestClient(serve(Response(status_code=204))).get("/")
    assert (got.status_code, got.content) == (204, b"")
    assert "content-length" not in got.headers


async def test_plain_text_and_html() -> None:
    text = await AsyncTestClient(serve(PlainTextResponse("plain ✓"))).get("/")
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    assert text.text == "plain ✓"
    html = await AsyncTestClient(serve(HTMLResponse("<p>hi</p>", status_code=418))).get("/")
    assert (html.status_code, html.headers["content-type"]) == (418, "text/html; charset=utf-8")
    assert html.text == "<p>hi</p>"


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Item:
    name: str
    tags: set[str]


async def test_json_response_encodes_the_usual_python_values_compactly() -> None:
    ident = uuid.UUID(int=1)
    content = {
        "item": Item("a", {"t"}),
        "id": ident,
        "when": datetime.date(2024, 1, 2),
        "at": datetime.datetime(2024, 1, 2, 3, 4, 5),
        "color": Color.RED,
        "tuple": (1, 2),
        "text": "ünï",
    }
    response = await AsyncTestClient(serve(JSONResponse(content))).get("/")
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "item": {"name": "a", "tags": ["t"]},
        "id": str(ident),
        "when": "2024-01-02",
        "at": "2024-01-02T03:04:05",
        "color": "red",
        "tuple": [1, 2],
        "text": "ünï",
    }
    assert b" " not in JSONResponse({"a": [1, 2]}).body
    assert "ü".encode() in response.content, "not ASCII-escaped"


def test_json_response_refuses_what_it_cannot_encode() -> None:
    with pytest.raises(TypeError, match="object"):
        JSONResponse({"x": object()})
    with pytest.raises(ValueError):
        JSONResponse(float("nan"))
    looped: dict[str, Any] = {}
    looped["self"] = looped
    with pytest.raises(RecursionError):  # the encoder keeps no markers (see responses.py)
        JSONResponse(looped)


def test_json_without_the_c_encoder_is_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    # Interpreters without CPython's _json module use the standard library's encoder.
    content = {"a": [1, 2.5, None, True], "é": "ü", "d": datetime.date(2024, 1, 2), 3: "x"}
    fast = JSONResponse(content).body
    monkeypatch.setattr(responses, "_c_encode", None)
    assert JSONResponse(content).body == fast
    with pytest.raises(ValueError):
        JSONResponse(float("inf"))


async def test_a_handler_returning_a_cycle_gets_a_500_and_the_app_serves_on() -> None:
    app = App()
    looped: list[Any] = []
    looped.append(looped)

    @app.get("/loop")
    async def loop() -> list[Any]:
        return looped

    @app.get("/fine")
    async def fine() -> dict[str, int]:
        return {"a": 1}

    async with AsyncTestClient(app, raise_server_exceptions=False) as client:
        assert (await client.get("/loop")).status_code == 500
        assert (await client.get("/fine")).json() == {"a": 1}


async def test_redirect_is_307_by_default_and_keeps_the_method() -> None:
    app = App()

    @app.post("/old")
    async def old() -> RedirectResponse:
        return RedirectResponse("/new")

    @app.post("/new")
    async def new() -> str:
        return "new"

    @app.get("/moved")
    async def moved() -> RedirectResponse:
        return RedirectResponse("/new place?a=b c", status_code=301)

    client = AsyncTestClient(app, follow_redirects=False)
    response = await client.post("/old")
    assert (response.status_code, response.headers["location"]) == (307, "/new")
    assert response.content == b""
    response = await client.get("/moved")
    assert (response.status_code, response.headers["location"]) == (301, "/new%20place?a=b%20c")
    assert (await AsyncTestClient(app).post("/old")).json() == "new"


async def test_streaming_an_async_iterable() -> None:
    async def numbers() -> AsyncIterator[str | bytes]:
        for i in range(3):
            yield f"{i},"
        yield b"end"

    app = serve(StreamingResponse(numbers(), media_type="text/csv"))
    chunks: list[Message] = []

    async def recording_app(scope: Scope, receive: Any, send: Any) -> None:
        async def record(message: Message) -> None:
            chunks.append(message)
            await send(message)

        await app(scope, receive, record)

    response = await AsyncTestClient(recording_app).get("/")
    assert response.text == "0,1,2,end"
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert "content-length" not in response.headers
    bodies = [m for m in chunks if m["type"] == "http.response.body"]
    assert [m["body"] for m in bodies] == [b"0,", b"1,", b"2,", b"end", b""]
    assert [m.get("more_body", False) for m in bodies] == [True, True, True, True, False]


async def test_streaming_a_sync_iterable_reads_it_in_a_worker_thread() -> None:
    loop_thread = threading.get_ident()
    threads: set[int] = set()

    def blocking() -> Iterator[bytes]:
        for chunk in (b"a", b"b", b"c"):
            threads.add(threading.get_ident())
            yield chunk

    response = await AsyncTestClient(serve(StreamingResponse(blocking()))).get("/")
    assert response.content == b"abc"
    assert threads and loop_thread not in threads


async def test_streaming_a_list_works_too() -> None:
    response = await AsyncTestClient(serve(StreamingResponse(["x", "y"], status_code=202))).get("/")
    assert (response.status_code, response.text) == (202, "xy")


def test_a_streaming_response_without_content_is_refused_when_built() -> None:
    # Refused here, not once the response has started and can no longer become a 500.
    with pytest.raises(TypeError, match="needs content"):
        StreamingResponse()
    with pytest.raises(TypeError, match="needs content"):
        StreamingResponse(None, media_type="text/csv")


DATA = b'{"k": "' + b"v" * 200_000 + b'"}'  # several chunks long


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.json"
    path.write_bytes(DATA)
    return path


async def test_file_response_sends_the_file_with_length_date_and_etag(data_file: Path) -> None:
    app = App()

    @app.get("/file")
    async def file() -> FileResponse:
        return FileResponse(data_file)

    response = await AsyncTestClient(app).get("/file")
    info = os.stat(data_file)
    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["content-length"] == str(info.st_size)
    assert response.headers["content-type"] == "application/json"
    modified = parsedate_to_datetime(response.headers["last-modified"])
    assert int(modified.timestamp()) == int(info.st_mtime)
    etag = response.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 2
    again = await AsyncTestClient(app).get("/file")
    assert again.headers["etag"] == etag, "stable for an unchanged file"
    await anyio.Path(data_file).write_bytes(b"{}")
    changed = await AsyncTestClient(app).get("/file")
    assert changed.headers["etag"] != etag
    assert changed.content == b"{}"


async def test_file_response_is_sent_in_chunks(data_file: Path) -> None:
    app = serve(FileResponse(data_file))
    sizes: list[int] = []

    async def recording_app(scope: Scope, receive: Any, send: Any) -> None:
        async def record(message: Message) -> None:
            if message["type"] == "http.response.body":
                sizes.append(len(message["body"]))
            await send(message)

        await app(scope, receive, record)

    response = await AsyncTestClient(recording_app).get("/")
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(DATA).digest()
    assert len(sizes) > 2
    assert sum(sizes) == len(DATA)


async def test_head_on_a_file_has_the_headers_and_no_body(data_file: Path) -> None:
    client = AsyncTestClient(serve(FileResponse(data_file)))
    response = await client.head("/")
    assert (response.status_code, response.content) == (200, b"")
    assert response.headers["content-length"] == str(len(DATA))
    assert "etag" in response.headers and "last-modified" in response.headers


async def test_file_response_with_a_download_name_and_media_type(data_file: Path) -> None:
    response = FileResponse(data_file, filename="report ü.txt", media_type="text/plain")
    got = await AsyncTestClient(serve(response)).get("/")
    assert got.headers["content-disposition"] == "attachment; filename*=utf-8''report%20%C3%BC.txt"
    assert got.headers["content-type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize("which", ["missing", "directory", "under a file", "nul", "too long"])
async def test_a_missing_file_is_a_404(tmp_path: Path, which: str) -> None:
    (tmp_path / "a.txt").write_text("a")
    target = {
        "missing": tmp_path / "nope.txt",
        "directory": tmp_path,
        "under a file": tmp_path / "a.txt" / "x",
        "nul": Path(f"{tmp_path}/a\x00.txt"),
        "too long": tmp_path / ("n" * 300),
    }[which]
    response = await AsyncTestClient(serve(FileResponse(target))).get("/")
    assert response.status_code == 404
    assert response.json() == {"detail": "File not found"}


async def test_set_cookie_and_delete_cookie() -> None:
    app = App()

    @app.get("/login")
    async def login() -> Response:
        response = PlainTextResponse("in")
        response.set_cookie("session", "abc", max_age=60, httponly=True, secure=True)
        response.set_cookie("theme", "dark", path="/app", domain="example.org", samesite="strict")
        return response

    @app.get("/logout")
    async def logout() -> Response:
        response = PlainTextResponse("out")
        response.delete_cookie("session")
        return response

    @app.get("/whoami")
    async def whoami(session: str = "") -> str:
        return session

    client = AsyncTestClient(app)
    response = await client.get("/login")
    session, theme = response.headers.get_list("set-cookie")
    attributes = {part.strip().lower() for part in session.split(";")}
    assert "session=abc" in attributes
    assert {"max-age=60", "httponly", "secure", "path=/", "samesite=lax"} <= attributes
    assert "theme=dark" in theme and "Path=/app" in theme and "Domain=example.org" in theme
    assert "SameSite=strict" in theme
    assert client.cookies["session"] == "abc"

    response = await client.get("/logout")
    (deleted,) = response.headers.get_list("set-cookie")
    assert deleted.startswith("session=")
    assert "max-age=0" in deleted.lower()
    assert "session" not in client.cookies


async def test_cookie_expiry_as_a_date() -> None:
    response = Response()
    response.set_cookie("k", "v", expires=datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC))
    got = await AsyncTestClient(serve(response)).get("/")
    assert "expires=Tue, 01 Jan 2030 00:00:00 GMT" in got.headers["set-cookie"]


async def test_response_headers_can_be_edited_before_sending() -> None:
    response = JSONResponse({"a": 1})
    response.headers["x-edited"] = "yes"
    response.headers.append("x-multi", "1")
    response.headers.append("x-multi", "2")
    del response.headers["content-type"]
    got = await AsyncTestClient(serve(response)).get("/")
    assert got.headers["x-edited"] == "yes"
    assert got.headers.get_list("x-multi") == ["1", "2"]
    assert "content-type" not in got.headers


def make_response(kind: str, background: BackgroundTask | BackgroundTasks, tmp: Path) -> Response:
    if kind == "file":
        (tmp / "f.txt").write_text("file")
        return FileResponse(tmp / "f.txt", background=background)
    if kind == "stream":
        return StreamingResponse(iter([b"s"]), background=background)
    if kind == "redirect":
        return RedirectResponse("/elsewhere", background=background)
    cls = {"plain": PlainTextResponse, "html": HTMLResponse, "json": JSONResponse}[kind]
    return cls("x", background=background)


@pytest.mark.parametrize("kind", ["plain", "html", "json", "stream", "file", "redirect"])
async def test_every_response_class_takes_background(kind: str, tmp_path: Path) -> None:
    log: list[str] = []

    def task(name: str) -> None:
        log.append(name)

    tasks = BackgroundTasks()
    tasks.add_task(task, "second")
    tasks.add_task(task, "third")
    app = App()

    @app.get("/one")
    async def one() -> Response:
        return make_response(kind, BackgroundTask(task, "only"), tmp_path)

    @app.get("/many")
    async def many() -> Response:
        return make_response(kind, tasks, tmp_path)

    client = AsyncTestClient(app, follow_redirects=False)
    await client.get("/one")
    assert log == ["only"]
    await client.get("/many")
    assert log == ["only", "second", "third"]


async def test_a_response_used_by_a_plain_asgi_app_runs_its_background_itself() -> None:
    log: list[str] = []
    response = PlainTextResponse("plain", background=BackgroundTask(log.append, "ran"))

    async def bare(scope: Scope, receive: Any, send: Any) -> None:
        await response(scope, receive, send)

    got = await AsyncTestClient(bare).get("/")
    assert (got.text, log) == ("plain", ["ran"])
