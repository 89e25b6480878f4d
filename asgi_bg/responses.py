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
import re
import stat
import uuid
from collections.abc import AsyncGenerator, AsyncIterable, Collection, Iterable, Iterator, Mapping
from contextlib import aclosing
from email.utils import format_datetime, formatdate
from http.cookies import CookieError, SimpleCookie
from typing import Any, Literal
from urllib.parse import quote

import anyio
import anyio.to_thread

from ._context import CONTEXT_KEY, RequestContext
from ._ranges import Part, Unsatisfiable, content_range, multipart, requested_ranges
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
    # False for responses whose length is not known up front (streamed, files).
    body_has_length = True

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
        self.body = body = self.render(content)
        # PERF: the headers are built here, not in a helper method: one Python call less
        # on every response object (~600 of a ~37,000-instruction /hello, callgrind).
        raw: list[tuple[bytes, bytes]] = []
        present: Collection[bytes] = ()
        if headers:
            raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
            present = {k for k, _ in raw}
        # RFC 9110 section 8.6: no content-length on 1xx and 204 responses, nor on a 304,
        # where it would claim the length of the body that was not sent.
        if (
            self.body_has_length
            and b"content-length" not in present
            and not (status_code < 200 or status_code in (204, 304))
        ):
            raw.append((b"content-length", str(len(body)).encode()))
        if b"content-type" not in present and self.media_type is not None:
            raw.append(content_type_header(self.media_type, self.charset))
        self.raw_headers = raw

    def render(self, content: Any) -> bytes:
        """Turn ``content`` into the body bytes."""
        if content is None:
            return b""
        if isinstance(content, bytes | memoryview):
            return bytes(content)
        return str(content).encode(self.charset)

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
        partitioned: bool = False,
    ) -> None:
        """Add a ``set-cookie`` header.

        Raises ``ValueError`` when the name is not an RFC 6265 token, or ``path``,
        ``domain``, ``expires`` or ``samesite`` would add attributes of their own
        (``path="/; Domain=evil.com"``). The value is quoted as the standard library does.
        """
        cookie = _new_cookie(key, value)
        morsel = cookie[key]
        if max_age is not None:
            morsel["max-age"] = max_age
        if expires is not None:
            morsel["expires"] = _cookie_attribute("expires", _cookie_expires(expires))
        if path is not None:
            morsel["path"] = _cookie_attribute("path", path)
        if domain is not None:
            morsel["domain"] = _cookie_domain(domain)
        if samesite is not None:
            morsel["samesite"] = _cookie_samesite(samesite)
        morsel["secure"] = secure
        morsel["httponly"] = httponly
        header = cookie.output(header="").strip()
        if partitioned:
            # Added by hand: http.cookies knows the attribute only from Python 3.14.
            header += "; Partitioned"
        self.raw_headers.append((b"set-cookie", header.encode("latin-1")))

    def delete_cookie(
        self,
        key: str,
        path: str = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: Literal["lax", "strict", "none"] | None = "lax",
        partitioned: bool = False,
    ) -> None:
        """Ask the client to forget a cookie."""
        self.set_cookie(key, "", 0, 0, path, domain, secure, httponly, samesite, partitioned)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # PERF: the context is looked up here rather than through a helper method: one
        # Python call less on every request that returns a response object.
        context: RequestContext | None = scope.get(CONTEXT_KEY)
        if context is not None:
            # The body goes out in one message: start and end are reported at once.
            context.response_started(self.background, whole=True)
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
            pass  # ASGI 2.4: the client is gone; the handler succeeded, so tasks still run
        if context is None:
            await _run_detached_background(self.background)


def _report_start(response: Response, scope: Scope, send: Send) -> tuple[Send, bool]:
    """Tell the request's context that ``response`` starts, handing it the ``background``.

    Returns the ``send`` to use (reporting the end of a streamed body) and whether the
    context took the background; outside an asgi_bg ``App`` the caller runs it itself,
    after the body.
    """
    context: RequestContext | None = scope.get(CONTEXT_KEY)
    if context is None:
        return send, response.background is None
    context.response_started(response.background)
    return context.tracking(send), True


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


# RFC 6265 section 4.1.1: a cookie name is a token; path and expires values are any
# CHAR but controls and ";"; a domain is a host name (letters, digits, "-", ".").
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_ATTRIBUTE_VALUE = re.compile(r"[\x20-\x3a\x3c-\x7e]*")
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?"
_DOMAIN = re.compile(rf"\.?{_LABEL}(?:\.{_LABEL})*")
_SAMESITE = frozenset({"lax", "strict", "none"})


def _new_cookie(key: str, value: str) -> SimpleCookie:
    if _TOKEN.fullmatch(key) is None:
        raise ValueError(f"cookie name {key!r} is not a valid RFC 6265 token")
    # http.cookies quotes ";", controls and non-ASCII Latin-1 in the value itself;
    # beyond Latin-1 the header cannot carry the character at all.
    if any(ord(char) > 0xFF for char in value):
        raise ValueError("a cookie value holds Latin-1 characters only: encode it first")
    cookie: SimpleCookie = SimpleCookie()
    try:
        cookie[key] = value
    except CookieError as exc:  # a reserved name such as "path" or "expires"
        raise ValueError(f"cookie name {key!r}: {exc}") from None
    return cookie


def _cookie_attribute(name: str, value: str) -> str:
    if _ATTRIBUTE_VALUE.fullmatch(value) is None:
        raise ValueError(f"cookie {name} {value!r} holds ';' or a control character")
    return value


def _cookie_domain(domain: str) -> str:
    if _DOMAIN.fullmatch(domain) is None:
        raise ValueError(f"cookie domain {domain!r} is not a host name")
    return domain


def _cookie_samesite(samesite: str) -> str:
    if samesite.lower() not in _SAMESITE:
        raise ValueError(f"cookie samesite {samesite!r} must be 'lax', 'strict' or 'none'")
    return samesite


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


# PERF: the C encoder is made once; ``JSONEncoder.encode`` makes a new one, and a
# closure, on every call (~4,000 instructions of a 70,000-instruction /items, callgrind).
# No circular-reference markers: a shared markers dict would keep stale ids after an
# error; a cycle ends in RecursionError instead of ValueError, a 500 either way.
_make_encoder = getattr(json.encoder, "c_make_encoder", None)  # None without CPython's _json
_c_encode = (
    None
    if _make_encoder is None
    else _make_encoder(
        None, json_default, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )
)
_encoder = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=json_default
)


def encode_json(content: Any) -> bytes:
    """Compact UTF-8 JSON, as ``JSONResponse`` sends it."""
    if _c_encode is None:
        return _encoder.encode(content).encode("utf-8")
    return "".join(_c_encode(content, 0)).encode("utf-8")


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


# What a redirect's path keeps as it is: RFC 3986 ``pchar`` and "/", without "%", so a
# decoded path is encoded again whole ("%41" in a path goes out as "%2541").
_PATH_SAFE = "/:@!$&'()*+,;=~"
_QUERY_SAFE = _PATH_SAFE + "?%"  # the query string arrives still encoded


def local_redirect(path: str, query_string: bytes = b"") -> RedirectResponse:
    """A 307 to ``path`` (a decoded path) on this origin; 404 if it would leave it.

    A location starting with "//" is a host to a browser (and "/\\" too, since browsers
    read a backslash as a slash): such a path, which only a hostile link produces, is
    answered 404. The backslash and every control character are percent-encoded.
    """
    location = quote(path, safe=_PATH_SAFE)
    if not location.startswith("/") or location.startswith("//"):
        raise HTTPException(404)
    if query_string:
        location += "?" + quote(query_string, safe=_QUERY_SAFE)
    return RedirectResponse(location)


class StreamingResponse(Response):
    """Send the body as it is produced by an async or sync iterable.

    ``content`` (required) is an ``AsyncIterable`` or ``Iterable`` of ``str`` or
    ``bytes``; the other arguments are ``Response``'s. Sync iterables are read in a
    worker thread, so a blocking generator never stalls the loop. If the client
    disconnects, the iteration stops; background tasks still run.
    """

    body_iterator: AsyncIterable[str | bytes] | Iterable[str | bytes]
    body_has_length = False

    def render(self, content: Any) -> bytes:
        """Keep ``content`` to iterate when the response is sent; no body up front."""
        if content is None:
            raise TypeError("StreamingResponse needs content: an iterable of str or bytes")
        self.body_iterator = content
        return b""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        send, handed_over = _report_start(self, scope, send)
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
    """Send a file in chunks, with ``content-length``, ``last-modified``, ``etag`` and
    ``accept-ranges``; a ``Range`` request gets those bytes (206, or 416 if none exist).

    A missing file answers 404. ``filename`` adds a ``content-disposition`` header of
    ``content_disposition_type``; ``stat_result`` saves a ``stat`` call when known.
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
        stat_result: os.stat_result | None = None,
        content_disposition_type: str = "attachment",
    ) -> None:
        self.path = os.fspath(path)
        self.filename = filename
        self.stat_result = stat_result
        if media_type is None:
            guessed = mimetypes.guess_type(filename or self.path)[0]
            media_type = guessed or "application/octet-stream"
        super().__init__(None, status_code, headers, media_type, background)
        extra = [(b"accept-ranges", b"bytes")]
        if filename is not None:
            extra.append(_content_disposition(content_disposition_type, filename))
        if stat_result is not None:
            extra += _file_headers(stat_result)
        self._add_missing(extra)

    body_has_length = False  # added from the file's size

    def _add_missing(self, headers: list[tuple[bytes, bytes]]) -> None:
        # The caller's own headers win, as with Starlette's setdefault.
        present = {k for k, _ in self.raw_headers}
        self.raw_headers += [(k, v) for k, v in headers if k not in present]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.stat_result is None:
            self.stat_result = await self._stat()
            self._add_missing(_file_headers(self.stat_result))
        plan = self._plan(scope, self.stat_result.st_size)
        head_only = scope.get("method") == "HEAD"
        file = None if head_only or not plan.parts else await self._open()
        send, handed_over = _report_start(self, scope, send)
        start = {"type": "http.response.start", "status": plan.status, "headers": plan.headers}
        if file is None:
            await send(start)
            await send(_end_of_body())
        else:
            async with file:
                await send(start)
                await self._send_parts(send, file, plan)
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

    async def _open(self) -> anyio.AsyncFile[bytes]:
        # Opened before the response starts, so a file that cannot be read is a 404.
        try:
            return await anyio.open_file(self.path, "rb")
        except OSError:
            raise HTTPException(404, "File not found") from None

    def _plan(self, scope: Scope, size: int) -> _FilePlan:
        whole = _FilePlan(self.status_code, self.raw_headers, [Part(0, size)], b"")
        if self.status_code != 200 or scope.get("method") not in ("GET", "HEAD"):
            return whole
        request_headers = dict(scope.get("headers", ()))
        header = request_headers.get(b"range")
        if header is None or not self._if_range_holds(request_headers.get(b"if-range")):
            return whole
        try:
            ranges = requested_ranges(header.decode("latin-1"), size)
        except Unsatisfiable:
            headers = [(b"content-range", f"bytes */{size}".encode()), (b"content-length", b"0")]
            return _FilePlan(416, headers, [], b"")
        if ranges is None:
            return whole
        return self._partial(ranges, size)

    def _if_range_holds(self, if_range: bytes | None) -> bool:
        # RFC 9110 section 13.1.5: the range applies only to the representation the
        # client already holds part of; a weak validator never matches.
        if if_range is None:
            return True
        mine = dict(self.raw_headers)
        return if_range in (mine.get(b"etag"), mine.get(b"last-modified"))

    def _partial(self, ranges: list[tuple[int, int]], size: int) -> _FilePlan:
        kept = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        if len(ranges) == 1:
            start, end = ranges[0]
            headers = [*kept, (b"content-range", content_range(start, end, size))]
            headers.append((b"content-length", str(end - start).encode()))
            return _FilePlan(206, headers, [Part(start, end)], b"")
        content_type = dict(kept).pop(b"content-type", b"application/octet-stream")
        body = multipart(ranges, size, content_type)
        headers = [(k, v) for k, v in kept if k != b"content-type"]
        headers += [(b"content-type", body.content_type)]
        headers += [(b"content-length", str(body.length).encode())]
        return _FilePlan(206, headers, body.parts, body.closing)

    async def _send_parts(self, send: Send, file: anyio.AsyncFile[bytes], plan: _FilePlan) -> None:
        for part in plan.parts:
            if part.head and not await _send_unless_gone(send, part.head, more_body=True):
                return
            await file.seek(part.start)
            left = part.end - part.start
            while left > 0:
                chunk = await file.read(min(self.chunk_size, left))
                if not chunk:
                    raise RuntimeError(f"{self.path} is shorter than when it was measured")
                left -= len(chunk)
                if not await _send_unless_gone(send, chunk, more_body=True):
                    return
        await _send_unless_gone(send, plan.closing, more_body=False)


@dataclasses.dataclass(frozen=True, slots=True)
class _FilePlan:
    """What a file response sends: status, headers, the file's parts, a closing line."""

    status: int
    headers: list[tuple[bytes, bytes]]
    parts: list[Part]
    closing: bytes


def _content_disposition(kind: str, filename: str) -> tuple[bytes, bytes]:
    if _TOKEN.fullmatch(kind) is None:
        raise ValueError(f"content_disposition_type {kind!r} is not a token")
    quoted = quote(filename)
    # As Starlette: a name that needs no escaping is sent plain, any other as RFC 5987
    # UTF-8 (quote() escapes '"' and controls, so neither form can break the header).
    if quoted == filename:
        return (b"content-disposition", f'{kind}; filename="{filename}"'.encode("latin-1"))
    return (b"content-disposition", f"{kind}; filename*=utf-8''{quoted}".encode("latin-1"))


def _file_headers(info: os.stat_result) -> list[tuple[bytes, bytes]]:
    etag = hashlib.md5(f"{info.st_mtime}-{info.st_size}".encode(), usedforsecurity=False)
    return [
        (b"content-length", str(info.st_size).encode()),
        (b"last-modified", formatdate(info.st_mtime, usegmt=True).encode()),
        (b"etag", f'"{etag.hexdigest()}"'.encode()),
    ]
