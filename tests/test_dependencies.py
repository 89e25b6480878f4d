"""FastAPI's dependency features a ported app relies on: overrides, scopes, ``dependencies=``.

Every async test runs on asyncio and on trio.
"""

from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import pytest

from asgi_bg import App, BackgroundTasks, ConfigurationError, Depends, HTTPException, Router
from asgi_bg._types import Message
from asgi_bg.testing import AsyncTestClient

pytestmark = pytest.mark.anyio


def get_db() -> str:
    return "real db"


def get_user(db: Annotated[str, Depends(get_db)]) -> str:
    return f"user from {db}"


def make_app() -> App:
    app = App()

    @app.get("/user")
    async def user(name: Annotated[str, Depends(get_user)]) -> str:
        return name

    return app


async def test_an_override_replaces_a_dependency_at_any_depth_and_can_be_cleared() -> None:
    app = make_app()
    client = AsyncTestClient(app)
    assert (await client.get("/user")).json() == "user from real db"

    app.dependency_overrides[get_db] = lambda: "fake db"
    assert (await client.get("/user")).json() == "user from fake db"

    app.dependency_overrides[get_user] = lambda: "fake user"
    assert (await client.get("/user")).json() == "fake user"

    app.dependency_overrides.clear()
    assert (await client.get("/user")).json() == "user from real db"


async def test_an_override_is_injected_by_its_own_signature() -> None:
    app = make_app()

    async def fake_db(q: str, tasks: BackgroundTasks) -> str:
        tasks.add_task(ran.append, q)
        return f"fake {q}"

    ran: list[str] = []
    app.dependency_overrides[get_db] = fake_db
    client = AsyncTestClient(app)
    assert (await client.get("/user?q=x")).json() == "user from fake x"
    assert ran == ["x"]
    response = await client.get("/user")  # the override's own parameter is required
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "q"]


async def test_an_override_with_a_yield_runs_its_exit_code() -> None:
    app = make_app()
    log: list[str] = []

    def fake_db() -> Iterator[str]:
        log.append("open")
        yield "yielded db"
        log.append("close")

    app.dependency_overrides[get_db] = fake_db
    assert (await AsyncTestClient(app).get("/user")).json() == "user from yielded db"
    assert log == ["open", "close"]


# --- scope="function" / "request" -----------------------------------------------------------


async def test_function_scope_exit_code_runs_before_the_response_request_scope_after() -> None:
    log: list[str] = []

    async def function_scoped() -> AsyncIterator[str]:
        yield "f"
        log.append("function exit")

    async def request_scoped() -> AsyncIterator[str]:
        yield "r"
        log.append("request exit")

    app = App()

    @app.get("/")
    async def endpoint(
        tasks: BackgroundTasks,
        f: Annotated[str, Depends(function_scoped, scope="function")],
        r: Annotated[str, Depends(request_scoped, scope="request")],
    ) -> str:
        tasks.add_task(log.append, "task")
        log.append("handler")
        return f + r

    async def record_start(scope: Any, receive: Any, send: Any) -> None:
        async def logging_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                log.append("response start")
            await send(message)

        await app(scope, receive, logging_send)

    assert (await AsyncTestClient(record_start).get("/")).json() == "fr"
    assert log == ["handler", "function exit", "response start", "task", "request exit"]


class OwnerError(Exception):
    pass


def _owner_app(scope: str | None) -> App:
    """FastAPI's tutorial: the exit code turns the handler's error into a 400."""

    def get_username() -> Iterator[str]:
        try:
            yield "Rick"
        except OwnerError as exc:
            raise HTTPException(400, f"Owner error: {exc}") from exc

    app = App()

    @app.get("/items/{item_id}")
    async def get_item(
        item_id: str, username: Annotated[str, Depends(get_username, scope=scope)]
    ) -> str:
        if item_id != "plumbus":
            raise OwnerError(username)
        return item_id

    return app


async def test_a_function_scoped_exit_code_shapes_the_answer_to_a_handler_error() -> None:
    client = AsyncTestClient(_owner_app("function"), raise_server_exceptions=False)
    assert (await client.get("/items/plumbus")).json() == "plumbus"
    response = await client.get("/items/portal-gun")
    assert response.status_code == 400
    assert response.json() == {"detail": "Owner error: Rick"}


async def test_a_request_scoped_exit_code_shapes_the_answer_to_a_handler_error() -> None:
    client = AsyncTestClient(_owner_app(None), raise_server_exceptions=False)
    response = await client.get("/items/portal-gun")
    assert response.status_code == 400
    assert response.json() == {"detail": "Owner error: Rick"}


def test_an_unknown_scope_is_refused() -> None:
    with pytest.raises(ValueError, match="'function' or 'request'"):
        Depends(get_db, scope="session")  # type: ignore[arg-type]


# --- dependencies=[...] ---------------------------------------------------------------------


async def test_dependencies_on_app_include_router_and_route_run_outermost_first() -> None:
    log: list[str] = []

    def mark(name: str) -> Any:
        def dependency(tasks: BackgroundTasks) -> str:
            log.append(name)
            tasks.add_task(log.append, f"task from {name}")
            return "discarded"

        return Depends(dependency)

    app = App(dependencies=[mark("app")])
    router = Router(prefix="/r", dependencies=[mark("router")])

    @router.get("/x", dependencies=[mark("route")])
    async def endpoint() -> str:
        log.append("handler")
        return "ok"

    app.include_router(router, dependencies=[mark("include")])
    assert (await AsyncTestClient(app).get("/r/x")).json() == "ok"
    assert log == [
        "app",
        "include",
        "router",
        "route",
        "handler",
        "task from app",
        "task from include",
        "task from router",
        "task from route",
    ]


async def test_a_route_dependency_reads_the_request_and_can_refuse_it() -> None:
    def require_key(key: str) -> None:
        if key != "secret":
            raise HTTPException(403, "bad key")

    app = App()

    @app.get("/", dependencies=[Depends(require_key)])
    async def endpoint() -> str:
        return "in"

    client = AsyncTestClient(app)
    assert (await client.get("/?key=secret")).json() == "in"
    assert (await client.get("/?key=nope")).status_code == 403
    missing = await client.get("/")
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["query", "key"]


async def test_a_route_dependency_can_be_overridden() -> None:
    def guard() -> None:
        raise HTTPException(401)

    app = App(dependencies=[Depends(guard)])

    @app.get("/")
    async def endpoint() -> str:
        return "in"

    client = AsyncTestClient(app)
    assert (await client.get("/")).status_code == 401
    app.dependency_overrides[guard] = lambda: None
    assert (await client.get("/")).json() == "in"


def test_dependencies_must_be_depends_markers() -> None:
    app = App()
    with pytest.raises(ConfigurationError, match=r"dependencies=\[\.\.\.\] takes Depends"):
        app.add_route("/", lambda: None, dependencies=[get_db])
