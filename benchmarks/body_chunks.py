"""The server's CPU cost per request-body chunk, for bodies sent as tiny chunks.

    python -m benchmarks.body_chunks [--chunks 100000] [--size 1] [--server asgi_bg]

Starts the server (`asgi_bg`, or `uvicorn` in `--http h11` mode for reference) as a
child process with an app that reads the whole body, sends one chunked request whose
body is `--chunks` chunks of `--size` bytes (written as fast as the socket takes them),
and reports the server process's CPU time (user + system, from /proc, so Linux only)
divided by the number of chunks. A hostile client can send a body this way: the figure
says how much CPU one such request can cost under the default `max_body`.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.workload import Receive, Scope, Send

ROOT = Path(__file__).resolve().parent.parent
APP = "benchmarks.body_chunks:app"
_COMMON = ("--host", "127.0.0.1", "--no-access-log", "--log-level", "warning")
_START_TIMEOUT = 20.0
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
# Chunks written to the socket per send: large writes, so the client is not the limit.
_BATCH = 10_000


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the whole body and answers with its length."""
    if scope["type"] != "http":
        return
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    body = str(size).encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def command(server: str, port: int) -> list[str]:
    if server == "uvicorn":
        extra = ["--http", "h11", "--loop", "asyncio", "--lifespan", "off"]
        return [sys.executable, "-m", "uvicorn", APP, "--port", str(port), *_COMMON, *extra]
    return [sys.executable, "-m", "asgi_bg", APP, "--port", str(port), *_COMMON]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def connect(port: int) -> socket.socket:
    deadline = time.monotonic() + _START_TIMEOUT
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port))
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def one_request(port: int, chunks: int, size: int) -> bytes:
    """Send the chunked body; the server's answer."""
    chunk = f"{size:x}\r\n".encode() + b"x" * size + b"\r\n"
    with connect(port) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        for start in range(0, chunks, _BATCH):
            sock.sendall(chunk * min(_BATCH, chunks - start))
        sock.sendall(b"0\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        answer = b""
        while data := sock.recv(65536):
            answer += data
    return answer


def measure(server: str, chunks: int, size: int) -> float:
    """Microseconds of server CPU per chunk."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(command(server, port), cwd=ROOT, env=env) as process:
        try:
            one_request(port, 10, size)  # warm up: imports, first connection
            before = cpu_seconds(process.pid)
            answer = one_request(port, chunks, size)
            spent = cpu_seconds(process.pid) - before
        finally:
            process.terminate()
            process.wait(timeout=30)
    expected = str(chunks * size).encode()
    if not answer.startswith(b"HTTP/1.1 200") or expected not in answer:
        raise SystemExit(f"unexpected answer: {answer[:200]!r}")
    return spent / chunks * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=1, help="bytes per chunk")
    parser.add_argument("--server", choices=["asgi_bg", "uvicorn"], default="asgi_bg")
    args = parser.parse_args()
    per_chunk = measure(args.server, args.chunks, args.size)
    print(
        f"{args.server}: {args.chunks} chunks of {args.size} byte(s): "
        f"{per_chunk:.1f} µs of server CPU per chunk"
    )


if __name__ == "__main__":
    main()
