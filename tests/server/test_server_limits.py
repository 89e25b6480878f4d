"""Running out of file descriptors, and `--limit-connections`, against the real server."""

from __future__ import annotations

import signal
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import anyio
import httpx
import pytest
from anyio.abc import SocketStream
from cli_support import ServerProcess, spawned

pytestmark = pytest.mark.anyio

# Low enough that 80 held connections exhaust it; the server needs about 20 itself.
FD_LIMIT = 48
HELD = 80
# Accept errors are reported at most once a second: over this span (slept on purpose,
# since the claim is about a rate) a flood would show thousands of lines, the fix ~3.
SPAN = 2.5


@asynccontextmanager
async def limited_server(backend: str, *args: str) -> AsyncIterator[ServerProcess]:
    code = (
        "import resource, runpy, sys; "
        f"resource.setrlimit(resource.RLIMIT_NOFILE, ({FD_LIMIT}, {FD_LIMIT})); "
        "sys.argv[0] = 'asgi_bg'; runpy.run_module('asgi_bg', run_name='__main__')"
    )
    command = [sys.executable, "-c", code, "deploy_apps:app", "--port", "0"]
    async with spawned([*command, "--backend", backend, *args]) as server:
        yield server


async def hold_connections(stack: AsyncExitStack, port: int) -> list[SocketStream]:
    streams = []
    for _ in range(HELD):  # the kernel completes each handshake into the backlog
        streams.append(await stack.enter_async_context(await anyio.connect_tcp("127.0.0.1", port)))
    return streams


async def test_fd_exhaustion_logs_once_a_second_and_recovers(anyio_backend: str) -> None:
    # asyncio's own loop: uvloop (libuv) drops the connections it cannot accept silently.
    async with limited_server(anyio_backend, "--loop", "asyncio") as server:
        port = await server.port()
        async with AsyncExitStack() as stack:
            await hold_connections(stack, port)
            await anyio.sleep(SPAN)
        async with httpx.AsyncClient(timeout=10) as client:  # all closed: served again
            reply = await client.get(f"http://127.0.0.1:{port}/")
        server.process.send_signal(signal.SIGTERM)
        assert await server.exit_code() == 0
    reports = server.output.count("Accepting connections failed")
    assert 1 <= reports <= SPAN + 2, server.output
    assert "Traceback" not in server.output
    assert reply.status_code == 200


async def test_limit_connections_refuses_beyond_it(anyio_backend: str) -> None:
    async with limited_server(anyio_backend, "--limit-connections", "10") as server:
        port = await server.port()
        async with AsyncExitStack() as stack:
            streams = await hold_connections(stack, port)
            with anyio.fail_after(10):
                refused = await _closed_by_server(streams[-1])
            await streams[0].send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            with anyio.fail_after(10):
                first_answer = await streams[0].receive()
        server.process.send_signal(signal.SIGTERM)
        assert await server.exit_code() == 0
    assert refused
    assert first_answer.startswith(b"HTTP/1.1 200 ")
    assert "Accepting connections failed" not in server.output  # never ran out of fds


async def _closed_by_server(stream: SocketStream) -> bool:
    try:
        await stream.receive()
    except (anyio.EndOfStream, anyio.BrokenResourceError):
        return True
    return False
