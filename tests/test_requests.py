"""The Request object as handlers see it: every documented attribute and body reader."""

from typing import Any

import anyio
import pytest

from asgi_bg import App, Body, HTTPException, Request
from asgi_bg._types import ASGIApp, Message, Receive, Scope, Send
from asgi_bg.requests import ClientDisconnect
from asgi_bg.testing import AsyncTestClient

pytestmark = pytest.mark.anyio


async def test_method_url_and_query() -> None:
    app = App()

    @app.route("/search/{kind}", methods=["GET", "POST"])
    async def search(request: Request) -> dict[str, Any]:
        url = request.url
        return {
            "method": request.method,
            "path": url.path,
            "query": url.query,
            "url": str(url),
            "scheme": url.scheme,
            "netloc": url.netloc,
        }

    client = AsyncTestClient(app, base_url="https://example.org:8443")
    response = await client.post("/search/books?q=a+b&page=2")
    assert response.json() == {
        "method": "POST",
        "path": "/search/books",
        "query": "q=a+b&page=2",
        "url": "https://example.org:8443/search/books?q=a+b&page=2",
        "scheme": "https",
        "netloc": "example.org:8443",
    }
    response = await client.get("/search/x")
    assert response.json()["url"] == "https://example.org:8443/search/x"


async def test_headers_are_case_insensitive_and_multi_valued() -> None:
    app = App()

    @app.get("/")
    async def handler(request: Request) -> dict[str, Any]:
        headers = request.headers
        return {
            "lower": headers["x-custom"],
            "upper": headers["X-CUSTOM"],
            "in": "X-Custom" in headers,
            "missing": headers.get("x-missing"),
            "all": headers.getlist("X-Multi"),
            "same_object": request.headers is headers,
        }

    async def send_twice(scope: Scope, receive: Receive, send: Send) -> None:
        # Repeated header lines, as a server passes them on.
        scope["headers"] += [(b"x-multi", b"one"), (b"x-multi", b"two")]
        await app(scope, receive, send)

    response = await AsyncTestClient(send_twice).get("/", headers={"X-Custom": "v"})
    assert response.json() == {
        "lower": "v",
        "upper": "v",
        "in": True,
        "missing": None,
        "all": ["one", "two"],
        "same_object": True,
    }


async def test_query_params_are_multi_valued_and_decoded() -> None:
    app = App()

    @app.get("/")
    async def handler(request: Request) -> dict[str, Any]:
        params = request.query_params
        return {
            "last": params["tag"],
            "all": params.getlist("tag"),
            "decoded": params.get("text"),
            "blank": params.get("blank"),
            "keys": sorted(params),
            "none": params.getlist("absent"),
        }

    response = await AsyncTestClient(app).get("/?tag=a&tag=b&text=caf%C3%A9+au+lait&blank=")
    assert response.json() == {
        "last": "b",
        "all": ["a", "b"],
        "decoded": "café au lait",
        "blank": "",
        "keys": ["blank", "tag", "text"],
        "none": [],
    }


async def test_path_params_cookies_and_client() -> None:
    app = App()

    @app.get("/users/{user_id:int}")
    async def handler(request: Request) -> dict[str, Any]:
        client = request.client
        assert client is not None
        return {
            "path_params": request.path_params,
            "cookies": request.cookies,
            "client": [client.host, client.port],
        }

    response = await AsyncTestClient(app).get(
        "/users/42", headers={"cookie": 'a=1; b="quoted value"; empty='}
    )
    assert response.json() == {
        "path_params": {"user_id": 42},
        "cookies": {"a": "1", "b": "quoted value", "empty": ""},
        "client": ["testclient", 50000],
    }


async def test_request_state_is_shared_with_middleware_and_app_is_the_app() -> None:
    class Tagging:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            Request(scope, receive).state.tag = "from middleware"
            await self.app(scope, receive, send)

    app = App(middleware=[(Tagging, {})])

    @app.get("/")
    async def handler(request: Request) -> dict[str, Any]:
        return {"tag": request.state.tag, "is_app": request.app is app}

    assert (await AsyncTestClient(app).get("/")).json() == {
        "tag": "from middleware",
        "is_app": True,
    }


async def test_body_and_json_are_read_once_and_cached() -> None:
    app = App()

    @app.post("/")
    async def handler(request: Request) -> dict[str, Any]:
        first = await request.body()
        again = await request.body()
        data = await request.json()
        return {"same": first is again, "data": data, "chunks": [c async for c in request.stream()]}

    response = await AsyncTestClient(app).post("/", json={"a": [1, 2]})
    assert response.json() == {"same": True, "data": {"a": [1, 2]}, "chunks": ['{"a":[1,2]}']}


async def test_the_body_read_by_the_injector_is_still_available_to_the_handler() -> None:
    app = App()

    @app.post("/")
    async def handler(amount: int = Body(embed=True), *, request: Request) -> dict[str, Any]:
        return {"amount": amount, "raw": (await request.body()).decode()}

    response = await AsyncTestClient(app).post("/", json={"amount": 3})
    assert response.json() == {"amount": 3, "raw": '{"amount":3}'}


async def test_malformed_json_from_request_json_is_a_422_at_body() -> None:
    app = App()

    @app.post("/")
    async def handler(request: Request) -> Any:
        return await request.json()

    response = await AsyncTestClient(app).post("/", content=b"{oops")
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert [(e["loc"], e["type"]) for e in detail] == [(["body"], "json_invalid")]


def chunked_receive(chunks: list[bytes], then: Message | None = None) -> Receive:
    """A ``receive`` delivering the body in ``chunks``, then ``then`` (or waiting forever)."""
    messages: list[Message] = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    if then is not None:
        messages.append(then)

    async def receive() -> Message:
        assert messages, "the app read past the end of the request"
        return messages.pop(0)

    return receive


def scope_for(method: str = "POST", path: str = "/") -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": [],
    }


async def test_stream_yields_the_chunks_as_they_arrive() -> None:
    request = Request(scope_for(), chunked_receive([b"ab", b"", b"cd", b"e"]))
    assert [chunk async for chunk in request.stream()] == [b"ab", b"cd", b"e"]
    with pytest.raises(RuntimeError, match="already streamed"):
        await request.body()


async def test_a_disconnect_while_streaming_raises_client_disconnect() -> None:
    # One chunk announced with more to come, then the client leaves.
    receive = chunked_receive([b"a", b"never sent"])
    messages: list[Message] = [await receive(), {"type": "http.disconnect"}]

    async def leaving() -> Message:
        return messages.pop(0)

    request = Request(scope_for(), leaving)
    got: list[bytes] = []
    with pytest.raises(ClientDisconnect):
        async for chunk in request.stream():
            got.append(chunk)
    assert got == [b"a"]


async def test_is_disconnected_does_not_lose_the_body() -> None:
    app = App()

    @app.post("/")
    async def handler(request: Request) -> dict[str, Any]:
        gone = await request.is_disconnected()
        return {"gone": gone, "body": (await request.body()).decode()}

    with anyio.fail_after(5):  # a lost body message would leave body() waiting forever
        response = await AsyncTestClient(app).post("/", content=b"payload")
    assert response.json() == {"gone": False, "body": "payload"}


async def test_is_disconnected_sees_a_client_that_left() -> None:
    request = Request(scope_for(), chunked_receive([b"x"], {"type": "http.disconnect"}))
    assert await request.body() == b"x"
    assert await request.is_disconnected() is True
    assert await request.is_disconnected() is True


async def test_is_disconnected_is_false_while_the_client_waits() -> None:
    app = App()

    @app.get("/")
    async def handler(request: Request) -> bool:
        await request.body()
        return await request.is_disconnected()

    assert (await AsyncTestClient(app).get("/")).json() is False


async def test_a_get_request_without_a_receive_has_an_empty_body() -> None:
    request = Request(scope_for("GET"))
    assert await request.body() == b""
    with pytest.raises(HTTPException) as info:
        await request.json()
    assert info.value.status_code == 422
