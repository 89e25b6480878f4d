"""One app written against asgi_bg; ``tests/test_fastapi_parity.py`` also runs it with the
import lines changed to FastAPI's, to back the "same" rows of docs/coming-from-fastapi.md.

Each route exercises one row. Nothing here may use a name FastAPI lacks.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path as FilePath
from typing import Annotated, Any

import anyio.from_thread
from typing_extensions import TypeAliasType, TypedDict

from asgi_bg import (
    App,
    BackgroundTasks,
    Body,
    Cookie,
    Depends,
    File,
    Form,
    Header,
    HTTPException,
    Path,
    Query,
    Request,
    Router,
    UploadFile,
    WebSocket,
)
from asgi_bg.exceptions import RequestValidationError
from asgi_bg.requests import HTTPConnection
from asgi_bg.responses import JSONResponse, PlainTextResponse, Response
from asgi_bg.staticfiles import StaticFiles

STATIC = FilePath(__file__).resolve().parent / "parity_static"
calls: list[str] = []


def tag(where: str) -> Callable[[HTTPConnection], None]:
    def tagged(connection: HTTPConnection) -> None:  # also runs for WebSocket routes
        calls.append(f"{where} {connection.url.path}")

    return tagged


app = App(dependencies=[Depends(tag("app"))])


class Teapot(Exception):
    pass


@app.exception_handler(Teapot)
async def teapot(request: Request, exc: Teapot) -> JSONResponse:
    return JSONResponse({"teapot": str(exc)}, status_code=418)


@app.exception_handler(404)
async def not_found(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"missing": request.url.path}, status_code=404)


@app.middleware("http")
async def stamp(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    response = await call_next(request)
    response.headers["x-stamp"] = request.method
    return response


# Decorators and their arguments.
@app.put("/verbs", status_code=202)
async def put_verb() -> dict[str, str]:
    return {"verb": "put"}


@app.patch("/verbs", response_class=PlainTextResponse)
async def patch_verb() -> str:
    return "patched"


@app.delete("/verbs", status_code=204)
async def delete_verb() -> None:
    return None


@app.options("/verbs")
async def options_verb() -> dict[str, str]:
    return {"verb": "options"}


@app.get("/named/{slug}", name="named")
async def named(slug: str, request: Request) -> dict[str, str]:
    return {"url": str(request.app.url_path_for("named", slug="x"))}


# Routers.
items = Router(prefix="/items", dependencies=[Depends(tag("router"))])


@items.get("/{item_id}")
async def item(item_id: int) -> dict[str, int]:
    return {"item_id": item_id}


@items.websocket("/ws", dependencies=[Depends(tag("route"))])
async def item_feed(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("ok")
    await websocket.close()


app.include_router(items, prefix="/v1", dependencies=[Depends(tag("include"))])


# Depends: caching, default-value spelling, use_cache=False.
counter: list[int] = []


def count() -> int:
    counter.append(1)
    return len(counter)


def uses_count(n: Annotated[int, Depends(count)]) -> int:
    return n


@app.get("/cached", dependencies=[Depends(tag("route"))])
async def cached(
    a: Annotated[int, Depends(count)],
    b: Annotated[int, Depends(uses_count)],
    c: int = Depends(count, use_cache=False),
) -> dict[str, bool]:
    return {"shared": a == b, "fresh": c != a}


# Kinds read through callable instances, partials and wrappers.
class Prefixer:
    def __call__(self, q: str = "x") -> Iterator[str]:
        yield "instance:" + q


async def agen_with(word: str) -> AsyncIterator[str]:
    yield "partial:" + word


def logged(func: Callable[..., Awaitable[str]]) -> Callable[..., Awaitable[str]]:
    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> str:
        return "wrapped:" + await func(*args, **kwargs)

    return wrapper


@logged
async def plain(q: str = "x") -> str:
    return q


@app.get("/kinds")
async def kinds(
    a: Annotated[str, Depends(Prefixer())],
    b: Annotated[str, Depends(functools.partial(agen_with, "w"))],
    c: Annotated[str, Depends(plain)],
) -> list[str]:
    return [a, b, c]


# A type alias of an Annotated dependency (the `type X = ...` statement's object).
def current_user(user: Annotated[str, Header()] = "anonymous") -> str:
    return user


UserDep = TypeAliasType("UserDep", Annotated[str, Depends(current_user)])


@app.get("/alias")
async def alias(user: UserDep) -> dict[str, str]:
    return {"user": user}


# Overrides, at depth.
def real_db() -> str:
    return "real"


def repo(db: Annotated[str, Depends(real_db)]) -> str:
    return "repo over " + db


@app.get("/repo")
def read_repo(r: Annotated[str, Depends(repo)]) -> dict[str, str]:
    return {"repo": r}


# yield dependencies: scope="function", and the handler's error thrown in.
class OwnerError(Exception):
    pass


def owner() -> Iterator[str]:
    try:
        yield "rick"
    except OwnerError as exc:
        raise HTTPException(400, f"owner error: {exc}") from exc


def checked_on_exit() -> Iterator[str]:
    yield "v"
    raise HTTPException(409, "refused on exit")


@app.get("/owner/{n}")
async def by_owner(n: int, who: Annotated[str, Depends(owner)]) -> dict[str, str]:
    if n == 13:
        raise OwnerError(who)
    return {"owner": who}


@app.get("/function-scope")
async def function_scope(
    v: Annotated[str, Depends(checked_on_exit, scope="function")],
) -> dict[str, str]:
    return {"v": v}


# Parameters with checks, from every source.
@app.post("/checks/{pid}")
async def checks(
    pid: Annotated[int, Path(ge=1)],
    q: Annotated[str, Query(min_length=2, max_length=5, pattern="^[a-z]+$")],
    n: Annotated[float, Query(gt=0, lt=10, multiple_of=0.5)],
    user_agent: Annotated[str, Header()],
    x_token: Annotated[str, Header(alias="x-token")],
    session: Annotated[str, Cookie(max_length=8)],
    note: Annotated[str, Body(embed=True, max_length=10)],
    alias_q: Annotated[int, Query(alias="item-count", le=3)] = 1,
) -> dict[str, Any]:
    return {"pid": pid, "q": q, "n": n, "ua": user_agent, "token": x_token}


# Types of parameters and bodies.
class Point(TypedDict):
    x: int
    y: int


@dataclass
class Inner:
    price: Decimal


@dataclass
class Outer:
    name: str
    inner: Inner
    tags: list[str]


@app.get("/types")
async def types(
    d: Decimal,
    when: datetime.datetime,
    day: datetime.date,
    at: datetime.time,
    span: datetime.timedelta,
    raw: bytes,
    s: Annotated[set[int], Query()],
    f: Annotated[frozenset[str], Query()],
    t: Annotated[tuple[int, ...], Query()],
) -> dict[str, Any]:
    return {
        "d": str(d),
        "when": when.isoformat(),
        "day": day.isoformat(),
        "at": at.isoformat(),
        "span": span.total_seconds(),
        "raw": raw.decode(),
        "s": sorted(s),
        "f": sorted(f),
        "t": list(t),
    }


@app.post("/point")
async def point(p: Point) -> dict[str, int]:
    return {"sum": p["x"] + p["y"]}


@app.post("/outer")
async def outer(o: Outer) -> dict[str, Any]:
    return {"name": o.name, "price": str(o.inner.price), "tags": o.tags}


@dataclass
class Flags:
    count: int
    on: bool


@app.post("/lax")
async def lax(flags: Flags) -> dict[str, Any]:
    return {"count": flags.count, "on": flags.on}


# Handlers and background tasks.
ran: list[str] = []


def record(*parts: str, sep: str = " ") -> None:
    ran.append(sep.join(parts))


@app.post("/tasks")
async def tasks(background: BackgroundTasks) -> dict[str, bool]:
    background.add_task(record, "a", "b", sep="-")
    return {"queued": True}


def session() -> Iterator[str]:
    ran.append("open")
    yield "session"
    ran.append("close")


@app.post("/teardown-order")
async def teardown_order(background: BackgroundTasks, s: Annotated[str, Depends(session)]) -> None:
    background.add_task(record, "task uses", s)


@app.get("/decimal", response_model=None)
async def decimal() -> Any:
    return {"price": Decimal("1.50")}


@app.get("/decimal-annotated")
async def decimal_annotated() -> dict[str, Decimal]:
    return {"price": Decimal("1.50")}


@app.get("/unfiltered", response_model=Flags)
async def unfiltered() -> Any:
    return {"count": 1, "on": True, "extra": "kept by asgi_bg"}


def read_later(upload: UploadFile) -> None:
    ran.append(upload.file.read().decode())


@app.post("/upload-task")
async def upload_task(doc: UploadFile, background: BackgroundTasks) -> None:
    background.add_task(read_later, doc)


@app.get("/in-thread")
def in_thread() -> dict[str, int]:
    # Works only in a worker thread started by anyio, as FastAPI's thread pool is.
    return {"from_loop": anyio.from_thread.run_sync(lambda: 7)}


@app.get("/http-error")
async def http_error() -> None:
    raise HTTPException(status_code=403, detail={"why": "no"}, headers={"x-why": "no"})


@app.get("/teapot")
async def raise_teapot() -> None:
    raise Teapot("short and stout")


# The request object.
@app.post("/request")
async def request_info(request: Request) -> dict[str, Any]:
    request.state.seen = True
    body = await request.body()
    chunks = [chunk async for chunk in request.stream()]
    return {
        "url": str(request.url),
        "path": request.url.path,
        "query": request.url.query,
        "header": request.headers["x-one"],
        "many": request.query_params.getlist("m"),
        "cookies": dict(request.cookies),
        "body": body.decode(),
        "json": await request.json(),
        "streamed": b"".join(chunks).decode(),
        "method": request.method,
        "state": request.state.seen,
    }


@app.post("/form")
async def form(request: Request) -> dict[str, Any]:
    got = await request.form()
    upload = got["doc"]
    assert not isinstance(upload, str)
    size = len(await upload.read())
    await upload.close()  # Starlette leaves a form read this way open
    return {"name": got["name"], "file": upload.filename, "size": size}


@app.post("/form-params")
async def form_params(
    name: Annotated[str, Form(max_length=5)],
    doc: Annotated[UploadFile, File()],
    more: list[UploadFile],
) -> dict[str, Any]:
    body = await doc.read()
    return {
        "name": name,
        "doc": [doc.filename, doc.content_type, body.decode()],
        "more": [m.filename for m in more],
    }


# WebSockets, with the same injection.
@app.websocket("/ws/{room}")
async def chat(websocket: WebSocket, room: str, who: Annotated[str, Depends(current_user)]) -> None:
    await websocket.accept()
    async for text in websocket.iter_text():
        await websocket.send_json({"room": room, "who": who, "text": text})


# Static routes and HEAD (both differ: see test_known_differences_in_routing).
@app.get("/users/{user_id}")
async def user(user_id: str) -> dict[str, str]:
    return {"id": user_id}


@app.get("/users/me")
async def me() -> dict[str, str]:
    return {"user": "me"}


# Trailing slashes and 405.
@app.get("/slash/")
async def slash() -> dict[str, bool]:
    return {"slash": True}


@app.post("/only-post")
async def only_post() -> dict[str, bool]:
    return {"posted": True}


app.mount("/static", StaticFiles(directory=STATIC), name="static")


# A second app: its own RequestValidationError handler would hide the 422s above.
handled = App()


@handled.exception_handler(RequestValidationError)
async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    locs = [list(e["loc"]) for e in exc.errors()]
    return JSONResponse({"locs": locs}, status_code=400)


@handled.get("/number")
async def number(n: int) -> dict[str, int]:
    return {"n": n}
