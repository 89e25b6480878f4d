"""One in-process ASGI HTTP call for the test clients, independent of the HTTP client
library: the scope of a request, the body fed through ``receive``, the response collected
from ``send`` and checked against the ASGI message order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import anyio

from ._context import ERRORS_KEY
from ._types import ASGIApp, Message, Scope

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


@dataclass(frozen=True, slots=True)
class RequestTarget:
    """What the client asked for, as the scope of an ASGI call needs it."""

    method: str
    scheme: str
    host: str
    port: int | None
    raw_path: bytes  # path and query, percent-encoded, as on the request line
    headers: Sequence[tuple[bytes, bytes]]
    root_path: str = ""

    def scope(self, state: dict[str, Any], kind: str = "http") -> Scope:
        """The ASGI scope; ``state`` is the lifespan state's copy for this call."""
        raw_path, _, query = self.raw_path.partition(b"?")
        path = unquote(raw_path.decode("ascii"))
        root = self.root_path
        if root and not (path == root or path.startswith(root + "/")):
            path = root + path  # a redirect's location already carries it
            raw_path = root.encode() + raw_path
        return {
            "type": kind,
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": self.method,
            "scheme": self.scheme,
            "path": path,
            "raw_path": raw_path,
            "root_path": root,
            "query_string": query,
            "headers": [(k.lower(), v) for k, v in self.headers],
            "client": ("testclient", 50000),
            "server": (self.host, self.port or _DEFAULT_PORTS.get(self.scheme, 80)),
            "state": state,
            "extensions": {},
        }


@dataclass(slots=True)
class ResponseParts:
    """What the app sent: status, raw headers, the body chunks joined."""

    status: int
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""


class AppCall:
    """One ASGI HTTP call: feeds the request body, collects and checks what the app sends.

    The body goes to the app chunk by chunk as the client produced it, so an app that
    streams (a multipart upload) is exercised as under a server.
    """

    def __init__(self, app: ASGIApp, scope: Scope, body: Sequence[bytes]) -> None:
        self.app = app
        self.scope = scope
        self._chunks = [chunk for chunk in body if chunk]
        self._next = 0
        self._body_sent = False
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.complete = anyio.Event()

    async def run(self, raise_server_exceptions: bool) -> ResponseParts:
        """Call the app to its end (its background tasks included); re-raise its first
        error when asked, else answer 500 for a response that never started."""
        errors: list[BaseException] = []
        self.scope[ERRORS_KEY] = errors  # the app appends handler and task errors here
        try:
            await self.app(self.scope, self.receive, self.send)
        except Exception as exc:
            errors.insert(0, exc)
        finally:
            self.complete.set()
        if errors and raise_server_exceptions:
            raise errors[0]
        if self.status is None:
            if raise_server_exceptions:
                raise RuntimeError("The app returned without starting a response")
            return ResponseParts(500)
        return ResponseParts(self.status, self.headers, b"".join(self.chunks))

    async def receive(self) -> Message:
        """The body's chunks, the last with ``more_body`` False; then, once the response
        is complete, ``http.disconnect``."""
        if not self._body_sent:
            index = self._next
            self._next += 1
            more = self._next < len(self._chunks)
            self._body_sent = not more
            chunk = self._chunks[index] if index < len(self._chunks) else b""
            return {"type": "http.request", "body": chunk, "more_body": more}
        await self.complete.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        """Collect the response, refusing messages out of the ASGI order."""
        kind = message["type"]
        if kind == "http.response.start":
            if self.status is not None:
                raise RuntimeError("The app sent http.response.start twice")
            self.status = int(message["status"])
            self.headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", ())]
        elif kind == "http.response.body":
            if self.status is None:
                raise RuntimeError("The app sent http.response.body before http.response.start")
            if self.complete.is_set():
                raise RuntimeError("The app sent http.response.body after the response completed")
            self.chunks.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                self.complete.set()
        else:
            raise RuntimeError(f"Unexpected ASGI message {kind!r} on an HTTP connection")
