"""Response classes: headers and body are rendered in ``__init__``, sent in ``__call__``."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import functools
import hashlib
import json
import mimetypes
import os
import stat
import uuid
from collections.abc import AsyncGenerator, AsyncIterable, Iterable, Iterator, Mapping
from contextlib import aclosing
from email.utils import format_datetime, formatdate
from http.cookies import SimpleCookie
from typing import Any, Literal
from urllib.parse import quote

import anyio
import anyio.to_thread

from ._context import CONTEXT_KEY
from ._types import Receive, Scope, Send
from .background import BackgroundTask, BackgroundTasks
from .datastructures import MutableHeaders
from .exceptions import HTTPException

Background = BackgroundTask | BackgroundTasks | None


def _end_of_body() -> dict[str, Any]:
    # A new dict each time: middleware (gzip, for one) edits the messages it forwards.
    return {"type": "http.response.body", "body": b"", "more_body": False}


class Response:
    """A response whose whole body is known up front.

    Args:
        content: ``bytes`` or ``str`` (encoded with ``charset``).
        status_code: the HTTP status.
        headers: extra headers; ``content-length`` and ``content-type`` are added.
        media_type: the ``content-type`` (defaults to the class' ``media_type``).
        background: a ``BackgroundTask`` or ``BackgroundTasks`` run after the response,
            after the request's injected tasks.
    """

    media_type: str | None = None
    charset = "utf-8"

    def __init__(
        self,
        content: Any = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: Background = None,
    ) -> None:
        self.status_code = status_code
        if media_type is not None:
            self.media_type = media_type
        self.background = background
        self.body = self.render(content)
        self.raw_headers = self._init_headers(headers)

    def render(self, content: Any) -> bytes:
        """Turn ``content`` into the body bytes."""
        if content is None:
            return b""
        if isinstance(content, bytes | memoryview):
            return bytes(content)
        return str(content).encode(self.charset)

    def _init_headers(self, headers: Mapping[str, str] | None) -> list[tuple[bytes, bytes]]:
        raw: list[tuple[bytes, bytes]] = []
        present: set[bytes] = set()
        if headers:
            raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
            present = {k for k, _ in raw}
        if b"content-length" not in present and self._has_length():
            raw.append((b"content-length", str(len(self.body)).encode()))
        if b"content-type" not in present and self.media_type is not None:
            raw.append(content_type_header(self.media_type, self.charset))
        return raw

    def _has_length(self) -> bool:
        # RFC 9110 section 8.6: no content-length on 1xx and 204 responses.
        return not (self.status_code < 200 or self.status_code == 204)

    @property
    def headers(self) -> MutableHeaders:
        """The response headers, editable until the response is sent."""
        headers = MutableHeaders.__new__(MutableHeaders)
        headers.raw = self.raw_headers
        headers._items = None
        return headers

    def set_cookie(
        self,
        key: str,
        value: str = "",
        max_age: int | None = None,
        expires: datetime.datetime | str | int | None = None,
        path: str | None = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: Literal["lax", "strict", "none"] | None = "lax",
    ) -> None:
        """Add a ``set-cookie`` header."""
        cookie: SimpleCookie = SimpleCookie()
        cookie[key] = value
        morsel = cookie[key]
        if max_age is not None:
            morsel["max-age"] = max_age
        if expires is not None:
            morsel["expires"] = _cookie_expires(expires)
        for attr, val in (("path", path), ("domain", domain), ("samesite", samesite)):
            if val is not None:
                morsel[attr] = val
        morsel["secure"] = secure
        morsel["httponly"] = httponly
        self.raw_headers.append((b"set-cookie", cookie.output(header="").strip().encode("latin-1")))

    def delete_cookie(
        self,
        key: str,
        path: str = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: Literal["lax", "strict", "none"] | None = "lax",
    ) -> None:
        """Ask the client to forget a cookie."""
        self.set_cookie(key, "", 0, 0, path, domain, secure, httponly, samesite)

    def hand_over_background(self, scope: Scope) -> bool:
        """Tell the app the response starts and give it ``background`` to run afterwards.

        Returns False when not served by an asgi_bg ``App``: the caller then runs the
        background itself, after the body.
        """
        context = scope.get(CONTEXT_KEY)
        if context is None:
            return self.background is None
        context.response_started(self.background)
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handed_over = self.hand_over_background(scope)
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            await send({"type": "http.response.body", "body": self.body})
        except OSError:
            return  # ASGI 2.4: the client is gone; the handler succeeded, so tasks still run
        if handed_over and CONTEXT_KEY in scope:
            scope[CONTEXT_KEY].body_sent()
        if not handed_over:
            await _run_detached_background(self.background)


def _reporting(scope: Scope, send: Send) -> Send:
    """``send`` reporting the end of a streamed body to the request's context, if any."""
    context = scope.get(CONTEXT_KEY)
    return send if context is None else context.tracking(send)


async def _run_detached_background(background: Background) -> None:
    # Served by some other framework (a response object used on its own): no runner,
    # so run the tasks here, after the body, as Starlette would.
    if background is not None:
        await background()


@functools.cache
def content_type_header(media_type: str, charset: str) -> tuple[bytes, bytes]:
    """The ``content-type`` header for a media type; text types get the charset."""
    if media_type.startswith("text/") and "charset=" not in media_type:
        media_type = f"{media_type}; charset={charset}"
    return (b"content-type", media_type.encode("latin-1"))


def _cookie_expires(expires: datetime.datetime | str | int) -> str:
    if isinstance(expires, datetime.datetime):
        return format_datetime(expires, usegmt=True)
    if isinstance(expires, int):
        return formatdate(datetime.datetime.now(datetime.UTC).timestamp() + expires, usegmt=True)
    return expires


class PlainTextResponse(Response):
    """``text/plain`` response."""

    media_type = "text/plain"


class HTMLResponse(Response):
    """``text/html`` response."""

    media_type = "text/html"


def json_default(obj: Any) -> Any:
    """Encode what ``json`` cannot: dataclasses, UUIDs, dates, enums, sets, bytes."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, uuid.UUID | datetime.date | datetime.time):
        return obj.isoformat() if not isinstance(obj, uuid.UUID) else str(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    if isinstance(obj, bytes):
        return obj.decode("utf-8")
    return _json_default_more(obj)


def _json_default_more(obj: Any) -> Any:
    """Decimal and timedelta as FastAPI's encoder writes them; a pydantic model by its
    own ``model_dump`` (told by the method, so pydantic is never imported here)."""
    if isinstance(obj, decimal.Decimal):
        return int(obj) if obj == obj.to_integral_value() else float(obj)
    if isinstance(obj, datetime.timedelta):
        return obj.total_seconds()
    if callable(getattr(obj, "model_dump", None)):
        return obj.model_dump(mode="json")
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


_json_encoder = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=json_default
)


def encode_json(content: Any) -> bytes:
    """Compact UTF-8 JSON, as ``JSONResponse`` sends it."""
    return _json_encoder.encode(content).encode("utf-8")


class JSONResponse(Response):
    """``application/json`` response; ``content`` may hold dataclasses, UUIDs, dates, enums."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Encode ``content`` as compact UTF-8 JSON."""
        return encode_json(content)


class RedirectResponse(Response):
    """Redirect to ``url`` (307 by default, so the method and body are kept)."""

    def __init__(
        self,
        url: str,
        status_code: int = 307,
        headers: Mapping[str, str] | None = None,
        background: Background = None,
    ) -> None:
        super().__init__(b"", status_code, headers, background=background)
        location = quote(str(url), safe=":/%#?=@[]!$&'()*+,;")
        self.raw_headers.append((b"location", location.encode("latin-1")))


class StreamingResponse(Response):
    """Send the body as it is produced by an async or sync iterable.

    Sync iterables are read in a worker thread, so a blocking generator never stalls the
    loop. If the client disconnects, the iteration stops; background tasks still run.
    """

    def __init__(
        self,
        content: AsyncIterable[str | bytes] | Iterable[str | bytes],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: Background = None,
    ) -> None:
        self.body_iterator = content
        super().__init__(None, status_code, headers, media_type, background)

    def _has_length(self) -> bool:
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handed_over = self.hand_over_background(scope)
        send = _reporting(scope, send)
        if await self._send_start(send):
            await self._stream_with_disconnect_watch(receive, send)
        if not handed_over:
            await _run_detached_background(self.background)

    async def _send_start(self, send: Send) -> bool:
        headers = self.raw_headers
        try:
            await send(
                {"type": "http.response.start", "status": self.status_code, "headers": headers}
            )
        except OSError:
            return False  # the client is gone before the first byte
        return True

    async def _stream_with_disconnect_watch(self, receive: Receive, send: Send) -> None:
        failure: Exception | None = None
        async with anyio.create_task_group() as group:
            group.start_soon(_cancel_on_disconnect, receive, group.cancel_scope)
            try:
                await self._stream_body(send)
            except Exception as exc:
                failure = exc  # raised as itself below: the task group would wrap it in a group
            group.cancel_scope.cancel()
        if failure is not None:
            raise failure

    async def _stream_body(self, send: Send) -> None:
        # Closed however the loop ends (a disconnect cancels it midway), so the body's
        # generator is finalised now, not by the garbage collector (trio warns then).
        async with aclosing(_aiterate(self.body_iterator)) as chunks:
            async for chunk in chunks:
                data = chunk.encode(self.charset) if isinstance(chunk, str) else chunk
                if not await _send_unless_gone(send, data, more_body=True):
                    return
        await _send_unless_gone(send, b"", more_body=False)


async def _send_unless_gone(send: Send, body: bytes, *, more_body: bool) -> bool:
    """Send a body chunk; False if the client is gone (ASGI 2.4: ``send`` raises OSError).

    Only ``send`` is guarded: an OSError from the body iterator is the app's own error.
    """
    try:
        await send({"type": "http.response.body", "body": body, "more_body": more_body})
    except OSError:
        return False
    return True


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return


async def _aiterate(content: AsyncIterable[Any] | Iterable[Any]) -> AsyncGenerator[Any, None]:
    if isinstance(content, AsyncIterable):
        try:
            async for chunk in content:
                yield chunk
        finally:
            if isinstance(content, AsyncGenerator):
                await content.aclose()
        return
    iterator = iter(content)
    while True:
        chunk = await anyio.to_thread.run_sync(_next_or_stop, iterator)
        if chunk is _STOP:
            return
        yield chunk


_STOP: Any = object()


def _next_or_stop(iterator: Iterator[Any]) -> Any:
    # StopIteration cannot cross a thread boundary into a coroutine; use a sentinel.
    return next(iterator, _STOP)


class FileResponse(Response):
    """Send a file in chunks, with ``content-length``, ``last-modified`` and ``etag``.

    A missing file answers 404. ``filename`` adds a ``content-disposition`` header.
    """

    chunk_size = 64 * 1024

    def __init__(
        self,
        path: str | os.PathLike[str],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: Background = None,
        filename: str | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.filename = filename
        if media_type is None:
            media_type = mimetypes.guess_type(filename or self.path)[0] or "text/plain"
        super().__init__(None, status_code, headers, media_type, background)
        if filename is not None:
            disposition = f"attachment; filename*=utf-8''{quote(filename)}"
            self.raw_headers.append((b"content-disposition", disposition.encode("latin-1")))

    def _has_length(self) -> bool:
        return False  # added from the file's size when sent

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        info = await self._stat()
        handed_over = self.hand_over_background(scope)
        send = _reporting(scope, send)
        headers = self.raw_headers + _file_headers(info)
        await send({"type": "http.response.start", "status": self.status_code, "headers": headers})
        if scope.get("method") == "HEAD":
            await send(_end_of_body())
        else:
            await self._send_chunks(send)
        if not handed_over:
            await _run_detached_background(self.background)

    async def _stat(self) -> os.stat_result:
        try:
            info = await anyio.to_thread.run_sync(os.stat, self.path)
        except (OSError, ValueError):
            # Missing, a file used as a folder, a name too long, a NUL byte, no access:
            # from outside, all of them are a file that is not there.
            raise HTTPException(404, "File not found") from None
        if not stat.S_ISREG(info.st_mode):
            raise HTTPException(404, "File not found")
        return info

    async def _send_chunks(self, send: Send) -> None:
        async with await anyio.open_file(self.path, "rb") as file:
            while chunk := await file.read(self.chunk_size):
                if not await _send_unless_gone(send, chunk, more_body=True):
                    return
        await _send_unless_gone(send, b"", more_body=False)


def _file_headers(info: os.stat_result) -> list[tuple[bytes, bytes]]:
    etag = hashlib.md5(f"{info.st_mtime}-{info.st_size}".encode(), usedforsecurity=False)
    return [
        (b"content-length", str(info.st_size).encode()),
        (b"last-modified", formatdate(info.st_mtime, usegmt=True).encode()),
        (b"etag", f'"{etag.hexdigest()}"'.encode()),
    ]
