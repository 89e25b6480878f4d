"""Bad input, generated: arbitrary and mutated request bytes straight into the server's
connection class, and arbitrary values through the injector.

The connection never raises, answers only well-formed responses (or closes cleanly),
never a 5xx, leaves nothing running, and the next connection is served. The injector
answers 2xx, or 4xx with a JSON `detail`, never 500.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import json
import logging
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import quote

import anyio
import anyio.lowlevel
import h11
import pytest
import sniffio
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from memory_stream import stream_pair
from reliability_apps import count_async, make_app

from asgi_bg import App, BackgroundTasks, Body, Cookie, Request
from asgi_bg.server.config import ServerConfig
from asgi_bg.server.connection import HTTPConnection
from asgi_bg.server.state import ServerState
from asgi_bg.testing import TestClient

EXCHANGE_LIMIT = 5.0
# Inputs tried, by kind, for the report (`pytest -s` prints them at the end of a test).
TRIED: Counter[str] = Counter()
FUZZ_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- the connection class ---------------------------------------------------------------------


def wire_app() -> App:
    app = make_app()
    ledger = app.state.ledger

    @app.post("/echo")
    async def echo(data: dict[str, Any], tasks: BackgroundTasks) -> dict[str, Any]:
        tasks.add_task(count_async, ledger, "echo")
        return data

    @app.post("/raw")
    async def raw(request: Request) -> dict[str, int]:
        return {"length": len(await request.body())}

    @app.get("/items/{item_id:int}")
    async def item(item_id: int, q: int = 0) -> dict[str, int]:
        return {"item_id": item_id, "q": q}

    return app


VALID_REQUESTS = [
    b"GET /items/7?q=1 HTTP/1.1\r\nHost: t\r\nUser-Agent: fuzz\r\nCookie: a=b\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
    b'Content-Length: 9\r\n\r\n{"a": 1}\n',
    b"POST /raw HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    b"POST /work/x HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"
    b"GET /async HTTP/1.1\r\nHost: t\r\n\r\n",
    b"POST /raw HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nbody",
    b"GET /stream?chunks=5 HTTP/1.0\r\n\r\n",
    b"HEAD /async HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
]
# Tokens a mutation may splice in: framing, limits, encodings, separators.
INTERESTING = [
    b"\r\n",
    b"\n",
    b"\r\n\r\n",
    b"\x00",
    b"\xff\xfe",
    b" ",
    b"\t",
    b":",
    b"%",
    b"%zz",
    b"%ff",
    b"Content-Length: 99999999999\r\n",
    b"Content-Length: -1\r\n",
    b"Content-Length: 5\r\nContent-Length: 6\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: gzip, chunked\r\n",
    b"Expect: 100-continue\r\n",
    b"Connection: close\r\n",
    b"Connection: upgrade\r\nUpgrade: h2c\r\n",
    b" folded\r\n",
    b"Host: t\r\n",
    b"ffffffffffffffff\r\n",
    b"0\r\n\r\n",
    b"HTTP/1.0",
    b"HTTP/2.0",
    b"HEAD",
    b"GET /" + b"a" * 5000,
    b"X: " + b"b" * 20000 + b"\r\n",
]


@st.composite
def mutated_request(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(VALID_REQUESTS)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["flip", "insert", "delete", "splice", "repeat", "cut"]))
        if kind == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif kind == "splice":
            data[at:at] = draw(st.sampled_from(INTERESTING))
        elif kind == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 64))]
        elif kind == "cut":
            del data[at:]
    return bytes(data)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """`data` in pieces, cut at the given offsets (so h11 sees it arrive bit by bit)."""
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


async def exchange(state: ServerState, pieces: list[bytes]) -> bytes:
    """Feed `pieces` to one connection (all of the server's work done after each), end the
    input, read all it answers until it closes.

    An exception from the connection propagates: that is a failure.
    """
    server_end, client_end = stream_pair()
    answer = b""
    with anyio.fail_after(EXCHANGE_LIMIT):
        async with anyio.create_task_group() as group:
            group.start_soon(HTTPConnection(server_end, state).run)
            for piece in pieces:
                await client_end.send(piece)
                await all_tasks_blocked()
            # Everything answerable is answered before the input ends: the server takes
            # an end of input while a response is pending as the client gone.
            await client_end.send_eof()
            while True:
                try:
                    answer += await client_end.receive()
                except (anyio.EndOfStream, anyio.ClosedResourceError):
                    break
            await client_end.aclose()
    return answer


async def all_tasks_blocked() -> None:
    """`anyio.wait_all_tasks_blocked`, without the 0.1 s polls of its asyncio version
    (they made this file 100 times slower on asyncio than on trio)."""
    if sniffio.current_async_library() != "asyncio":
        await anyio.wait_all_tasks_blocked()
        return
    me = asyncio.current_task()
    with anyio.fail_after(EXCHANGE_LIMIT):
        while True:
            await anyio.lowlevel.checkpoint()
            others = [t for t in asyncio.all_tasks() if t is not me]
            waiting = [getattr(t, "_fut_waiter", None) for t in others]
            if all(w is not None and not w.done() for w in waiting):
                return


def parse_responses(data: bytes) -> list[int] | None:
    """The statuses of the complete, well-formed responses `data` is made of, or None.

    A response to HEAD has no body whatever its headers say; which requests were HEAD is
    not known here, so both readings are tried, in order.
    """
    if not data:
        return []
    for method in ("GET", "HEAD"):
        parsed = _parse_one(data, method)
        if parsed is not None:
            statuses, rest = parsed
            tail = parse_responses(rest)
            if tail is not None:
                return statuses + tail
    return None


def _parse_one(data: bytes, method: str) -> tuple[list[int], bytes] | None:
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method=method, target="/", headers=[("host", "t")]))
    client.send(h11.EndOfMessage())
    client.receive_data(data)
    client.receive_data(b"")  # the server closed: no more is coming
    statuses: list[int] = []
    try:
        while True:
            event = client.next_event()
            if isinstance(event, h11.InformationalResponse | h11.Response):
                statuses.append(event.status_code)
            elif isinstance(event, h11.EndOfMessage):
                return statuses, client.trailing_data[0]
            elif event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
                return _interim_then_closed(statuses)
    except h11.RemoteProtocolError:
        return _interim_then_closed(statuses)


def _interim_then_closed(statuses: list[int]) -> tuple[list[int], bytes] | None:
    # Only interim answers (a `100 Continue` for a body that never came), then the close:
    # a clean close, nothing half-sent.
    return ([], b"") if statuses and all(s < 200 for s in statuses) else None


def fuzz_state(app: App) -> ServerState:
    config = ServerConfig(
        header_timeout=1.0, body_timeout=1.0, keep_alive=1.0, max_body=4096, max_header_size=4096
    )
    return ServerState(app, config)


def check_connection(
    anyio_backend: str, state: ServerState, data: bytes, cuts: list[int], seen: set[int]
) -> None:
    async def run() -> tuple[bytes, bytes]:
        answer = await exchange(state, split(data, cuts))
        follow_up = await exchange(state, [VALID_REQUESTS[0]])
        return answer, follow_up

    answer, follow_up = anyio.run(run, backend=anyio_backend)
    TRIED["connection"] += 1
    statuses = parse_responses(answer)
    assert statuses is not None, answer  # only whole, well-formed responses
    # Bad input is the client's error, never a 500; RFC 9112 §6.1 itself answers an
    # unknown transfer coding with 501, and h11 an unknown version with 505.
    assert all(s < 500 or s in (501, 505) for s in statuses), (statuses, answer)
    seen.update(statuses)
    assert parse_responses(follow_up) == [200]  # the next connection works
    assert not state.requests  # no ASGI call left behind


def no_connection_errors(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing escaped to the server's last-resort handler, nothing but a client gone
    mid-body was an app error."""
    for record in caplog.records:
        if record.levelno < logging.ERROR:
            continue
        assert record.exc_info is not None, record.getMessage()
        assert type(record.exc_info[1]).__name__ == "ClientDisconnect", record.getMessage()


def test_mutated_requests_get_well_formed_answers(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    state = fuzz_state(wire_app())
    seen: set[int] = set()

    @settings(FUZZ_SETTINGS, max_examples=500)
    @given(data=mutated_request(), cuts=st.lists(st.integers(0, 10_000), max_size=6))
    @example(data=VALID_REQUESTS[1], cuts=[])
    @example(data=VALID_REQUESTS[2], cuts=[60, 61, 70])
    @example(data=VALID_REQUESTS[0].replace(b"Host: t\r\n", b""), cuts=[])
    @example(data=VALID_REQUESTS[1].replace(b"9", b"90"), cuts=[])
    def check(data: bytes, cuts: list[int]) -> None:
        check_connection(anyio_backend, state, data, cuts, seen)

    before = TRIED["connection"]
    check()
    no_connection_errors(caplog)
    assert {200, 400} <= seen, seen  # the valid requests passed, broken ones were refused
    assert TRIED["connection"] - before >= 100
    print(f"\n{TRIED['connection'] - before} mutated request streams, answers {sorted(seen)}")


def test_arbitrary_bytes_get_well_formed_answers(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    state = fuzz_state(wire_app())
    seen: set[int] = set()

    @settings(FUZZ_SETTINGS, max_examples=300)
    @given(data=st.binary(max_size=600), cuts=st.lists(st.integers(0, 1000), max_size=4))
    @example(data=b"\r\n\r\n", cuts=[])
    @example(data=b"GET / HTTP/1.1\r\n" + b"\x00" * 100, cuts=[])
    def check(data: bytes, cuts: list[int]) -> None:
        check_connection(anyio_backend, state, data, cuts, seen)

    before = TRIED["connection"]
    check()
    no_connection_errors(caplog)
    assert TRIED["connection"] - before >= 100
    print(f"\n{TRIED['connection'] - before} arbitrary byte streams, answers {sorted(seen)}")


# --- the injector -----------------------------------------------------------------------------


class Color(enum.Enum):
    red = "red"
    blue = "blue"


@dataclass
class Dimensions:
    width: float
    height: float


@dataclass
class Item:
    name: str
    price: float
    tags: list[str]
    dims: Dimensions | None = None
    color: Color = Color.red
    count: int = 1


def injector_app() -> App:
    app = App()

    @app.post("/items/{category}/{item_id:int}")
    async def create(
        category: str,
        item_id: int,
        item: Item,
        tasks: BackgroundTasks,
        session: Annotated[str | None, Cookie()] = None,
        theme: Annotated[Literal["dark", "light"], Cookie()] = "light",
        visits: Annotated[int, Cookie()] = 0,
    ) -> dict[str, Any]:
        tasks.add_task(len, item.tags)
        return {"category": category, "item_id": item_id, "item": item, "theme": theme}

    @app.post("/scores")
    async def scores(data: Annotated[dict[str, int], Body()]) -> dict[str, int]:
        return data

    @app.post("/values")
    async def values(values: Annotated[list[float], Body()]) -> list[float]:
        return values

    @app.get("/files/{rest:path}")
    async def files(rest: str) -> dict[str, str]:
        return {"rest": rest}

    @app.get("/at/{when:float}/{ident:uuid}")
    async def at(when: float, ident: uuid.UUID) -> dict[str, Any]:
        return {"when": when, "ident": ident}

    return app


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)


def maybe(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a valid value, sometimes any JSON value instead."""
    return st.one_of(valid, valid, json_values)


items = st.dictionaries(
    st.sampled_from(["name", "price", "tags", "dims", "color", "count", "extra"]),
    st.nothing(),
).flatmap(
    lambda _: st.fixed_dictionaries(
        {},
        optional={
            "name": maybe(st.text(max_size=10)),
            "price": maybe(st.floats(allow_nan=False, allow_infinity=False)),
            "tags": maybe(st.lists(st.text(max_size=5), max_size=3)),
            "dims": maybe(
                st.fixed_dictionaries({"width": maybe(st.floats()), "height": maybe(st.integers())})
            ),
            "color": maybe(st.sampled_from(["red", "blue", "green"])),
            "count": maybe(st.integers()),
            "extra": json_values,
        },
    )
)
latin1_text = st.text(st.characters(max_codepoint=255, blacklist_categories=["Cs"]), max_size=30)
raw_bodies = st.one_of(
    st.binary(max_size=60),
    json_values.map(lambda v: json.dumps(v).encode()),
    items.map(lambda v: json.dumps(v).encode()),
    st.sampled_from(
        [
            b"",
            b"{",
            b'{"name": "a"',
            b"\xff\xfe{}",
            b"[1, 2",
            b"NaN",
            b'"\\ud800"',  # a lone surrogate: no response could encode it back
            b'{"\\udc00": 1}',
            b"[" * 100_000,  # deeper than the decoder's recursion
            b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        ]
    ),
)
path_text = st.one_of(
    st.text(max_size=20).map(lambda s: quote(s, safe="")),
    st.text(max_size=20).map(lambda s: quote(s, safe="/%")),
    st.sampled_from(["..", "%00", "%zz", "%ff%fe", "a%2Fb", "", "//", "1e400", "-0", "inf"]),
)


def check_answer(response: Any, seen: set[int]) -> None:
    TRIED["injector"] += 1
    assert 200 <= response.status_code < 500, (response.status_code, response.text)
    seen.add(response.status_code)
    if response.status_code >= 400:
        assert "detail" in response.json(), response.text


def test_json_bodies_cookies_and_paths_are_answered_2xx_or_4xx_never_500(
    anyio_backend: str,
) -> None:
    seen: set[int] = set()
    with TestClient(injector_app(), raise_server_exceptions=False, backend=anyio_backend) as c:

        @FUZZ_SETTINGS
        @given(
            category=path_text,
            item_id=st.one_of(st.integers().map(str), path_text),
            body=st.one_of(items.map(lambda v: json.dumps(v).encode()), raw_bodies),
            cookie=st.one_of(
                st.builds(
                    "session={}; theme={}; visits={}".format, latin1_text, latin1_text, latin1_text
                ),
                latin1_text,
            ),
        )
        @example(
            category="tools",
            item_id="7",
            body=b'{"name": "saw", "price": 9.5, "tags": ["a"], "dims": {"width": 1, "height": 2}}',
            cookie="session=abc; theme=dark; visits=3",
        )
        def check(category: str, item_id: str, body: bytes, cookie: str) -> None:
            response = c.post(
                f"/items/{category}/{item_id}",
                content=body,
                # httpx sends str header values as ASCII only: latin-1 goes as bytes.
                headers={b"content-type": b"application/json", b"cookie": cookie.encode("latin-1")},
            )
            check_answer(response, seen)
            if response.status_code == 200:
                assert response.json()["item_id"] == int(item_id)

        before = TRIED["injector"]
        check()
    assert {200, 422} <= seen, seen
    print(f"\n{TRIED['injector'] - before} requests, answers {sorted(seen)}")


def test_bare_dict_list_and_converter_paths_are_answered_2xx_or_4xx_never_500(
    anyio_backend: str,
) -> None:
    seen: set[int] = set()
    with TestClient(injector_app(), raise_server_exceptions=False, backend=anyio_backend) as c:

        @FUZZ_SETTINGS
        @given(
            scores=raw_bodies,
            values=raw_bodies,
            rest=path_text,
            when=st.one_of(st.floats().map(str), path_text),
            ident=st.one_of(st.uuids().map(str), path_text),
        )
        @example(
            scores=b'{"a": 1}',
            values=b"[1.5, 2]",
            rest="a/b",
            when="1.5",
            ident=str(uuid.UUID(int=1)),
        )
        def check(scores: bytes, values: bytes, rest: str, when: str, ident: str) -> None:
            check_answer(c.post("/scores", content=scores), seen)
            check_answer(c.post("/values", content=values), seen)
            check_answer(c.get(f"/files/{rest}"), seen)
            check_answer(c.get(f"/at/{when}/{ident}"), seen)

        before = TRIED["injector"]
        check()
    assert {200, 404, 422} <= seen, seen
    print(f"\n{TRIED['injector'] - before} requests, answers {sorted(seen)}")
