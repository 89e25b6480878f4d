"""Test clients on httpx: ``TestClient`` is an ``httpx.Client``, ``AsyncTestClient`` an
``httpx.AsyncClient``, both calling any ASGI app in-process.

A call returns once the ASGI call has finished, so an asgi_bg app's background tasks
have run. With ``raise_server_exceptions=True`` the first exception of the handler or of
a task is raised in the test as itself, after the remaining tasks ran. ``with`` (or
``async with``) runs the app's lifespan. Needs the ``testing`` extra
(``pip install 'asgi_bg[testing]'``); ``httpx2`` is used when installed, else ``httpx``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any

import anyio
from anyio.from_thread import BlockingPortal, start_blocking_portal

from ._lifespan import LifespanDriver
from ._testing_transport import AppCall, RequestTarget, ResponseParts
from ._types import ASGIApp, Scope
from ._ws_testclient import AsyncWebSocketSession, WebSocketTestSession, websocket_scope
from ._ws_testclient import WebSocketDenialResponse as WebSocketDenialResponse  # noqa: PLC0414


def import_httpx() -> ModuleType:
    """``httpx2`` when installed (Starlette 1.x's choice: httpx's maintained successor),
    else ``httpx``; an ``ImportError`` naming the extra when neither is."""
    for name in ("httpx2", "httpx"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError(
        "asgi_bg.testing needs httpx: install the extra with pip install 'asgi_bg[testing]'"
    )


if TYPE_CHECKING:
    import httpx
else:
    httpx = import_httpx()

__all__ = ["AsyncTestClient", "TestClient", "TestResponse", "WebSocketDenialResponse"]


if TYPE_CHECKING:
    TestResponse = httpx.Response
else:

    class TestResponse(httpx.Response):
        """What a call returns: an ``httpx.Response`` (``status_code``, ``headers``,
        ``json()``, ``cookies``, ``url`` as ``http://testserver/...``...)."""

        __test__ = False  # not a pytest test class


logger = logging.getLogger("asgi_bg.testing")

Backend = str  # "asyncio" or "trio"


class _Options:
    """What both clients' transports need to build a call."""

    def __init__(self, app: ASGIApp, raise_server_exceptions: bool, root_path: str) -> None:
        self.app = app
        self.raise_server_exceptions = raise_server_exceptions
        self.root_path = root_path
        self.lifespan: LifespanDriver | None = None

    def scope(self, request: httpx.Request) -> Scope:
        """The ASGI HTTP scope of ``request``, with a copy of the lifespan state."""
        state = dict(self.lifespan.state) if self.lifespan is not None else {}
        target = RequestTarget(
            method=request.method,
            scheme=request.url.scheme,
            host=request.url.host,
            port=request.url.port,
            raw_path=request.url.raw_path,
            headers=request.headers.raw,
            root_path=self.root_path,
        )
        return target.scope(state)

    async def call(self, request: httpx.Request, body: list[bytes]) -> httpx.Response:
        """Run the app for ``request``; the response once the call (and its tasks) ended."""
        call = AppCall(self.app, self.scope(request), body)
        parts = await call.run(self.raise_server_exceptions)
        return _response(parts, request)


class _InProcess:
    """What both clients add to httpx's: the app, and the scope a request would get."""

    _asgi: _Options

    @property
    def app(self) -> ASGIApp:
        """The app under test."""
        return self._asgi.app

    def _scope_for(self, url: str, headers: Mapping[str, str] | None = None) -> Scope:
        """The HTTP scope of ``GET url`` with the client's headers and cookies: where a
        WebSocket session (``websocket_connect``) starts from."""
        assert isinstance(self, httpx.Client | httpx.AsyncClient)
        return self._asgi.scope(self.build_request("GET", url, headers=headers))

    def _websocket(
        self, url: str, subprotocols: Sequence[str] | None, headers: Mapping[str, str] | None
    ) -> AsyncWebSocketSession:
        scope = websocket_scope(self._scope_for(url, headers), subprotocols)
        return AsyncWebSocketSession(
            self.app, scope, raise_server_exceptions=self._asgi.raise_server_exceptions
        )


def _response(parts: ResponseParts, request: httpx.Request) -> httpx.Response:
    return TestResponse(
        parts.status, headers=parts.headers, stream=httpx.ByteStream(parts.body), request=request
    )


def _cookie_header(
    jar: httpx.Cookies, cookies: httpx._types.CookieTypes | None, headers: Any
) -> Any:
    """Per-request ``cookies=`` sent with the client's own, as the earlier client did.

    httpx deprecates per-request cookies (it warns); the merged ``Cookie`` header keeps
    the promise without the warning, and nothing is stored in the client's jar.
    """
    if cookies is None:
        return headers
    merged = httpx.Cookies(jar)
    merged.update(cookies)
    pairs = "; ".join(f"{cookie.name}={cookie.value}" for cookie in merged.jar)
    return {**dict(httpx.Headers(headers or {})), "cookie": pairs}


class _SyncTransport(httpx.BaseTransport):
    """Hands each request to the client's event loop through its blocking portal."""

    def __init__(self, client: TestClient) -> None:
        self._client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = list(request.stream)  # type: ignore[arg-type]
        with self._client.portal() as portal:
            return portal.call(self._client._asgi.call, request, body)


class _AsyncTransport(httpx.AsyncBaseTransport):
    """Calls the app on the test's own event loop."""

    def __init__(self, options: _Options) -> None:
        self._options = options

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = [chunk async for chunk in request.stream]  # type: ignore[union-attr]
        return await self._options.call(request, body)


class TestClient(_InProcess, httpx.Client):
    """A synchronous ``httpx.Client`` calling ``app`` in-process; ``with`` runs the lifespan.

    Args:
        app: any ASGI 3 app.
        raise_server_exceptions: re-raise the app's (or a background task's) first error.
        base_url: scheme, host and port the requests claim to be sent to.
        root_path: the ``root_path`` a proxy or mount would set (the path includes it).
        backend: the event loop the app runs on, ``"asyncio"`` or ``"trio"``.
        cookies, headers: sent with every request; cookies the app sets are kept.
        follow_redirects: follow 3xx answers (per request: ``follow_redirects=``).
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        app: ASGIApp,
        raise_server_exceptions: bool = True,
        base_url: str = "http://testserver",
        *,
        root_path: str = "",
        backend: Backend = "asyncio",
        cookies: httpx._types.CookieTypes | None = None,
        headers: Mapping[str, str] | None = None,
        follow_redirects: bool = True,
    ) -> None:
        self._asgi = _Options(app, raise_server_exceptions, root_path)
        self.backend = backend
        self._portal: BlockingPortal | None = None
        self._exit: Any = None
        super().__init__(
            base_url=base_url,
            headers={"user-agent": "testclient", **(headers or {})},
            cookies=cookies,
            follow_redirects=follow_redirects,
            transport=_SyncTransport(self),
        )

    def request(self, method: str, url: httpx._types.URLTypes, **kwargs: Any) -> httpx.Response:
        """Send one request; ``cookies=`` adds to the client's cookies for this call only."""
        kwargs["headers"] = _cookie_header(
            self.cookies, kwargs.pop("cookies", None), kwargs.get("headers")
        )
        return super().request(method, url, **kwargs)

    def websocket_connect(
        self,
        url: str,
        subprotocols: Sequence[str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> WebSocketTestSession:
        """Open a WebSocket to the app: ``with client.websocket_connect("/ws") as ws``."""
        session = self._websocket(url, subprotocols, headers)
        return WebSocketTestSession(session, lambda: self._portal, self.backend)

    @contextmanager
    def portal(self) -> Iterator[BlockingPortal]:
        """The portal into the app's event loop: the lifespan's, or one for this call."""
        if self._portal is not None:
            yield self._portal
            return
        with start_blocking_portal(self.backend) as portal:
            yield portal

    def __enter__(self) -> TestClient:
        manager = start_blocking_portal(self.backend)
        portal = manager.__enter__()
        lifespan = portal.wrap_async_context_manager(_LifespanSession(self._asgi))
        try:
            lifespan.__enter__()
        except BaseException:
            manager.__exit__(None, None, None)
            raise
        self._portal = portal
        self._exit = (manager, lifespan)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        manager, lifespan = self._exit
        try:
            lifespan.__exit__(exc_type, exc, tb)
        finally:
            self._portal = self._exit = None
            manager.__exit__(exc_type, exc, tb)


class AsyncTestClient(_InProcess, httpx.AsyncClient):
    """An ``httpx.AsyncClient`` calling ``app`` on the test's event loop.

    ``async with`` runs the app's lifespan. Takes ``TestClient``'s arguments, but no
    ``backend``: the app runs on whatever loop the test runs on.
    """

    __test__ = False

    def __init__(
        self,
        app: ASGIApp,
        raise_server_exceptions: bool = True,
        base_url: str = "http://testserver",
        *,
        root_path: str = "",
        cookies: httpx._types.CookieTypes | None = None,
        headers: Mapping[str, str] | None = None,
        follow_redirects: bool = True,
    ) -> None:
        self._asgi = _Options(app, raise_server_exceptions, root_path)
        self._lifespan: _LifespanSession | None = None
        super().__init__(
            base_url=base_url,
            headers={"user-agent": "testclient", **(headers or {})},
            cookies=cookies,
            follow_redirects=follow_redirects,
            transport=_AsyncTransport(self._asgi),
        )

    async def request(
        self, method: str, url: httpx._types.URLTypes, **kwargs: Any
    ) -> httpx.Response:
        """Send one request; ``cookies=`` adds to the client's cookies for this call only."""
        kwargs["headers"] = _cookie_header(
            self.cookies, kwargs.pop("cookies", None), kwargs.get("headers")
        )
        return await super().request(method, url, **kwargs)

    def websocket_connect(
        self,
        url: str,
        subprotocols: Sequence[str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncWebSocketSession:
        """Open a WebSocket to the app: ``async with client.websocket_connect("/ws") as ws``."""
        return self._websocket(url, subprotocols, headers)

    async def __aenter__(self) -> AsyncTestClient:
        lifespan = _LifespanSession(self._asgi)
        await lifespan.__aenter__()
        self._lifespan = lifespan
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        assert self._lifespan is not None
        try:
            await self._lifespan.__aexit__(exc_type, exc, tb)
        finally:
            self._lifespan = None


class _LifespanSession(AbstractAsyncContextManager["_LifespanSession"]):
    """The shared lifespan driver, held open for a client's ``with`` block.

    Unlike a server, a test wants the app's own lifespan error: it is raised as itself.
    """

    def __init__(self, options: _Options) -> None:
        self._options = options

    async def __aenter__(self) -> _LifespanSession:
        # Created here, on the loop the app runs on (the sync client's portal).
        self._driver = LifespanDriver(self._options.app, logger)
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        try:
            failure = await self._driver.startup(self._group)
            self._raise_if_failed(failure)
        except BaseException:
            self._group.cancel_scope.cancel()
            await self._group.__aexit__(None, None, None)
            raise
        self._options.lifespan = self._driver
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            failure = await self._driver.shutdown()
        finally:
            self._options.lifespan = None
            await self._group.__aexit__(None, None, None)
        self._raise_if_failed(failure)

    def _raise_if_failed(self, failure: str | None) -> None:
        if self._driver.error is not None:
            raise self._driver.error
        if failure is not None:
            raise RuntimeError(failure)
