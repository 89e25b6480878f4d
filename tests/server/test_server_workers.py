"""`--workers` and `--reload`: a supervisor and its worker processes, for real."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import anyio
import httpx
import pytest
from cli_support import ServerProcess, cli
from server_support import ScriptedClient

pytestmark = pytest.mark.anyio

STARTUP = r"MARK lifespan startup in (\d+)"
# Worker processes start one after another on a loaded machine: a generous bound that
# only turns a hang into a failure.
START_LIMIT = 40.0


async def pid_of_fresh_connection(port: int) -> int:
    async with httpx.AsyncClient() as client:  # a new client: a new connection
        reply = await client.get(f"http://127.0.0.1:{port}/", headers={"Connection": "close"})
    return int(reply.json()["pid"])


async def started_workers(server: ServerProcess, count: int) -> set[int]:
    return {int((await server.wait_for(STARTUP, START_LIMIT)).group(1)) for _ in range(count)}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_two_workers_answer_and_sigterm_leaves_none(anyio_backend: str) -> None:
    args = ["deploy_apps:app", "--port", "0", "--workers", "2"]
    async with cli(*args, backend=anyio_backend) as server:
        port = await server.port()
        workers = await started_workers(server, 2)  # each ran the lifespan
        seen: set[int] = set()
        with anyio.fail_after(30):  # the kernel spreads connections: both soon answer
            while seen != workers:
                seen.add(await pid_of_fresh_connection(port))
        server.process.send_signal(signal.SIGTERM)
        assert await server.exit_code(limit=START_LIMIT) == 0
    assert not [pid for pid in workers if alive(pid)]
    assert server.output.count("Application shutdown complete.") == 2


async def test_a_dying_worker_is_replaced(anyio_backend: str) -> None:
    args = ["deploy_apps:app", "--port", "0", "--workers", "2"]
    async with cli(*args, backend=anyio_backend) as server:
        port = await server.port()
        first = await started_workers(server, 2)
        with pytest.raises(httpx.RemoteProtocolError):  # the worker exits mid-request
            async with httpx.AsyncClient() as client:
                await client.get(f"http://127.0.0.1:{port}/exit")
        died_line = r"Worker \[(\d+)\] died \(exit status 7\)"
        died = int((await server.wait_for(died_line, START_LIMIT)).group(1))
        replacement = await started_workers(server, 1)
        server.process.send_signal(signal.SIGTERM)
        assert await server.exit_code(limit=START_LIMIT) == 0
    assert died in first and not replacement & first


async def test_workers_failing_at_start_make_the_supervisor_give_up(anyio_backend: str) -> None:
    args = ["broken_app:app", "--port", "0", "--workers", "2"]
    async with cli(*args, backend=anyio_backend) as server:
        assert await server.exit_code(limit=START_LIMIT) == 1
    assert "Workers keep failing at start: giving up" in server.output


async def test_reload_after_an_edit_and_a_syntax_error(anyio_backend: str, tmp_path: Path) -> None:
    module = tmp_path / "reloaded_app.py"
    module.write_text(RELOADED_APP.format(answer="first"))
    args = ["reloaded_app:app", "--port", "0", "--reload"]
    async with cli(*args, backend=anyio_backend, cwd=str(tmp_path)) as server:
        port = await server.port()
        await server.wait_for("MARK ready first", START_LIMIT)
        module.write_text("def broken(:\n")
        await server.wait_for(r"SyntaxError", limit=START_LIMIT)
        await server.wait_for(r"failed at start .*waiting for a file change", START_LIMIT)
        module.write_text(RELOADED_APP.format(answer="second"))
        await server.wait_for("MARK ready second", limit=START_LIMIT)
        async with httpx.AsyncClient() as client:
            reply = await client.get(f"http://127.0.0.1:{port}/")
        server.process.send_signal(signal.SIGTERM)
        assert await server.exit_code(limit=START_LIMIT) == 0
    assert reply.text == "second"
    assert 'reloaded_app.py", line 1' in server.output


RELOADED_APP = """
import sys


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        print("MARK ready {answer}", file=sys.stderr, flush=True)
        await send({{"type": "lifespan.startup.complete"}})
        await receive()
        await send({{"type": "lifespan.shutdown.complete"}})
        return
    await send({{"type": "http.response.start", "status": 200, "headers": []}})
    await send({{"type": "http.response.body", "body": b"{answer}"}})
"""


async def test_sigterm_lets_a_workers_in_flight_request_finish(anyio_backend: str) -> None:
    args = ["server_apps:app", "--port", "0", "--workers", "2"]
    async with cli(*args, backend=anyio_backend) as server:
        port = await server.port()
        await server.wait_for("Application startup complete", START_LIMIT)
        await server.wait_for("Application startup complete", START_LIMIT)
        client = ScriptedClient(await anyio.connect_tcp("127.0.0.1", port))
        await client.send(b"POST /wait-for-body HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\n")
        await server.wait_for("MARK waiting for the body")
        server.process.send_signal(signal.SIGTERM)
        await server.wait_for("waiting for 1 connection")
        await client.send(b"abc")
        reply = await client.response(method=b"POST")
        await client.stream.aclose()
        assert await server.exit_code(limit=START_LIMIT) == 0
    assert (reply.status, reply.body) == (200, b"got abc")


async def test_workers_stop_when_the_supervisor_is_killed(anyio_backend: str) -> None:
    args = ["deploy_apps:app", "--port", "0", "--workers", "2"]
    async with cli(*args, backend=anyio_backend) as server:
        workers = await started_workers(server, 2)
        server.process.kill()  # no chance to stop its workers itself
        await server.exit_code()
        with anyio.fail_after(START_LIMIT):
            # Polled: the end of a process that is not our child has no event to wait on.
            while any(alive(pid) for pid in workers):  # noqa: ASYNC110
                await anyio.sleep(0.1)


async def test_a_worker_past_limit_max_requests_is_replaced(anyio_backend: str) -> None:
    args = ["deploy_apps:app", "--port", "0", "--workers", "2", "--limit-max-requests", "1"]
    async with cli(*args, backend=anyio_backend) as server:
        port = await server.port()
        first = await started_workers(server, 2)
        answered = await pid_of_fresh_connection(port)
        await server.wait_for(rf"Worker \[{answered}\] finished; starting a new one", START_LIMIT)
        replacement = await started_workers(server, 1)
        server.process.send_signal(signal.SIGTERM)
        assert await server.exit_code(limit=START_LIMIT) == 0
    assert answered in first and not replacement & first
