"""HTTP/1.1 behaviour of one connection, driven by scripted bytes in memory."""

from __future__ import annotations

import anyio
import pytest
from memory_stream import MemoryByteStream
from server_support import (
    connected,
    echo_app,
    get,
    message_types,
    read_body,
    respond,
)

from asgi_bg._types import Message, Receive, Scope, Send

pytestmark = pytest.mark.anyio


async def test_simple_get_has_content_length_and_date() -> None:
    async with connected(echo_app) as client:
        await client.send(get("/hello?x=1"))
        reply = await client.response()
    assert reply.status == 200
    assert reply.body == b"/hello|"
    assert reply.headers[b"content-length"] == b"7"
    assert b"date" in reply.headers
    assert reply.headers[b"server"] == b"asgi-bg"


async def test_scope_fields() -> None:
    scopes: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(scope)
        await respond(send)

    async with connected(app, root_path="/api", lifespan_state={"db": 1}) as client:
        await client.send(get("/a%20b?q=1&r=2", "X-Custom: Yes"))
        await client.response()
    scope = scopes[0]
    assert scope["type"] == "http"
    assert scope["asgi"]["version"] == "3.0"
    assert (scope["method"], scope["http_version"], scope["scheme"]) == ("GET", "1.1", "http")
    assert scope["path"] == "/api/a b"
    assert scope["raw_path"] == b"/api/a%20b"
    assert scope["root_path"] == "/api"
    assert scope["query_string"] == b"q=1&r=2"
    assert (b"x-custom", b"Yes") in scope["headers"]
    assert scope["state"] == {"db": 1}


async def test_absolute_form_target_keeps_only_the_path() -> None:
    async with connected(echo_app) as client:
        await client.send(get("http://example.com/p/q?z"))
        assert (await client.response()).body == b"/p/q|"


async def test_keep_alive_serves_several_requests() -> None:
    async with connected(echo_app) as client:
        for path in ("/1", "/2", "/3"):
            await client.send(get(path))
            assert (await client.response()).body == path.encode() + b"|"


async def test_pipelined_requests_are_answered_in_order() -> None:
    async with connected(echo_app) as client:
        await client.send(get("/a") + get("/b") + get("/c"))
        bodies = [(await client.response()).body for _ in range(3)]
    assert bodies == [b"/a|", b"/b|", b"/c|"]


async def test_http_1_0_closes_after_the_response() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part1 ", "more_body": True})
        await send({"type": "http.response.body", "body": b"part2"})

    async with connected(app) as client:
        await client.send(get("/", version="1.0"))
        raw = await client.read_until_closed()
    assert raw.startswith(b"HTTP/1.1 200 ")
    assert b"transfer-encoding" not in raw.lower()  # HTTP/1.0 has no chunked framing
    assert raw.endswith(b"\r\n\r\npart1 part2")


async def test_content_length_body_streams_in_chunks() -> None:
    seen: list[Message] = []
    parts_sent = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(await receive())
        parts_sent.set()
        while seen[-1].get("more_body"):
            seen.append(await receive())
        await respond(send, b"".join(m["body"] for m in seen))

    async with connected(app) as client:
        await client.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhello")
        await parts_sent.wait()
        await client.send(b"world")
        assert (await client.response()).body == b"helloworld"
    assert seen[0] == {"type": "http.request", "body": b"hello", "more_body": True}
    assert seen[-1]["more_body"] is False


async def test_body_sent_with_the_head_arrives_as_one_message() -> None:
    seen: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(await receive())
        await respond(send)

    async with connected(app) as client:
        await client.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc")
        await client.response()
    assert seen == [{"type": "http.request", "body": b"abc", "more_body": False}]


async def test_chunked_request_body() -> None:
    async with connected(echo_app) as client:
        await client.send(
            b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
        )
        await client.send(b"4\r\ndefg\r\n0\r\n\r\n")
        assert (await client.response()).body == b"/c|abcdefg"


async def test_bodyless_request_gives_one_empty_final_message() -> None:
    seen: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(await receive())
        await respond(send)

    async with connected(app) as client:
        await client.send(get())
        await client.response()
    assert seen == [{"type": "http.request", "body": b"", "more_body": False}]


async def test_100_continue_is_sent_when_the_app_asks_for_the_body() -> None:
    app_called = anyio.Event()
    reading = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        app_called.set()
        await reading.wait()
        await respond(send, await read_body(receive))

    async with connected(app) as client:
        await client.send(
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        await app_called.wait()
        await anyio.wait_all_tasks_blocked()
        assert isinstance(client.stream, MemoryByteStream)
        assert client.stream.buffered() == 0  # no 100 Continue before the app asks
        reading.set()
        assert await client.stream.receive() == b"HTTP/1.1 100 Continue\r\n\r\n"
        await client.send(b"data")
        assert (await client.response()).body == b"data"


async def test_100_continue_is_skipped_when_the_app_answers_first() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, b"no thanks", status=417)

    async with connected(app) as client:
        await client.send(
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        reply = await client.response()
        assert reply.status == 417
        # The unread body makes the connection unusable: it is closed.
        assert await client.is_closed()


async def test_head_response_has_headers_but_no_body() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, b"twelve bytes")

    async with connected(app) as client:
        await client.send(get(method="HEAD"))
        reply = await client.response(method=b"HEAD")
        assert reply.headers[b"content-length"] == b"12"
        assert reply.body == b""
        await client.send(get())  # the connection is still in step
        assert (await client.response()).body == b"twelve bytes"


async def test_streamed_response_without_length_is_chunked() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"a", b"b", b""):
            await send({"type": "http.response.body", "body": part, "more_body": bool(part)})

    async with connected(app) as client:
        await client.send(get())
        reply = await client.response()
    assert reply.headers[b"transfer-encoding"] == b"chunked"
    assert reply.body == b"ab"


async def test_single_message_body_without_length_gets_a_content_length() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"abc"})

    async with connected(app) as client:
        await client.send(get())
        reply = await client.response()
    assert reply.headers[b"content-length"] == b"3"
    assert b"transfer-encoding" not in reply.headers


async def test_204_gets_no_content_length() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body"})

    async with connected(app) as client:
        await client.send(get())
        reply = await client.response()
    assert reply.status == 204
    assert b"content-length" not in reply.headers


async def test_disconnect_is_reported_to_the_app() -> None:
    events: list[Message] = []
    done = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        events.append(await receive())
        events.append(await receive())  # blocks until the client goes away
        done.set()

    async with connected(app) as client:
        await client.send(get())
        await anyio.wait_all_tasks_blocked()
        await client.stream.send_eof()
        await done.wait()
    assert message_types(events) == ["http.request", "http.disconnect"]


async def test_disconnect_mid_body_is_reported() -> None:
    events: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        for _ in range(2):
            events.append(await receive())

    async with connected(app) as client:
        await client.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\nabc")
        await anyio.wait_all_tasks_blocked()
        await client.stream.send_eof()
    assert message_types(events) == ["http.request", "http.disconnect"]
    assert events[0]["more_body"] is True


async def test_receive_after_response_reports_disconnect() -> None:
    after: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await read_body(receive)
        await respond(send)
        after.append(await receive())

    async with connected(app) as client:
        await client.send(get())
        await client.response()
    assert message_types(after) == ["http.disconnect"]


async def test_next_request_is_served_while_the_previous_call_still_runs() -> None:
    """Response complete != app returned: the next request does not wait for it."""
    log: list[str] = []
    release = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, scope["path"].encode())
        if scope["path"] == "/slow":
            log.append("slow: response sent, background work starts")
            await release.wait()  # stands for a 2-second background task
            log.append("slow: background work done")

    async with connected(app) as client:
        await client.send(get("/slow"))
        assert (await client.response()).body == b"/slow"
        await client.send(get("/fast"))
        assert (await client.response()).body == b"/fast"
        log.append("fast answered")
        release.set()
    assert log == [
        "slow: response sent, background work starts",
        "fast answered",
        "slow: background work done",
    ]


async def test_concurrency_limit_answers_503() -> None:
    release = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send)
        await release.wait()

    async with connected(app, limit_concurrency=1) as client:
        await client.send(get())
        assert (await client.response()).status == 200
        await client.send(get())
        assert (await client.response()).status == 503
        release.set()


@pytest.mark.parametrize("access_log", [True, False])
async def test_access_log_line(access_log: bool, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="asgi_bg.server.access")
    async with connected(echo_app, access_log=access_log) as client:
        await client.send(get("/logged?x=1"))
        await client.response()
    lines = [r.getMessage() for r in caplog.records if r.name == "asgi_bg.server.access"]
    assert lines == (['- - "GET /logged?x=1 HTTP/1.1" 200 OK'] if access_log else [])


async def test_a_decoded_path_cannot_forge_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="asgi_bg.server.access")
    forged = "/x%0aINFO:%20%20%20%201.2.3.4:1%20-%20%22GET%20/admin%20HTTP/1.1%22%20200"
    async with connected(echo_app) as client:
        await client.send(get(forged))
        await client.response()
    (line,) = [r.getMessage() for r in caplog.records if r.name == "asgi_bg.server.access"]
    assert "\n" not in line
    assert line == f'- - "GET {forged.replace("%0a", "%0A")} HTTP/1.1" 200 OK'
