"""Helpers for tests that start `python -m asgi_bg` in a subprocess."""

from __future__ import annotations

import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from anyio.abc import Process

HERE = str(Path(__file__).parent)
LIMIT = 10.0  # a subprocess start includes imports; still far above what it takes
SERVING = r"serving on (https?)://127\.0\.0\.1:(\d+)"


class ServerProcess:
    def __init__(self, process: Process) -> None:
        self.process = process
        self.output = ""
        self._buffer = b""

    async def wait_for(self, pattern: str, limit: float = LIMIT) -> re.Match[str]:
        """Read stderr until a line matches `pattern`."""
        assert self.process.stderr is not None
        with anyio.fail_after(limit):
            while True:
                while b"\n" in self._buffer:
                    line, self._buffer = self._buffer.split(b"\n", 1)
                    text = line.decode()
                    self.output += text + "\n"
                    if match := re.search(pattern, text):
                        return match
                self._buffer += await self.process.stderr.receive()

    async def port(self) -> int:
        return int((await self.wait_for(SERVING)).group(2))

    async def exit_code(self, limit: float = LIMIT) -> int:
        assert self.process.stderr is not None
        with anyio.fail_after(limit):
            try:
                while True:
                    self._buffer += await self.process.stderr.receive()
            except anyio.EndOfStream:
                self.output += self._buffer.decode()
            return await self.process.wait()


@asynccontextmanager
async def cli(*args: str, backend: str, cwd: str = HERE) -> AsyncIterator[ServerProcess]:
    command = [sys.executable, "-m", "asgi_bg", *args, "--app-dir", cwd, "--backend", backend]
    async with spawned(command, cwd=cwd) as server:
        yield server


@asynccontextmanager
async def spawned(command: list[str], cwd: str = HERE) -> AsyncIterator[ServerProcess]:
    async with await anyio.open_process(command, cwd=cwd) as process:
        try:
            yield ServerProcess(process)
        finally:
            if process.returncode is None:
                process.kill()
