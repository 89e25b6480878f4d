"""The router: static and dynamic paths, methods, 404/405/HEAD, routers, mounts, url_path_for."""

import uuid
from typing import Any

import pytest

from asgi_bg import App, ConfigurationError, Request, Router, StreamingResponse
from asgi_bg._types import Message, Receive, Scope, Send
from asgi_bg.routing import NoMatchFound
from asgi_bg.testing import AsyncTestClient

pytestmark = pytest.mark.anyio


async def test_unknown_path_is_a_json_404() -> None:
    app = App()

    @app.get("/known")
    async def known() -> str:
        return "ok"

    response = await AsyncTestClient(app).get("/unknown")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


async def test_wrong_method_is_a_405_with_allow() -> None:
    app = App()

    @app.get("/items/{item_id}")
    async def read(item_id: str) -> str:
        return item_id

    @app.put("/items/{item_id}")
    async def write(item_id: str) -> str:
        return item_id

    @app.post("/static")
    async def static() -> str:
        return "posted"

    client = AsyncTestClient(app)
    response = await client.delete("/items/1")
    assert response.status_code == 405
    assert response.json() == {"detail": "Method Not Allowed"}
    assert response.headers["allow"] == "GET, HEAD, PUT"
    response = await client.get("/static")
    assert (response.status_code, response.headers["allow"]) == (405, "POST")


async def test_every_method_decorator_and_route_and_add_route() -> None:
    app = App()

    async def echo(request: Request) -> str:
        return request.method

    for method in ("get", "post", "put", "patch", "delete", "options", "head"):
        getattr(app, method)(f"/{method}")(echo)
    app.route("/multi", methods=["GET", "post"])(echo)
    app.add_route("/added", echo, methods=["PATCH"])

    client = AsyncTestClient(app)
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        response = await client.request(method, f"/{method.lower()}")
        assert response.json() == method
    assert (await client.head("/head")).status_code == 200
    assert (await client.get("/multi")).json() == "GET"
    assert (await client.post("/multi")).json() == "POST"
    assert (await client.patch("/added")).json() == "PATCH"
    assert (await client.get("/added")).status_code == 405


async def test_head_on_a_get_route_has_the_headers_and_no_body() -> None:
    app = App()

    @app.get("/json")
    async def as_json() -> dict[str, str]:
        return {"hello": "world"}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        return StreamingResponse(iter([b"a", b"b"]), headers={"x-kind": "stream"})

    client = AsyncTestClient(app)
    get, head = await client.get("/json"), await client.head("/json")
    assert get.content == b'{"hello":"world"}'
    assert head.status_code == 200
    assert head.content == b""
    assert dict(head.headers) == dict(get.headers)
    assert head.headers["content-length"] == str(len(get.content))
    head = await client.head("/stream")
    assert (head.status_code, head.content, head.headers["x-kind"]) == (200, b"", "stream")


async def test_an_explicit_head_route_wins_over_the_implicit_one() -> None:
    app = App()

    @app.get("/")
    async def read() -> str:
        return "get"

    @app.head("/")
    async def head(request: Request) -> None:
        request.app.state.head_called = True

    client = AsyncTestClient(app)
    assert (await client.head("/")).status_code == 200
    assert app.state.head_called is True


async def test_a_static_route_beats_a_dynamic_one_registered_first() -> None:
    app = App()

    @app.get("/users/{name}")
    async def by_name(name: str) -> str:
        return f"user {name}"

    @app.get("/users/me")
    async def me() -> str:
        return "me"

    client = AsyncTestClient(app)
    assert (await client.get("/users/me")).json() == "me"
    assert (await client.get("/users/bob")).json() == "user bob"


async def test_dynamic_routes_are_tried_in_registration_order() -> None:
    app = App()

    @app.get("/things/{n:int}")
    async def number(n: int) -> str:
        return "int"

    @app.get("/things/{u:uuid}")
    async def ident(u: uuid.UUID) -> str:
        return "uuid"

    @app.get("/things/{s}")
    async def text(s: str) -> str:
        return "str"

    client = AsyncTestClient(app)
    assert (await client.get("/things/12")).json() == "int"
    assert (await client.get(f"/things/{uuid.uuid4()}")).json() == "uuid"
    assert (await client.get("/things/twelve")).json() == "str"
    assert (await client.get("/things/a/b")).status_code == 404


async def test_path_params_are_available_on_the_request() -> None:
    app = App()

    @app.get("/a/{x:int}/b/{rest:path}")
    async def handler(request: Request) -> dict[str, Any]:
        return request.path_params

    response = await AsyncTestClient(app).get("/a/3/b/c/d")
    assert response.json() == {"x": 3, "rest": "c/d"}


async def test_include_router_with_prefixes_nested() -> None:
    items = Router(prefix="/items")

    @items.get("")
    async def list_items() -> list[str]:
        return ["a"]

    @items.get("/{item_id:int}", name="item")
    async def get_item(item_id: int) -> int:
        return item_id

    @items.post("/", status_code=201)
    async def create() -> str:
        return "created"

    api = Router(prefix="/api")
    api.include_router(items, prefix="/v1")
    app = App()
    app.include_router(api)
    app.include_router(items, prefix="/legacy")

    client = AsyncTestClient(app)
    assert (await client.get("/api/v1/items")).json() == ["a"]
    assert (await client.get("/api/v1/items/5")).json() == 5
    response = await client.post("/api/v1/items/")
    assert (response.status_code, response.json()) == (201, "created")
    assert (await client.get("/legacy/items/6")).json() == 6
    assert (await client.get("/items/5")).status_code == 404


def test_router_and_include_prefixes_are_checked() -> None:
    with pytest.raises(ConfigurationError):
        Router(prefix="items")
    with pytest.raises(ConfigurationError):
        Router(prefix="/items/")
    with pytest.raises(ConfigurationError):
        App().include_router(Router(), prefix="v1")


def test_url_path_for_builds_paths_from_names_and_params() -> None:
    app = App()
    router = Router(prefix="/shop")

    @router.get("/items/{item_id:int}/{rest:path}", name="item")
    async def item(item_id: int, rest: str) -> None: ...

    @app.get("/users/{user_id}")
    async def user_detail(user_id: str) -> None: ...

    @app.get("/about")
    async def about() -> None: ...

    app.include_router(router, prefix="/v2")

    assert app.url_path_for("user_detail", user_id="bob") == "/users/bob"
    assert app.url_path_for("about") == "/about"
    assert app.url_path_for("item", item_id=3, rest="a/b") == "/v2/shop/items/3/a/b"
    with pytest.raises(NoMatchFound):
        app.url_path_for("user_detail")
    with pytest.raises(NoMatchFound):
        app.url_path_for("nope")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/items/{id:nope}", "unknown converter 'nope'"),
        ("/items/{id}/{id}", "appears twice"),
        ("items", "must start with '/'"),
        ("/items/{id", "malformed"),
    ],
)
def test_a_bad_path_fails_at_registration(path: str, message: str) -> None:
    app = App()
    with pytest.raises(ConfigurationError, match=message):
        app.add_route(path, lambda: None)


def test_unknown_methods_fail_at_registration() -> None:
    with pytest.raises(ConfigurationError, match="FETCH"):
        App().add_route("/", lambda: None, methods=["FETCH"])


@pytest.mark.parametrize("path", ["/static", "/dynamic/{x}"])
def test_a_duplicate_route_fails_at_registration(path: str) -> None:
    app = App()
    app.add_route(path, lambda: None, methods=["GET", "POST"])
    with pytest.raises(ConfigurationError, match="registered twice"):
        app.add_route(path, lambda: None, methods=["POST"])
    app.add_route(path, lambda: None, methods=["PUT"])  # another method is fine


async def test_trailing_slash_redirects_to_the_known_path_keeping_the_query() -> None:
    app = App()

    @app.get("/items")
    async def items(q: str = "") -> str:
        return f"items {q}"

    @app.get("/folder/")
    async def folder() -> str:
        return "folder"

    client = AsyncTestClient(app, follow_redirects=False)
    response = await client.get("/items/?q=1")
    assert (response.status_code, response.headers["location"]) == (307, "/items?q=1")
    response = await client.get("/folder")
    assert (response.status_code, response.headers["location"]) == (307, "/folder/")
    # Every method is redirected: 307 keeps the method and the body.
    assert (await client.post("/items/")).headers["location"] == "/items"
    assert (await AsyncTestClient(app).get("/items/?q=2")).json() == "items 2"


async def test_a_post_to_a_router_root_without_its_slash_arrives_with_its_body() -> None:
    app = App()
    items = Router(prefix="/items")

    @items.post("/", status_code=201)
    async def create(item: dict[str, int]) -> dict[str, int]:
        return item

    app.include_router(items)
    response = await AsyncTestClient(app).post("/items", json={"a": 1})

    assert (response.status_code, response.json()) == (201, {"a": 1})


async def test_one_path_served_by_two_routes_answers_each_method() -> None:
    app = App()

    @app.get("/items/{item_id:int}")
    async def read(item_id: int) -> str:
        return f"read {item_id}"

    @app.post("/items/{name}")
    async def create(name: str) -> str:
        return f"create {name}"

    @app.get("/users/me")
    async def me() -> str:
        return "me"

    @app.delete("/users/{uid}")
    async def remove(uid: str) -> str:
        return f"removed {uid}"

    client = AsyncTestClient(app)
    assert (await client.post("/items/3")).json() == "create 3"
    assert (await client.get("/items/3")).json() == "read 3"
    assert (await client.delete("/users/me")).json() == "removed me"
    refused = await client.put("/items/3")
    assert (refused.status_code, refused.headers["allow"]) == (405, "GET, HEAD, POST")


async def test_out_of_range_path_numbers_do_not_match_instead_of_failing() -> None:
    app = App()

    @app.get("/items/{item_id:int}")
    async def item(item_id: int) -> int:
        return item_id

    @app.get("/ratio/{x:float}")
    async def ratio(x: float) -> float:
        return x

    client = AsyncTestClient(app)
    assert (await client.get("/items/" + "9" * 5000)).status_code == 404
    assert (await client.get("/ratio/" + "9" * 400)).status_code == 404
    assert (await client.get("/ratio/2.5")).json() == 2.5


async def test_redirect_slashes_can_be_turned_off() -> None:
    app = App()

    @app.get("/items")
    async def items() -> str:
        return "items"

    app.router.redirect_slashes = False
    assert (await AsyncTestClient(app).get("/items/")).status_code == 404


async def raw_asgi(scope: Scope, receive: Receive, send: Send) -> None:
    """A bare ASGI app echoing the path it sees."""
    body = f"{scope['root_path']}|{scope['path']}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def test_any_asgi_app_can_be_mounted() -> None:
    app = App()
    app.mount("/raw", raw_asgi)

    @app.get("/raw-ish")
    async def not_the_mount() -> str:
        return "route"

    client = AsyncTestClient(app)
    assert (await client.get("/raw/x/y")).text == "/raw|/raw/x/y"
    assert (await client.get("/raw")).text == "/raw|/raw"
    assert (await client.get("/raw-ish")).json() == "route"
    assert (await client.get("/rawx")).status_code == 404


def test_a_router_cannot_be_mounted() -> None:
    with pytest.raises(ConfigurationError, match="include_router"):
        App().mount("/r", Router())


async def call_raw(app: App, path: str, root_path: str) -> tuple[int, bytes]:
    """Call ``app`` with a hand-made scope, as a server or an outer framework would."""
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": root_path,
        "query_string": b"",
        "headers": [(b"host", b"example.org")],
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body


@pytest.mark.parametrize("with_prefix", [True, False])
async def test_root_path_is_honoured_in_both_conventions(with_prefix: bool) -> None:
    app = App()

    @app.get("/subway")
    async def subway() -> str:
        return "subway"

    @app.get("/items")
    async def items(request: Request) -> str:
        return str(request.url)

    prefix = "/sub" if with_prefix else ""
    assert await call_raw(app, f"{prefix}/items", "/sub") == (
        200,
        b'"http://example.org/sub/items"',
    )
    # "/subway" merely starts with the characters of "/sub": it is not below it.
    assert await call_raw(app, f"{prefix}/subway", "/sub") == (200, b'"subway"')


@pytest.mark.anyio
async def test_a_parameter_in_the_first_segment_keeps_registration_order() -> None:
    app = App()

    @app.get("/{kind}/latest")
    async def any_kind(kind: str) -> str:
        return f"any {kind}"

    @app.get("/items/{item_id}")
    async def item(item_id: str) -> str:
        return f"item {item_id}"

    @app.get("/users/{name}")
    async def user(name: str) -> str:
        return f"user {name}"

    client = AsyncTestClient(app)
    assert (await client.get("/items/latest")).json() == "any items"  # registered first, so it wins
    assert (await client.get("/items/7")).json() == "item 7"
    assert (await client.get("/users/ann")).json() == "user ann"
    assert (await client.get("/other/latest")).json() == "any other"
    assert (await client.get("/other/7")).status_code == 404
