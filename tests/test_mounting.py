"""asgi_bg among other ASGI frameworks: mounted in Starlette and FastAPI, hosting Starlette,
and wrapped in Starlette's middleware. Background tasks run after the response in each."""

from typing import Any

import pytest
from asgi_support import recording
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.background import BackgroundTask as StarletteTask
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request as StarletteRequest
from starlette.responses import PlainTextResponse as StarlettePlainText
from starlette.routing import Mount, Route

from asgi_bg import App, BackgroundTasks, Request, StreamingResponse
from asgi_bg._types import ASGIApp, Receive, Scope, Send
from asgi_bg.testing import AsyncTestClient

pytestmark = pytest.mark.anyio

Log = list[str]


def inner_app(log: Log) -> App:
    """The asgi_bg app that gets mounted: typed routes, a task, a trailing-slash route."""
    app = App()

    @app.get("/items/{item_id:int}")
    async def item(item_id: int, request: Request, tasks: BackgroundTasks) -> dict[str, Any]:
        tasks.add_task(log.append, f"task {item_id}")
        return {
            "item_id": item_id,
            "url": str(request.url),
            "path": request.url.path,
            "link": request.app.url_path_for("item", item_id=item_id + 1),
        }

    @app.get("/plain")
    def plain() -> str:
        return "plain"

    return app


def old_convention(app: ASGIApp, prefix: str) -> ASGIApp:
    """What older frameworks and proxies pass on: ``path`` without the mount prefix."""

    async def stripping(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["path"].startswith(prefix + "/")
        child = dict(scope, path=scope["path"][len(prefix) :], root_path=prefix)
        await app(child, receive, send)

    return stripping


async def check_mounted(outer: ASGIApp, log: Log, prefix: str) -> None:
    client = AsyncTestClient(recording(outer, log))
    response = await client.get(f"{prefix}/items/3")
    assert response.json() == {
        "item_id": 3,
        "url": f"http://testserver{prefix}/items/3",
        "path": f"{prefix}/items/3",
        "link": "/items/4",
    }
    assert log == ["response complete", "task 3"]
    assert (await client.get(f"{prefix}/plain")).json() == "plain"
    missing = await client.get(f"{prefix}/items/x")
    assert (missing.status_code, missing.json()) == (404, {"detail": "Not Found"})
    typed = await client.get(f"{prefix}/nothing")
    assert typed.status_code == 404


async def test_mounted_in_starlette() -> None:
    log: Log = []
    outer = Starlette(routes=[Mount("/sub", app=inner_app(log))])
    await check_mounted(outer, log, "/sub")


async def test_mounted_in_starlette_nested_two_levels() -> None:
    log: Log = []
    outer = Starlette(routes=[Mount("/a", routes=[Mount("/b", app=inner_app(log))])])
    await check_mounted(outer, log, "/a/b")


async def test_mounted_in_fastapi() -> None:
    log: Log = []
    outer = FastAPI()
    outer.mount("/api", inner_app(log))

    @outer.get("/health")
    def health() -> str:
        return "fastapi"

    await check_mounted(outer, log, "/api")
    assert (await AsyncTestClient(outer).get("/health")).json() == "fastapi"


async def test_mounted_under_the_old_root_path_convention() -> None:
    log: Log = []
    await check_mounted(old_convention(inner_app(log), "/legacy"), log, "/legacy")


async def test_served_under_a_root_path_by_a_proxy() -> None:
    log: Log = []
    client = AsyncTestClient(inner_app(log), root_path="/proxy")
    response = await client.get("/items/1")
    assert response.json()["url"] == "http://testserver/proxy/items/1"
    assert log == ["task 1"]


async def test_a_trailing_slash_redirect_keeps_the_mount_prefix() -> None:
    inner = App()

    @inner.get("/folder")
    async def folder() -> str:
        return "folder"

    arrangements: list[tuple[ASGIApp, str]] = [
        (Starlette(routes=[Mount("/sub", app=inner)]), "/sub"),
        (old_convention(inner, "/old"), "/old"),
    ]
    for outer, prefix in arrangements:
        client = AsyncTestClient(outer, follow_redirects=False)
        response = await client.get(f"{prefix}/folder/")
        assert (response.status_code, response.headers["location"]) == (307, f"{prefix}/folder")


async def starlette_hello(request: StarletteRequest) -> StarlettePlainText:
    log: Log = request.app.state.log
    return StarlettePlainText(
        f"starlette at {request.url.path} ({request.scope['root_path']})",
        background=StarletteTask(log.append, "starlette task"),
    )


@pytest.mark.parametrize("root_path", ["", "/outer"])
async def test_a_starlette_app_mounted_inside_asgi_bg(root_path: str) -> None:
    log: Log = []
    starlette = Starlette(routes=[Route("/hello", starlette_hello)])
    starlette.state.log = log
    app = App()
    app.mount("/star", starlette)

    @app.get("/own")
    async def own(tasks: BackgroundTasks) -> str:
        tasks.add_task(log.append, "asgi_bg task")
        return "own"

    client = AsyncTestClient(recording(app, log), root_path=root_path)
    response = await client.get("/star/hello")
    assert response.text == f"starlette at {root_path}/star/hello ({root_path}/star)"
    assert log == ["response complete", "starlette task"]
    log.clear()
    assert (await client.get("/own")).json() == "own"
    assert log == ["response complete", "asgi_bg task"]
    assert (await client.get("/star/missing")).status_code == 404


async def test_gzip_and_cors_middleware_wrap_asgi_bg() -> None:
    log: Log = []
    app = App(middleware=[Middleware(GZipMiddleware, minimum_size=100)])
    app.add_middleware(CORSMiddleware, allow_origins=["https://site.example"], allow_methods=["*"])

    @app.get("/big")
    async def big(tasks: BackgroundTasks) -> dict[str, str]:
        tasks.add_task(log.append, "task after gzip")
        return {"data": "x" * 1000}

    @app.get("/stream")
    async def stream(tasks: BackgroundTasks) -> StreamingResponse:
        tasks.add_task(log.append, "task after stream")
        return StreamingResponse(iter(["y" * 500, "z" * 500]), media_type="text/plain")

    @app.get("/small")
    async def small() -> str:
        return "tiny"

    client = AsyncTestClient(recording(app, log))
    headers = {"accept-encoding": "gzip", "origin": "https://site.example"}
    response = await client.get("/big", headers=headers)
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["access-control-allow-origin"] == "https://site.example"
    # httpx undoes the content-encoding itself: the body arrives decoded.
    assert response.content == b'{"data":"' + b"x" * 1000 + b'"}'
    assert log == ["response complete", "task after gzip"]

    log.clear()
    response = await client.get("/stream", headers=headers)
    assert response.headers["content-encoding"] == "gzip"
    assert response.content == b"y" * 500 + b"z" * 500
    assert log == ["response complete", "task after stream"]

    response = await client.get("/small", headers=headers)
    assert "content-encoding" not in response.headers
    assert response.json() == "tiny"

    preflight = await client.options(
        "/big",
        headers={
            "origin": "https://site.example",
            "access-control-request-method": "GET",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://site.example"
    denied = await client.get("/small", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in denied.headers


async def test_a_mounted_app_is_named_in_url_path_for_and_slash_mounts_at_the_root() -> None:
    inner = App()

    @inner.get("/hello/{who}")
    async def hello(who: str) -> str:
        return f"hello {who}"

    fallback = App()

    @fallback.get("/{anything:path}")
    async def anything(anything: str) -> str:
        return f"fallback {anything}"

    outer = App()
    outer.mount("/sub", inner, name="sub")
    outer.mount("/", fallback)

    assert outer.url_path_for("sub:hello", who="ann") == "/sub/hello/ann"
    client = AsyncTestClient(outer)
    assert (await client.get("/sub/hello/ann")).json() == "hello ann"
    assert (await client.get("/other/page")).json() == "fallback other/page"
