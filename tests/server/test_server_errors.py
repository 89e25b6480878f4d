"""Bad input and misbehaving apps: clear answers and logs, never a crashed server."""

from __future__ import annotations

import anyio
import pytest
from server_support import connected, echo_app, get, read_body, respond

from asgi_bg._types import Message, Receive, Scope, Send

pytestmark = pytest.mark.anyio


async def test_malformed_request_gets_400_and_close() -> None:
    async with connected(echo_app) as client:
        await client.send(b"GARBAGE\r\n\r\n")
        raw = await client.read_until_closed()
    assert raw.startswith(b"HTTP/1.1 400 ")
    assert b"connection: close" in raw


async def test_oversized_request_line_gets_431() -> None:
    async with connected(echo_app, max_header_size=1024) as client:
        await client.send(b"GET /" + b"a" * 2000)
        raw = await client.read_until_closed()
    assert raw.startswith(b"HTTP/1.1 431 ")


async def test_oversized_headers_get_431() -> None:
    async with connected(echo_app, max_header_size=1024) as client:
        await client.send(b"GET / HTTP/1.1\r\nHost: t\r\n" + b"X-Big: " + b"b" * 2000 + b"\r\n")
        raw = await client.read_until_closed()
    assert raw.startswith(b"HTTP/1.1 431 ")


async def test_an_oversized_head_sent_whole_in_one_write_gets_431() -> None:
    head = b"GET / HTTP/1.1\r\nHost: t\r\n" + b"X-Big: " + b"b" * 60_000 + b"\r\n\r\n"
    async with connected(echo_app, max_header_size=1024) as client:
        await client.send(head)
        raw = await client.read_until_closed()
    assert raw.startswith(b"HTTP/1.1 431 ")


async def test_declared_oversized_body_gets_413_without_calling_the_app() -> None:
    called: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        called.append(scope)

    async with connected(app, max_body=10) as client:
        await client.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n")
        raw = await client.read_until_closed()
    assert raw.startswith(b"HTTP/1.1 413 ")
    assert called == []


async def test_chunked_body_growing_too_large_gets_413() -> None:
    seen: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(await receive())
        seen.append(await receive())
        await respond(send)  # dropped: the server answered in its place

    async with connected(app, max_body=5) as client:
        await client.send(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        await client.send(b"3\r\nabc\r\n")
        await client.send(b"3\r\ndef\r\n")
        raw = await client.read_until_closed()
    assert raw.startswith(b"HTTP/1.1 413 ")
    assert raw.count(b"HTTP/1.1") == 1
    assert [m["type"] for m in seen] == ["http.request", "http.disconnect"]


async def test_bad_chunk_framing_gets_400() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await read_body(receive)

    async with connected(app) as client:
        await client.send(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        await client.send(b"zz\r\nabc\r\n")
        raw = await client.read_until_closed()
    assert raw.startswith(b"HTTP/1.1 400 ")


async def test_slow_request_head_is_closed() -> None:
    async with connected(echo_app, header_timeout=0.05) as client:
        await client.send(b"GET / HTTP/1.1\r\n")  # and never the rest
        assert await client.is_closed()


async def test_idle_keep_alive_connection_is_closed() -> None:
    async with connected(echo_app, keep_alive=0.05) as client:
        await client.send(get())
        assert (await client.response()).status == 200
        assert await client.is_closed()


async def test_exception_before_response_gives_500_and_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/boom":
            raise ValueError("boom")
        await respond(send)

    async with connected(app) as client:
        await client.send(get("/boom"))
        assert (await client.response()).status == 500
        await client.send(get("/fine"))
        assert (await client.response()).status == 200
    assert "Exception in ASGI application while serving GET /boom" in caplog.text
    assert "ValueError: boom" in caplog.text


async def test_exception_after_response_start_closes_the_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"half", "more_body": True})
        raise ValueError("midway")

    async with connected(app) as client:
        await client.send(get())
        raw = await client.read_until_closed()
    assert raw.startswith(b"HTTP/1.1 200 ")
    assert not raw.endswith(b"0\r\n\r\n")  # the chunked body was never terminated
    assert "ValueError: midway" in caplog.text


async def test_exception_after_response_complete_only_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send)
        raise ValueError("in background work")

    async with connected(app) as client:
        await client.send(get())
        assert (await client.response()).status == 200
        await client.send(get())
        assert (await client.response()).status == 200
    assert "ValueError: in background work" in caplog.text


async def test_app_that_never_starts_a_response(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()

    async with connected(app) as client:
        await client.send(get("/silent"))
        assert (await client.response()).status == 500
    assert "returned without starting its response to GET /silent" in caplog.text


async def test_app_that_never_completes_its_response(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})

    async with connected(app) as client:
        await client.send(get("/partial"))
        # The head was held back, so an honest 500 is still possible.
        assert (await client.response()).status == 500
    assert "returned without completing its response to GET /partial" in caplog.text


async def test_app_that_stops_midway_through_its_body(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"half", "more_body": True})

    async with connected(app) as client:
        await client.send(get("/partial"))
        raw = await client.read_until_closed()
    assert raw.startswith(b"HTTP/1.1 200 ")
    assert raw.endswith(b"half\r\n")  # chunk written, terminating chunk never
    assert "returned without completing its response to GET /partial" in caplog.text


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ([{"type": "http.response.body", "body": b"x"}], "before 'http.response.start'"),
        (
            [{"type": "http.response.start", "status": 200}] * 2,
            "sent 'http.response.start' twice",
        ),
        ([{"type": "websocket.send"}], "Unexpected ASGI message 'websocket.send'"),
        ([{"type": "http.response.start", "status": 99}], "invalid response status 99"),
    ],
)
async def test_wrong_messages_are_logged_and_answered_500(
    messages: list[Message], error: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        for message in messages:
            await send(message)

    async with connected(app) as client:
        await client.send(get())
        assert (await client.response()).status == 500
    assert error in caplog.text


async def test_body_after_completion_is_an_error(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send)
        await send({"type": "http.response.body", "body": b"more"})

    async with connected(app) as client:
        await client.send(get())
        assert (await client.response()).body == b"ok"
    assert "'http.response.body' after its response completed" in caplog.text


async def test_invalid_header_is_answered_500(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"x-bad", b"line\r\nbreak")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"x"})

    async with connected(app) as client:
        await client.send(get())
        assert (await client.response()).status == 500  # nothing of the bad head left
        await client.send(get())
        assert (await client.response()).status == 500  # and the connection was kept
    assert "ASGI app sent an invalid response" in caplog.text


async def test_body_longer_than_its_content_length_closes_the_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-length", b"2")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"xyz"})

    async with connected(app) as client:
        await client.send(get())
        assert await client.is_closed()  # h11 refused the body after taking the head
    assert "ASGI app sent an invalid response" in caplog.text


async def test_sends_after_disconnect_are_dropped() -> None:
    seen: list[str] = []  # what the app saw, asserted outside it (the server catches errors)
    finished = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            seen.append((await receive())["type"])
            seen.append((await receive())["type"])
            await respond(send)  # must not raise: ASGI 2.3 drops it
            seen.append("sent")
        finally:
            finished.set()

    async with connected(app) as client:
        await client.send(get())
        await anyio.wait_all_tasks_blocked()
        await client.stream.send_eof()
        await finished.wait()
        assert await client.is_closed()  # nothing of the dropped response came out
    assert seen == ["http.request", "http.disconnect", "sent"]


async def test_stalled_body_gets_408() -> None:
    seen: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(await receive())
        seen.append(await receive())

    async with connected(app, body_timeout=0.05) as client:
        await client.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\nabc")
        raw = await client.read_until_closed()  # and the other 6 bytes never come
    assert raw.startswith(b"HTTP/1.1 408 ")
    assert [m["type"] for m in seen] == ["http.request", "http.disconnect"]


async def test_waiting_for_100_continue_is_not_a_stall() -> None:
    reading = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await reading.wait()
        await respond(send, await read_body(receive))

    async with connected(app, body_timeout=0.01) as client:
        await client.send(
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
        )
        with anyio.move_on_after(0.05):  # several body timeouts pass: the app's delay
            await anyio.sleep_forever()
        reading.set()
        assert await client.stream.receive() == b"HTTP/1.1 100 Continue\r\n\r\n"
        await client.send(b"ok")
        assert (await client.response()).body == b"ok"
