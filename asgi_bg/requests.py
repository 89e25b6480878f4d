"""The incoming request: everything is parsed lazily, at most once."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from http.cookies import _unquote
from typing import TYPE_CHECKING, Any

import anyio

from ._convert import finite_float
from ._types import Message, Receive, Scope
from .datastructures import URL, Address, Headers, QueryParams
from .exceptions import HTTPException
from .forms import FormLimits, close_with_request, read_form
from .uploads import FormData

if TYPE_CHECKING:
    from .applications import App


class State:
    """A plain attribute bag (``app.state``, ``request.state``)."""

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        self.__dict__.update(state or {})

    def __repr__(self) -> str:
        return f"State({self.__dict__!r})"

    if TYPE_CHECKING:
        # Any attribute may be set and read, and type-checks as such (``app.state.db``).
        def __getattr__(self, name: str) -> Any: ...

        def __setattr__(self, name: str, value: Any) -> None: ...


class ClientDisconnect(Exception):
    """The client went away while the request body was being read."""


_MISSING: Any = object()


class HTTPConnection:
    """What an HTTP request and a WebSocket share: headers, query, cookies, path
    parameters, URL, client, state and app, each computed on first access."""

    __slots__ = ("_cookies", "_headers", "_query", "_url", "scope")

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self._headers: Headers | None = None
        self._query: QueryParams | None = None
        self._cookies: dict[str, str] | None = None
        self._url: URL | None = None

    @property
    def headers(self) -> Headers:
        """Case-insensitive request headers."""
        if self._headers is None:
            self._headers = Headers(self.scope.get("headers", ()))
        return self._headers

    @property
    def query_params(self) -> QueryParams:
        """Multi-valued query parameters."""
        if self._query is None:
            self._query = QueryParams(self.scope.get("query_string", b""))
        return self._query

    @property
    def path_params(self) -> dict[str, Any]:
        """Path parameters, already converted by the route's converters."""
        params: dict[str, Any] = self.scope.get("path_params", {})
        return params

    @property
    def cookies(self) -> dict[str, str]:
        """Cookies sent in the ``Cookie`` header(s)."""
        if self._cookies is None:
            self._cookies = parse_cookie_header("; ".join(self.headers.getlist("cookie")))
        return self._cookies

    @property
    def url(self) -> URL:
        """The full URL the client asked for."""
        if self._url is None:
            self._url = URL.from_scope(self.scope, self.headers)
        return self._url

    @property
    def client(self) -> Address | None:
        """The peer address, when the server reports it."""
        client = self.scope.get("client")
        return Address(client[0], client[1]) if client else None

    @property
    def state(self) -> State:
        """Per-request attribute bag, shared with middleware through the scope."""
        state = self.scope.get("asgi_bg.state")
        if state is None:
            state = self.scope["asgi_bg.state"] = State(self.scope.get("state"))
        return state

    @property
    def app(self) -> App:
        """The application serving this request."""
        return self.scope["app"]  # type: ignore[no-any-return]


class Request(HTTPConnection):
    """One HTTP request. Headers, query, cookies, URL and body are computed on first access."""

    __slots__ = ("_body", "_form", "_json", "_pending", "_receive", "_stream_consumed")

    def __init__(self, scope: Scope, receive: Receive | None = None) -> None:
        # PERF: the base's fields set here, not through super().__init__ (one call less
        # on every request that reads its parameters).
        self.scope = scope
        self._headers = None
        self._query = None
        self._cookies = None
        self._url = None
        self._receive = receive if receive is not None else _no_body
        self._body: bytes | None = None
        self._json: Any = _MISSING
        self._form: FormData | None = None
        self._stream_consumed = False
        self._pending: list[Message] = []  # received by is_disconnected(), not yet read

    @property
    def method(self) -> str:
        """The request method, upper case."""
        return str(self.scope["method"])

    async def stream(self) -> AsyncGenerator[bytes, None]:
        """Yield the body as it arrives; raises ``ClientDisconnect`` if the client leaves."""
        if self._body is not None:
            yield self._body
            return
        if self._stream_consumed:
            raise RuntimeError("The request body was already streamed")
        self._stream_consumed = True
        while True:
            message = self._pending.pop(0) if self._pending else await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect
            chunk = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return

    async def body(self) -> bytes:
        """The whole body, read once and cached."""
        if self._body is None:
            self._body = b"".join([chunk async for chunk in self.stream()])
        return self._body

    async def json(self) -> Any:
        """The body decoded as JSON; malformed JSON answers 422 ``loc: ["body"]``."""
        if self._json is _MISSING:
            body = await self.body()
            try:
                self._json = loads_json(body)
            except ValueError as exc:
                raise HTTPException(422, _json_error(exc)) from None
        return self._json

    async def form(
        self,
        *,
        max_files: int = 1000,
        max_fields: int = 1000,
        max_part_size: int = 1024 * 1024,
    ) -> FormData:
        """The body parsed as a form (multipart or urlencoded), read once and cached.

        Needs the ``forms`` extra. Uploaded files stay open for the request's background
        tasks and teardowns and are closed after them. Past a limit the request is
        answered 413; a malformed body 400. Other content types give an empty form.
        """
        if self._form is None:
            limits = FormLimits(max_files, max_fields, max_part_size)
            self._form = await read_form(self, limits)
            close_with_request(self.scope, self._form)
        return self._form

    def parsed_form(self) -> FormData:
        """The form ``form()`` already parsed (the injector reads fields from it)."""
        assert self._form is not None, "form() was not awaited"
        return self._form

    async def is_disconnected(self) -> bool:
        """True once the client has gone away (checks without waiting)."""
        if any(m["type"] == "http.disconnect" for m in self._pending):
            return True
        with anyio.CancelScope() as scope:
            scope.cancel()
            message = await self._receive()
            # A body message must not be lost: stream() and body() read it later.
            self._pending.append(message)
            return bool(message["type"] == "http.disconnect")
        return False


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads_json(data: bytes) -> Any:
    """Decode a JSON body strictly: ``NaN`` and ``Infinity`` are not JSON (RFC 8259 6).

    Raises ValueError for anything that is not usable JSON, so it answers 422: also for
    nesting too deep for the decoder (a RecursionError otherwise) and for a string with
    a lone surrogate escape such as ``"\\ud800"`` (RFC 8259 8.2), which no response could
    encode back into UTF-8.
    """
    try:
        value = json.loads(data, parse_constant=_reject_constant, parse_float=finite_float)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    # PERF: only a body with a \u escape can hold a surrogate; others skip the walk.
    if b"\\u" in data:
        _reject_surrogates(value)
    return value


def _reject_surrogates(value: Any) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("a string holds a lone surrogate escape") from None
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _json_error(exc: ValueError) -> list[dict[str, Any]]:
    return [{"loc": ["body"], "msg": f"JSON decode error: {exc}", "type": "json_invalid"}]


def parse_cookie_header(header: str) -> dict[str, str]:
    """Parse a ``Cookie`` header leniently, like browsers send it (RFC 6265 section 5.4)."""
    cookies: dict[str, str] = {}
    for chunk in header.split(";"):
        key, sep, value = chunk.partition("=")
        key, value = (key.strip(), value.strip()) if sep else ("", chunk.strip())
        if key or value:
            cookies[key] = _unquote(value)
    return cookies


async def _no_body() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}
