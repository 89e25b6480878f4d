"""`python -m asgi_bg` in a subprocess: startup, signals, exit codes.

The served process runs on the same anyio backend as the test.
"""

from __future__ import annotations

import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from anyio.abc import Process
from server_support import ScriptedClient

from asgi_bg.server.cli import build_parser, load_app
from asgi_bg.server.config import ServerConfig

pytestmark = pytest.mark.anyio

HERE = str(Path(__file__).parent)
LIMIT = 10.0  # a subprocess start includes imports; still far above what it takes


class ServerProcess:
    def __init__(self, process: Process) -> None:
        self.process = process
        self.output = ""
        self._buffer = b""

    async def wait_for(self, pattern: str) -> re.Match[str]:
        """Read stderr until a line matches `pattern`."""
        assert self.process.stderr is not None
        with anyio.fail_after(LIMIT):
            while True:
                while b"\n" in self._buffer:
                    line, self._buffer = self._buffer.split(b"\n", 1)
                    text = line.decode()
                    self.output += text + "\n"
                    if match := re.search(pattern, text):
                        return match
                self._buffer += await self.process.stderr.receive()

    async def exit_code(self) -> int:
        assert self.process.stderr is not None
        with anyio.fail_after(LIMIT):
            try:
                while True:
                    self._buffer += await self.process.stderr.receive()
            except anyio.EndOfStream:
                self.output += self._buffer.decode()
            return await self.process.wait()


@asynccontextmanager
async def cli(*args: str, backend: str) -> AsyncIterator[ServerProcess]:
    command = [sys.executable, "-m", "asgi_bg", *args, "--app-dir", HERE, "--backend", backend]
    async with spawned(command) as server:
        yield server


@asynccontextmanager
async def spawned(command: list[str]) -> AsyncIterator[ServerProcess]:
    async with await anyio.open_process(command, cwd=HERE) as process:
        try:
            yield ServerProcess(process)
        finally:
            if process.returncode is None:
                process.kill()


async def connect_and_wait(server: ServerProcess) -> ScriptedClient:
    port = int((await server.wait_for(r"serving on http://127\.0\.0\.1:(\d+)")).group(1))
    client = ScriptedClient(await anyio.connect_tcp("127.0.0.1", port))
    await client.send(b"POST /wait-for-body HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\n")
    await server.wait_for("MARK waiting for the body")
    return client


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_signal_shuts_down_gracefully(anyio_backend: str, signum: signal.Signals) -> None:
    async with cli("server_apps:app", "--port", "0", backend=anyio_backend) as server:
        client = await connect_and_wait(server)
        server.process.send_signal(signum)
        await server.wait_for("waiting for 1 connection")
        await client.send(b"abc")  # the in-flight request may still finish
        reply = await client.response(method=b"POST")
        assert (reply.status, reply.body) == (200, b"got abc")
        assert reply.headers[b"connection"] == b"close"
        await client.stream.aclose()
        assert await server.exit_code() == 0
    assert "MARK lifespan shutdown" in server.output


async def test_second_signal_forces_exit(anyio_backend: str) -> None:
    async with cli("server_apps:app", "--port", "0", backend=anyio_backend) as server:
        client = await connect_and_wait(server)
        server.process.send_signal(signal.SIGINT)
        await server.wait_for("shutting down gracefully")
        server.process.send_signal(signal.SIGINT)
        assert await server.exit_code() == 1
        await client.stream.aclose()
    assert "forcing exit" in server.output


async def test_failed_startup_exits_with_3(anyio_backend: str) -> None:
    async with cli("server_apps:failing_startup", "--port", "0", backend=anyio_backend) as server:
        assert await server.exit_code() == 3
    assert "Application startup failed: no database" in server.output


async def test_logs_like_uvicorn_and_a_busy_port_is_one_line_and_status_1(
    anyio_backend: str,
) -> None:
    async with cli("server_apps:app", "--port", "0", backend=anyio_backend) as first:
        port = int((await first.wait_for(r"serving on http://127\.0\.0\.1:(\d+)")).group(1))
        async with cli("server_apps:app", "--port", str(port), backend=anyio_backend) as second:
            assert await second.exit_code() == 1
        first.process.send_signal(signal.SIGTERM)
        assert await first.exit_code() == 0
    assert second.output.strip().splitlines() == [
        f"ERROR:    [Errno 98] error while attempting to bind on address "
        f"('127.0.0.1', {port}): address already in use"
    ]
    lines = first.output.splitlines()
    for expected in (
        "INFO:     Started server process [",
        "INFO:     Waiting for application startup.",
        "INFO:     Application startup complete.",
        f"INFO:     asgi_bg serving on http://127.0.0.1:{port} (Press CTRL+C to quit)",
        "INFO:     Application shutdown complete.",
        "INFO:     Finished server process [",
    ):
        assert any(line.startswith(expected) for line in lines), expected


def test_uvicorn_option_names_are_accepted() -> None:
    args = build_parser().parse_args(
        ["m:app", "--timeout-keep-alive", "7", "--timeout-graceful-shutdown", "9"]
    )
    assert (args.keep_alive, args.shutdown_timeout) == (7.0, 9.0)


def test_unknown_app_is_reported() -> None:
    with pytest.raises(ValueError, match="has no attribute 'nope'"):
        load_app("server_apps:nope")
    with pytest.raises(ValueError, match="module:attribute"):
        load_app("server_apps")


def test_options_default_like_serve() -> None:
    args = build_parser().parse_args(["m:app"])
    assert (args.host, args.port, args.max_body) == ("127.0.0.1", 8000, 4 * 1024 * 1024)


def test_slow_client_limits_default_like_serve_and_can_be_set() -> None:
    defaults = build_parser().parse_args(["m:app"])
    config = ServerConfig()
    assert (defaults.body_min_rate, defaults.body_rate_grace, defaults.send_timeout) == (
        config.body_min_rate,
        config.body_rate_grace,
        config.send_timeout,
    )
    args = build_parser().parse_args(
        ["m:app", "--body-min-rate", "0", "--body-rate-grace", "2", "--send-timeout", "9"]
    )
    assert (args.body_min_rate, args.body_rate_grace, args.send_timeout) == (0.0, 2.0, 9.0)
    with pytest.raises(ValueError, match="send_timeout must not be negative"):
        ServerConfig(send_timeout=-1)


async def test_run_from_python_serves_until_sigterm(anyio_backend: str) -> None:
    code = (
        "from asgi_bg.server import run; from server_apps import app; "
        f"run(app, port=0, backend={anyio_backend!r})"
    )
    async with spawned([sys.executable, "-c", code]) as server:
        client = await connect_and_wait(server)
        server.process.send_signal(signal.SIGTERM)
        await server.wait_for("waiting for 1 connection")
        await client.send(b"abc")
        assert (await client.response(method=b"POST")).body == b"got abc"
        await client.stream.aclose()
        assert await server.exit_code() == 0
