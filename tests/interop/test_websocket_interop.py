"""The ``websockets`` client library against the embedded server, uvicorn (both of its
WebSocket implementations), hypercorn and daphne, each serving ``ws_probe:app`` in a
subprocess. A server that is not installed is skipped with the reason."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from interop_support import LIMIT, PY, Served, ServerKind, serving
from wsproto import ConnectionType, WSConnection
from wsproto.events import CloseConnection, Ping, Request

pytest.importorskip("websockets")
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

UVICORN = (PY, "-m", "uvicorn", "{app}", "--host", "127.0.0.1", "--port", "{port}")
ASGI_BG = (PY, "-m", "asgi_bg", "{app}", "--host", "127.0.0.1", "--port", "{port}")
PING = ("--ws-ping-interval", "0.2", "--ws-ping-timeout", "0.5")

WS_SERVERS = [
    ServerKind("asgi_bg-asyncio", (*ASGI_BG, "--backend", "asyncio", *PING), ("wsproto",)),
    ServerKind("asgi_bg-trio", (*ASGI_BG, "--backend", "trio", *PING), ("wsproto", "trio")),
    ServerKind("uvicorn-wsproto", (*UVICORN, "--ws", "wsproto", *PING), ("uvicorn", "wsproto")),
    ServerKind(
        "uvicorn-websockets", (*UVICORN, "--ws", "websockets", *PING), ("uvicorn", "websockets")
    ),
    ServerKind(
        "hypercorn",
        (PY, "-m", "hypercorn", "{app}", "--bind", "127.0.0.1:{port}"),
        ("hypercorn",),
    ),
    ServerKind(
        "daphne", (PY, "-m", "daphne", "-b", "127.0.0.1", "-p", "{port}", "{app}"), ("daphne",)
    ),
]
# Servers whose keep-alive closes a connection that leaves pings unanswered, with flags.
PING_TIMEOUT_SERVERS = {"asgi_bg-asyncio", "asgi_bg-trio", "uvicorn-wsproto", "uvicorn-websockets"}


@pytest.fixture(scope="module", params=WS_SERVERS, ids=[s.name for s in WS_SERVERS])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    kind: ServerKind = request.param
    if (reason := kind.missing()) is not None:
        pytest.skip(reason)
    with serving(kind, tmp_path_factory.mktemp(kind.name), app="ws_probe:app") as server:
        yield server


def ws(served: Served, path: str) -> ClientConnection:
    return connect(
        f"ws://127.0.0.1:{served.port}{path}",
        open_timeout=LIMIT,
        close_timeout=LIMIT,
        max_size=None,
    )


def test_text_echo(served: Served) -> None:
    with ws(served, "/echo") as conn:
        for text in ("hello", "wörld"):
            conn.send(text)
            assert conn.recv(timeout=LIMIT) == text


def test_an_empty_text_message(served: Served) -> None:
    if served.kind == "daphne":
        pytest.skip("daphne 4 does not pass an empty text message through (observed)")
    with ws(served, "/echo") as conn:
        conn.send("")
        assert conn.recv(timeout=LIMIT) == ""


def test_binary_echo(served: Served) -> None:
    with ws(served, "/echo") as conn:
        conn.send(bytes(range(256)))
        assert conn.recv(timeout=LIMIT) == bytes(range(256))


def test_json_round_trip(served: Served) -> None:
    with ws(served, "/json") as conn:
        conn.send(json.dumps({"n": 21}))
        assert json.loads(conn.recv(timeout=LIMIT)) == {"double": 42}


def test_a_one_mebibyte_message(served: Served) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    with ws(served, "/echo") as conn:
        conn.send(payload)
        assert conn.recv(timeout=LIMIT) == payload


def test_the_apps_close_code_and_reason(served: Served) -> None:
    with ws(served, "/close/4001") as conn:
        with pytest.raises(ConnectionClosed) as closed:
            conn.recv(timeout=LIMIT)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4001
        # daphne 4 leaves out the ASGI close reason (observed); the others send it.
        reason = "" if served.kind == "daphne" else "closing with 4001"
        assert closed.value.rcvd.reason == reason


def test_the_clients_close_code(served: Served) -> None:
    with ws(served, "/echo") as conn:
        conn.close(4002, "client leaves")
        # RFC 6455 5.5.1: the answering Close usually echoes the code; daphne 4 sends 1000.
        assert conn.close_code == (1000 if served.kind == "daphne" else 4002)


def test_unknown_path_is_refused_with_403(served: Served) -> None:
    with pytest.raises(InvalidStatus) as refused:
        ws(served, "/nowhere")
    assert refused.value.response.status_code == 403


def test_a_denial_response_where_the_server_has_the_extension(served: Served) -> None:
    with pytest.raises(InvalidStatus) as refused:
        ws(served, "/deny")
    response = refused.value.response
    if served.kind == "daphne":  # no websocket.http.response extension: a plain 403
        assert response.status_code == 403
    else:
        assert (response.status_code, response.body) == (401, b"members only")


def test_a_client_ping_is_answered(served: Served) -> None:
    with ws(served, "/echo") as conn:
        assert conn.ping().wait(LIMIT)


def test_a_client_that_ignores_pings_is_closed(served: Served) -> None:
    if served.kind not in PING_TIMEOUT_SERVERS:
        pytest.skip(f"{served.kind} has no ping timeout setting")
    events = raw_session(served.port, "/echo")
    assert any(isinstance(e, Ping) for e in events)
    closes = [e for e in events if isinstance(e, CloseConnection)]
    assert closes[0].code in (1011, 1006)


def test_the_server_logged_no_error(served: Served) -> None:
    """Runs last for each server: the app never failed under it (a close the server
    refused, say, would show as an ASGI error here and nowhere else)."""
    log = served.log()
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log


def raw_session(port: int, path: str) -> list[Any]:
    """Handshake, then only read (pings unanswered) until the server ends the connection."""
    client = WSConnection(ConnectionType.CLIENT)
    events: list[Any] = []
    with socket.create_connection(("127.0.0.1", port), timeout=LIMIT) as sock:
        sock.sendall(client.send(Request(host="t", target=path)))
        while not any(isinstance(e, CloseConnection) for e in events):
            data = sock.recv(65536)
            client.receive_data(data or None)
            events.extend(client.events())
    return events


def test_shutdown_closes_open_websockets_with_1012(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Stopping the server (SIGTERM) while a client is connected: a 1012 close frame."""
    codes: dict[str, int | None] = {}
    for kind in WS_SERVERS:
        if kind.missing() is not None:
            continue
        tmp = tmp_path_factory.mktemp(f"stop-{kind.name}")
        with serving(kind, tmp, app="ws_probe:app") as server, ws(server, "/echo") as conn:
            conn.send("ready")
            assert conn.recv(timeout=LIMIT) == "ready"
            server.process.terminate()
            with pytest.raises(ConnectionClosed) as closed:
                conn.recv(timeout=LIMIT)
            codes[kind.name] = closed.value.rcvd.code if closed.value.rcvd else None
    # Observed elsewhere: hypercorn closes with 1011, daphne drops the TCP connection.
    for name in ("asgi_bg-asyncio", "asgi_bg-trio", "uvicorn-wsproto", "uvicorn-websockets"):
        assert codes.get(name, 1012) == 1012, codes
