"""An in-memory byte stream: the server's connection class driven without sockets.

Shared by the server's protocol tests and the reliability fuzz tests.
"""

from __future__ import annotations

import math

import anyio
from anyio.abc import ByteStream
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream


class MemoryByteStream(ByteStream):
    """One end of an in-memory, bidirectional byte pipe."""

    def __init__(
        self, outgoing: MemoryObjectSendStream[bytes], incoming: MemoryObjectReceiveStream[bytes]
    ) -> None:
        self._outgoing = outgoing
        self._incoming = incoming
        self._pending = b""

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if not self._pending:
            self._pending = await self._incoming.receive()
        chunk, self._pending = self._pending[:max_bytes], self._pending[max_bytes:]
        return chunk

    async def send(self, item: bytes) -> None:
        await self._outgoing.send(item)

    async def send_eof(self) -> None:
        self._outgoing.close()

    def buffered(self) -> int:
        """Bytes sent to this end and not read yet."""
        return len(self._pending) + sum(len(chunk) for chunk in self._incoming._state.buffer)

    async def aclose(self) -> None:
        self._outgoing.close()
        self._incoming.close()


def stream_pair() -> tuple[MemoryByteStream, MemoryByteStream]:
    """Two connected ends, like a socketpair."""
    a_out, b_in = anyio.create_memory_object_stream[bytes](math.inf)
    b_out, a_in = anyio.create_memory_object_stream[bytes](math.inf)
    return MemoryByteStream(a_out, a_in), MemoryByteStream(b_out, b_in)
