"""What a hostile client or a careless app reaches over raw sockets (issue 11's HTTP/1.1
corners): framing that smuggles, hosts and versions HTTP/1.1 refuses, header values the
app took from user input."""

from __future__ import annotations

import contextlib
import re
from urllib.parse import unquote_to_bytes

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from server_support import connected, get, http_get, read_body, respond, running

from asgi_bg import App, Request
from asgi_bg._types import Receive, Scope, Send
from asgi_bg.server import ServerOptions

pytestmark = pytest.mark.anyio

OK_HEAD = b"HTTP/1.1 200 "


async def counting_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with its path; counts its calls in `calls`."""
    if scope["type"] != "http":
        return
    calls.append(scope["path"])
    body = scope["path"].encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


calls: list[str] = []


@pytest.fixture(autouse=True)
def _no_calls_yet() -> None:
    calls.clear()


def post_body(body: bytes) -> bytes:
    head = f"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"Connection: close\r\n\r\n" + body


def responses(raw: bytes) -> int:
    return raw.count(b"HTTP/1.1 ")


# --- framing --------------------------------------------------------------------------


async def test_content_length_with_transfer_encoding_is_400_and_closes() -> None:
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n"
    raw = (
        b"POST /first HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled
    )
    async with running(counting_app) as server:
        reply = await http_get(server.port, raw)
    assert reply.startswith(b"HTTP/1.1 400 "), reply
    assert b"connection: close" in reply.lower()
    assert responses(reply) == 1  # nothing after it was read as a request
    assert calls == []


@pytest.mark.parametrize(
    "codings",
    [
        [b"chunked, identity"],
        [b"chunked", b"identity"],  # the same list over two lines
        [b"identity"],
        [b"gzip, chunked"],  # chunked is last, but gzip is not implemented: 400 too
    ],
)
async def test_transfer_encoding_other_than_chunked_alone_is_400(codings: list[bytes]) -> None:
    lines = b"".join(b"Transfer-Encoding: " + c + b"\r\n" for c in codings)
    raw = b"POST / HTTP/1.1\r\nHost: t\r\n" + lines + b"\r\n0\r\n\r\n"
    async with running(counting_app) as server:
        reply = await http_get(server.port, raw)
    assert reply.startswith(b"HTTP/1.1 400 "), reply
    assert calls == []


# --- the request line and Host ---------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        b"evil.com/path",
        b"user@example.com",
        b"a b",
        b"example.com:80a",
        b"[::1",
        b"ex%zz.com",
        b"example.com:80:81",
        b"exa\\mple.com",
    ],
)
async def test_invalid_host_is_400(host: bytes) -> None:
    async with running(counting_app) as server:
        reply = await http_get(server.port, b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400 "), reply
    assert calls == []


@pytest.mark.parametrize(
    "host", [b"example.com", b"example.com:8080", b"127.0.0.1:1", b"[::1]:80", b"x-y.z_", b""]
)
async def test_valid_hosts_are_served(host: bytes) -> None:
    raw = b"GET / HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n"
    async with running(counting_app) as server:
        reply = await http_get(server.port, raw)
    assert reply.startswith(OK_HEAD), reply


async def test_missing_host_is_400_on_http_1_1_only() -> None:
    async with running(counting_app) as server:
        missing = await http_get(server.port, b"GET /a HTTP/1.1\r\n\r\n")
        old = await http_get(server.port, b"GET /b HTTP/1.0\r\n\r\n")
    assert missing.startswith(b"HTTP/1.1 400 "), missing
    assert old.startswith(OK_HEAD), old
    assert calls == ["/b"]


@pytest.mark.parametrize("version", [b"2.0", b"9.9", b"0.9"])
async def test_other_major_versions_are_505(version: bytes) -> None:
    async with running(counting_app) as server:
        reply = await http_get(server.port, b"GET / HTTP/" + version + b"\r\nHost: t\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 505 "), reply
    assert calls == []


async def test_empty_lines_before_a_request_line_are_ignored() -> None:
    first = b"\r\nGET /a HTTP/1.1\r\nHost: t\r\n\r\n"
    second = b"\r\n\n\r\nGET /b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    async with running(counting_app) as server:
        reply = await http_get(server.port, first + second)
    assert responses(reply) == 2, reply
    assert calls == ["/a", "/b"]


async def test_a_stream_of_empty_lines_is_not_a_request() -> None:
    async with running(counting_app) as server:
        reply = await http_get(server.port, b"\r\n" * 20 + b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400 "), reply
    assert calls == []


def url_app() -> App:
    app = App()

    @app.get("/{rest:path}")
    async def where(request: Request) -> dict[str, str]:
        return {"url": str(request.url), "host": request.headers["host"]}

    return app


async def test_absolute_form_target_host_replaces_the_host_header() -> None:
    raw = (
        b"GET http://example.com:8080/x/y?q=1 HTTP/1.1\r\nHost: other.org\r\n"
        b"Connection: close\r\n\r\n"
    )
    async with running(url_app()) as server:
        reply = await http_get(server.port, raw)
    assert reply.startswith(OK_HEAD), reply
    body = reply.partition(b"\r\n\r\n")[2]
    assert b'"url":"http://example.com:8080/x/y?q=1"' in body, body
    assert b'"host":"example.com:8080"' in body, body


@pytest.mark.parametrize(
    "target", [b"ftp://example.com/x", b"http://user@example.com/x", b"http:///x", b"http://a b/"]
)
async def test_invalid_absolute_form_target_is_400(target: bytes) -> None:
    async with running(counting_app) as server:
        reply = await http_get(server.port, b"GET " + target + b" HTTP/1.1\r\nHost: t\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400 "), reply
    assert calls == []


# --- header values the app sets --------------------------------------------------------


async def echo_header_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Sets `x-echo` to its (percent-decoded) query string, as apps echo user input."""
    if scope["type"] != "http":
        return
    value = unquote_to_bytes(scope["query_string"])
    headers = [(b"x-echo", value), (b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})


async def test_header_value_with_cr_lf_from_the_app_is_answered_500() -> None:
    injected = b"GET /?a%0d%0aSet-Cookie:%20session=evil HTTP/1.1\r\nHost: t\r\n\r\n"
    after = b"GET /?fine HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    async with running(echo_header_app) as server:
        reply = await http_get(server.port, injected + after)
    first, _, rest = reply.partition(b"HTTP/1.1 200 ")
    assert first.startswith(b"HTTP/1.1 500 "), reply
    assert b"set-cookie" not in reply.lower()
    assert b"x-echo: fine" in rest  # the connection went on with the next request


# A name is a token (RFC 9110 §5.1); a value has no NUL, CR, LF (nor the other line
# breaks h11 counts as whitespace) and no whitespace at either end (§5.5).
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FRAMING = {b"content-length", b"transfer-encoding", b"connection"}
_SERVERS_OWN = {b"content-type", b"content-length", b"server", b"date"}


def valid_field(name: bytes, value: bytes) -> bool:
    bad_value = any(c in value for c in b"\x00\r\n\x0b\x0c") or value[:1] in (b" ", b"\t")
    return bool(_TOKEN.fullmatch(name)) and not bad_value and value[-1:] not in (b" ", b"\t")


names = st.one_of(st.from_regex(_TOKEN, fullmatch=True), st.binary(min_size=1, max_size=8))


@settings(max_examples=100, deadline=None)
@given(
    fields=st.lists(
        st.tuples(names.filter(lambda n: n.lower() not in _FRAMING), st.binary(max_size=12)),
        min_size=1,
        max_size=3,
        unique_by=lambda field: field[0].lower(),
    )
)
async def test_no_header_reaches_the_wire_unvalidated(fields: list[tuple[bytes, bytes]]) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": fields})
        await send({"type": "http.response.body", "body": b"ok"})

    async with connected(app, access_log=False) as client:
        await client.send(get())
        reply = await client.response()  # an h11 client: it fails on a garbled head
    if all(valid_field(name, value) for name, value in fields):
        assert reply.status == 200
        for name, value in fields:
            assert reply.headers[name.lower()] == value  # intact
    else:
        assert reply.status == 500
        assert set(reply.headers) == _SERVERS_OWN  # nothing of the app's head


# --- slow clients: bodies dripped, responses never read ---------------------------------


async def drip_body(port: int, answers: list[bytes], every: float = 0.05) -> None:
    """Declare a 1000-byte body and send it one byte every `every` seconds, each wait far
    below `body_timeout`; keep what the server answers."""
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")

        async def drip() -> None:
            with contextlib.suppress(anyio.BrokenResourceError, OSError):
                for _ in range(1000):
                    await stream.send(b"x")
                    await anyio.sleep(every)

        answer = b""
        async with anyio.create_task_group() as group:
            group.start_soon(drip)
            with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                while True:
                    answer += await stream.receive()
            group.cancel_scope.cancel()
    answers.append(answer)


async def body_reader(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        body = await read_body(receive)
        await respond(send, str(len(body)).encode())


async def test_a_body_dripped_below_the_minimum_rate_gets_408() -> None:
    answers: list[bytes] = []
    # 20 bytes/s against a minimum of 100/s after 0.3 s: cut off within about half a
    # second; the guard below only turns a hang into a failure.
    options: ServerOptions = {"body_min_rate": 100, "body_rate_grace": 0.3}
    async with running(body_reader, **options) as server:
        with anyio.fail_after(8):
            await drip_body(server.port, answers)
    assert answers[0].startswith(b"HTTP/1.1 408 "), answers


async def test_dripped_bodies_do_not_hold_concurrency_slots_for_ever() -> None:
    answers: list[bytes] = []
    options: ServerOptions = {"body_min_rate": 100, "body_rate_grace": 0.3}
    options["limit_concurrency"] = 2
    async with running(body_reader, **options) as server:
        with anyio.fail_after(8):
            async with anyio.create_task_group() as group:
                for _ in range(2):
                    group.start_soon(drip_body, server.port, answers)
                await anyio.wait_all_tasks_blocked()
                full = await http_get(server.port, get("/", "Connection: close"))
            # Both slots were freed by the 408s; the next client is served.
            served = await http_get(server.port, post_body(b"hello"))
    assert full.startswith(b"HTTP/1.1 503 "), full
    assert [a[:13] for a in answers] == [b"HTTP/1.1 408 "] * 2
    assert served.startswith(OK_HEAD) and served.endswith(b"5"), served


async def test_a_client_that_reads_nothing_is_dropped_after_send_timeout() -> None:
    chunk = b"x" * 1024 * 1024
    sent: list[int] = []
    finished = anyio.Event()

    async def stream_app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            for n in range(200):  # far more than socket buffers hold
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                sent.append(n)
            await send({"type": "http.response.body", "body": b""})
        finally:
            finished.set()

    async with (
        running(stream_app, send_timeout=0.5) as server,
        await anyio.connect_tcp("127.0.0.1", server.port) as stream,
    ):
        await stream.send(get())
        # Reads nothing. Once dropped, the app's sends are discarded (ASGI 2.3) and its
        # loop runs out; the guard only turns a hang into a failure.
        with anyio.fail_after(8):
            await finished.wait()
        received = 0
        with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
            with anyio.fail_after(8):
                while True:
                    received += len(await stream.receive())
    assert len(sent) == 200
    assert received < 100 * len(chunk)  # the connection ended long before the body did


# --- tiny body chunks ------------------------------------------------------------------


async def test_tiny_body_chunks_reach_the_app_joined() -> None:
    # Each message to the app costs a task switch each way: a body of one-byte chunks
    # cost ~50 µs of CPU per byte when every chunk was a message.
    messages: list[bytes] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            messages.append(message.get("body", b""))
            more = message.get("more_body", False)
        await respond(send)

    chunks = b"1\r\nx\r\n" * 2000  # 12 kB: one or a few reads
    raw = b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    async with running(app) as server:
        reply = await http_get(server.port, raw + chunks + b"0\r\n\r\n")
    assert reply.startswith(OK_HEAD), reply
    assert b"".join(messages) == b"x" * 2000
    assert len(messages) <= 10, len(messages)
