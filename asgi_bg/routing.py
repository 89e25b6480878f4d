"""Routes, path compiling and dispatch.

Static paths are found with one dict look-up; paths with parameters are tried in
registration order, one compiled regular expression each. Everything a route needs per
request (its converters, its injection plan, how to call and render) is settled when the
route is added.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, Unpack
from urllib.parse import quote

import anyio.to_thread

from ._context import CONTEXT_KEY, RequestContext
from ._convert import finite_float
from ._models import holds_model, model_encoder
from ._task_commit import commit_tasks
from ._types import ASGIApp, Message, Receive, Scope, Send
from .datastructures import under_root
from .exceptions import ConfigurationError, HTTPException
from .injection import Plan, Solver, compile_plan, plan_reads, run_endpoint
from .requests import Request
from .responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    content_type_header,
    encode_json,
    local_redirect,
)
from .route_options import (
    Group,
    GroupOptions,
    RouteOptions,
    RouteSpec,
    description_of,
    response_model_of,
)
from .websocket_routing import WebSocketRoute, reject

F = TypeVar("F", bound=Callable[..., Any])

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})


class NoMatchFound(Exception):
    """``url_path_for`` found no route of that name taking exactly those parameters."""


@dataclass(frozen=True, slots=True)
class Converter:
    """A path converter: the regex a segment must match, and how to read and write it."""

    regex: str
    type: type
    to_python: Callable[[str], Any]
    to_string: Callable[[Any], str]


CONVERTERS: dict[str, Converter] = {
    "str": Converter("[^/]+", str, str, lambda v: quote(str(v), safe="")),
    "path": Converter(".*", str, str, lambda v: quote(str(v), safe="/")),
    # int() refuses more than 4300 digits: such a path does not match (404), never a 500.
    "int": Converter("-?[0-9]+", int, int, lambda v: str(int(v))),
    "float": Converter(r"-?[0-9]+(?:\.[0-9]+)?", float, finite_float, lambda v: repr(float(v))),
    "uuid": Converter(
        "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}",
        uuid.UUID,
        uuid.UUID,
        str,
    ),
}

_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(?::([a-zA-Z_][a-zA-Z0-9_]*))?}")


@dataclass(frozen=True, slots=True)
class CompiledPath:
    """A path pattern ready for matching: a regex (None when static) and its converters."""

    path: str
    regex: re.Pattern[str] | None
    converters: dict[str, Converter]
    # The parameters whose value is not the matched string itself (``int``...).
    typed: tuple[tuple[str, Callable[[str], Any]], ...] = ()

    def match(self, path: str) -> dict[str, Any] | None:
        """The converted parameters if ``path`` matches, else None."""
        assert self.regex is not None
        found = self.regex.fullmatch(path)
        if found is None:
            return None
        params = found.groupdict()
        # PERF: a loop over the typed parameters only; a comprehension is a call in 3.11.
        try:
            for name, to_python in self.typed:
                params[name] = to_python(params[name])
        except ValueError:
            return None  # matched the shape but not the type's range: not this route
        return params

    def format(self, params: dict[str, Any]) -> str:
        """Build the path back from parameter values."""
        if set(params) != set(self.converters):
            raise NoMatchFound(f"{self.path} takes {sorted(self.converters)}, got {sorted(params)}")
        return _PARAM.sub(lambda m: self.converters[m[1]].to_string(params[m[1]]), self.path)


def compile_path(path: str) -> CompiledPath:
    """Parse ``/items/{item_id:int}``; raises ``ConfigurationError`` on a bad pattern."""
    if not path.startswith("/"):
        raise ConfigurationError(f"route path {path!r} must start with '/'")
    converters: dict[str, Converter] = {}
    pattern, last = "", 0
    for found in _PARAM.finditer(path):
        name, kind = found[1], found[2] or "str"
        if kind not in CONVERTERS:
            raise ConfigurationError(f"route path {path!r}: unknown converter {kind!r}")
        if name in converters:
            raise ConfigurationError(f"route path {path!r}: parameter {name!r} appears twice")
        converters[name] = CONVERTERS[kind]
        pattern += re.escape(path[last : found.start()]) + f"(?P<{name}>{CONVERTERS[kind].regex})"
        last = found.end()
    if "{" in path[last:] or "}" in path[last:] or ("{" in pattern and not converters):
        raise ConfigurationError(f"route path {path!r}: malformed parameter")
    if not converters:
        return CompiledPath(path, None, {})
    typed = tuple((k, c.to_python) for k, c in converters.items() if c.to_python is not str)
    return CompiledPath(path, re.compile(pattern + re.escape(path[last:])), converters, typed)


Endpoint = Callable[[Scope, Receive, Send], Any]


class Route:
    """One endpoint at one path for a set of methods; callable as an ASGI app."""

    def __init__(
        self, path: str, endpoint: Callable[..., Any], **options: Unpack[RouteSpec]
    ) -> None:
        self.path = path
        self.endpoint = endpoint
        self.methods = _check_methods(options.get("methods", ("GET",)), path)
        name = options.get("name")
        self.name = name or getattr(endpoint, "__name__", None) or type(endpoint).__name__
        self.status_code = options.get("status_code", 200)
        self.response_class = options.get("response_class", JSONResponse)
        self._keep_metadata(options)
        self.compiled = compile_path(path)
        where = f"route {'/'.join(sorted(self.methods))} {path} ({self.name})"
        types = {k: c.type for k, c in self.compiled.converters.items()}
        self.plan: Plan = compile_plan(endpoint, types, where=where, dependencies=self.dependencies)
        if self.plan.mode in ("gen", "agen"):
            raise ConfigurationError(
                f"{where}: a generator cannot be an endpoint; return a StreamingResponse instead"
            )
        if plan_reads(self.plan, "websocket"):
            raise ConfigurationError(f"{where}: a WebSocket parameter needs @app.websocket")
        self._content_type = (b"content-type", b"")
        self._encode = self._pick_encoder()
        if self._encode is encode_json and holds_model(self.response_model):
            # pydantic validates, filters and serialises the return value (FastAPI's rule).
            self._encode = model_encoder(self.response_model, where)
        self._call = self._pick_call()

    def _keep_metadata(self, options: RouteOptions) -> None:
        """What OpenAPI documents about the route, and its ``dependencies=[...]``."""
        self.dependencies = list(options.get("dependencies") or ())
        self.tags = list(options.get("tags") or ())
        self.summary = options.get("summary")
        self.description = description_of(self.endpoint, options.get("description"))
        self.deprecated = options.get("deprecated")
        self.response_model = response_model_of(self.endpoint, options.get("response_model"))
        self.responses = dict(options.get("responses") or {})
        self.operation_id = options.get("operation_id")
        self.include_in_schema = options.get("include_in_schema", True)

    def route_options(self) -> RouteOptions:
        """The keyword options this route was made with, to register it again elsewhere."""
        return {
            "name": self.name,
            "status_code": self.status_code,
            "response_class": self.response_class,
            "dependencies": self.dependencies,
            "tags": self.tags,
            "summary": self.summary,
            "description": self.description,
            "deprecated": self.deprecated,
            "response_model": self.response_model,
            "responses": self.responses,
            "operation_id": self.operation_id,
            "include_in_schema": self.include_in_schema,
        }

    def _pick_call(self) -> str:
        """How to call the endpoint, decided once: ``"direct"`` (an ``async def``
        without parameters), ``"inject"`` (through its plan) or ``"thread"`` (a ``def``
        without parameters)."""
        if self.plan.dependencies or self.plan.extractors:
            return "inject"
        return "direct" if self.plan.mode == "async" else "thread"

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request: call, render, commit the tasks, respond."""
        context: RequestContext = scope[CONTEXT_KEY]
        # PERF: the handle awaits the endpoint, the injector and the send itself, with no
        # strategy function, render step or coroutine of its own in between: together
        # ~3,000 of a 34,700-instruction /hello (callgrind).
        call = self._call
        if call == "direct":
            result = await self.endpoint()
        elif call == "inject":
            result = await run_endpoint(self.plan, Solver(Request(scope, receive), context))
        else:
            result = await anyio.to_thread.run_sync(self.endpoint)
        encode = self._encode
        if encode is None or isinstance(result, Response):
            response = self._response_for(result)
            context.handled()
            if context.registered or response.background is not None:
                await commit_tasks(scope["app"], context, response)
            await response(scope, receive, send)
            return
        # The stock response classes: the route sends the two messages itself (a response
        # object cost ~1.1 µs of a 2.7 µs /hello, cProfile, in-process).
        body = encode(result)
        context.handled()
        if context.registered:
            await commit_tasks(scope["app"], context, body)
        context.response_started(whole=True)
        headers = [(b"content-length", str(len(body)).encode()), self._content_type]
        try:
            await send(
                {"type": "http.response.start", "status": self.status_code, "headers": headers}
            )
            await send({"type": "http.response.body", "body": body})
        except OSError:
            pass  # ASGI 2.4: the client is gone; the handler succeeded, so tasks still run

    def _response_for(self, result: Any) -> Response:
        """A ``Response`` as is, else one of the route's response class."""
        if isinstance(result, Response):
            return result
        response = self.response_class(result, self.status_code)
        if self.status_code < 200 or self.status_code in (204, 304):
            response.body = b""  # RFC 9110 section 6.4.1: these answers carry no content
        return response

    def _pick_encoder(self) -> Callable[[Any], bytes] | None:
        """The body encoder when the route can render without a response object."""
        cls = self.response_class
        if cls not in _DIRECT_RENDER or self.status_code < 200 or self.status_code in (204, 304):
            return None
        assert cls.media_type is not None
        self._content_type = content_type_header(cls.media_type, cls.charset)
        return _DIRECT_RENDER[cls]

    def __repr__(self) -> str:
        return f"Route({self.path!r}, {self.name!r}, methods={sorted(self.methods)})"


def _check_methods(methods: Iterable[str], path: str) -> frozenset[str]:
    if isinstance(methods, str):
        methods = [methods]
    upper = frozenset(m.upper() for m in methods)
    unknown = upper - METHODS
    if unknown or not upper:
        raise ConfigurationError(f"route {path!r}: unknown methods {sorted(unknown) or '[]'}")
    return upper


class Mount:
    """Any ASGI app served under a path prefix.

    The child sees the full ``path`` and a ``root_path`` extended by the prefix, the
    current ASGI convention (Starlette 0.35+, FastAPI, asgi_bg itself).
    """

    def __init__(self, path: str, app: ASGIApp, *, name: str | None = None) -> None:
        if not path.startswith("/") or "{" in path:
            raise ConfigurationError(f"mount path {path!r} must be a static path starting with '/'")
        path = path.rstrip("/")  # "/" itself mounts at the root: every path not routed
        if isinstance(app, Router):
            raise ConfigurationError(f"mount {path!r}: use include_router() for a Router")
        self.path = path
        self.app = app
        self.name = name

    def matches(self, route_path: str) -> bool:
        """True when ``route_path`` is the prefix itself or below it."""
        return route_path == self.path or route_path.startswith(self.path + "/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send, root_path: str) -> None:
        child = dict(scope)
        child["root_path"] = root_path + self.path
        if not under_root(scope["path"], root_path):
            child["path"] = root_path + scope["path"]  # normalise the old convention
        context: RequestContext | None = scope.get(CONTEXT_KEY)
        if context is not None:
            send = context.tracking(send)  # the mounted app sends on its own
        await self.app(child, receive, send)

    def __repr__(self) -> str:
        return f"Mount({self.path!r}, {self.app!r})"


class _RouteDecorator(Protocol):
    def __call__(self, path: str, **options: Unpack[RouteOptions]) -> Callable[[F], F]: ...


class _OneMethod:
    """``router.get`` and its kin: ``router.route`` for one method, as a decorator."""

    def __init__(self, method: str, note: str = "") -> None:
        self._methods = (method,)
        self.__doc__ = f"Register a {method} route{note}."

    def __get__(self, router: Router, owner: type[Router] | None = None) -> _RouteDecorator:
        methods = self._methods

        def register(path: str, **options: Unpack[RouteOptions]) -> Callable[[F], F]:
            return router.route(path, methods, **options)

        register.__doc__ = self.__doc__
        return register


class Router:
    """A group of routes with a common ``prefix``; include it with ``app.include_router``.

    The decorators are the app's: ``get``, ``post``, ``put``, ``patch``, ``delete``,
    ``options``, ``head``, ``route``; ``add_route`` registers without a decorator.
    ``websocket`` and ``add_websocket_route`` do the same for WebSocket endpoints.
    """

    def __init__(
        self, prefix: str = "", *, redirect_slashes: bool = True, **group: Unpack[GroupOptions]
    ) -> None:
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ConfigurationError(f"router prefix {prefix!r} must start and not end with '/'")
        self.prefix = prefix
        self.redirect_slashes = redirect_slashes
        self.group = Group.of(group)
        self.routes: list[Route] = []
        self.mounts: list[Mount] = []
        self._static: dict[str, dict[str, Endpoint]] = {}
        self._dynamic: list[tuple[CompiledPath, dict[str, Endpoint]]] = []
        self._by_first: dict[str, list[tuple[CompiledPath, dict[str, Endpoint]]]] = {}
        self._any_first: list[tuple[CompiledPath, dict[str, Endpoint]]] = []
        self.websocket_routes: list[WebSocketRoute] = []
        self._ws_static: dict[str, Endpoint] = {}
        self._ws_dynamic: list[tuple[CompiledPath, Endpoint]] = []

    # --- registration -------------------------------------------------------------------

    def add_route(
        self,
        path: str,
        endpoint: Callable[..., Any],
        methods: Iterable[str] = ("GET",),
        **options: Unpack[RouteOptions],
    ) -> Route:
        """Register ``endpoint`` for ``methods`` at ``prefix + path``.

        The router's own ``dependencies``, ``tags``, ``responses``, ``deprecated`` and
        ``include_in_schema`` apply around the route's.
        """
        route = Route(self.prefix + path, endpoint, methods=methods, **self.group.around(options))
        self._add(route)
        return route

    def add_websocket_route(
        self,
        path: str,
        endpoint: Callable[..., Any],
        name: str | None = None,
        *,
        dependencies: Sequence[Any] | None = None,
    ) -> WebSocketRoute:
        """Register the WebSocket ``endpoint`` at ``prefix + path``; the router's own
        ``dependencies`` run before the route's, as for its HTTP routes."""
        path = self.prefix + path
        around = [*self.group.dependencies, *(dependencies or ())]
        route = WebSocketRoute(path, endpoint, compile_path(path), name=name, dependencies=around)
        if any(known.path == path for known in self.websocket_routes):
            raise ConfigurationError(f"WebSocket route {path} is registered twice")
        if route.compiled.regex is None:
            self._ws_static[path] = route.handle
        else:
            self._ws_dynamic.append((route.compiled, route.handle))
        self.websocket_routes.append(route)
        return route

    def websocket(
        self, path: str, name: str | None = None, *, dependencies: Sequence[Any] | None = None
    ) -> Callable[[F], F]:
        """Register a WebSocket endpoint (decorator form of ``add_websocket_route``)."""

        def register(endpoint: F) -> F:
            self.add_websocket_route(path, endpoint, name, dependencies=dependencies)
            return endpoint

        return register

    def _add(self, route: Route) -> None:
        table = self._table_for(route.compiled)
        for method in route.methods:
            if method in table and not getattr(table[method], "implicit_head", False):
                raise ConfigurationError(f"route {method} {route.path} is registered twice")
            table[method] = route.handle
        if "GET" in route.methods and "HEAD" not in table:
            table["HEAD"] = _HeadOnly(route.handle)
        self.routes.append(route)

    def _table_for(self, compiled: CompiledPath) -> dict[str, Endpoint]:
        if compiled.regex is None:
            return self._static.setdefault(compiled.path, {})
        for known, table in self._dynamic:
            if known.path == compiled.path:
                return table
        table = {}
        self._dynamic.append((compiled, table))
        self._index_dynamic()
        return table

    def _index_dynamic(self) -> None:
        """Group dynamic paths by their first segment, keeping registration order.

        PERF: a request then tries only the paths that can match it (~0.6 µs per regex
        attempt saved; three attempts on the benchmark's task endpoints). Paths whose
        first segment is a parameter are candidates for every first segment.
        """
        firsts = {f for c, _ in self._dynamic if (f := _first_segment(c.path)) is not None}
        self._by_first = {
            first: [(c, t) for c, t in self._dynamic if _first_segment(c.path) in (first, None)]
            for first in firsts
        }
        self._any_first = [(c, t) for c, t in self._dynamic if _first_segment(c.path) is None]

    def route(
        self, path: str, methods: Iterable[str] = ("GET",), **options: Unpack[RouteOptions]
    ) -> Callable[[F], F]:
        """Decorator form of ``add_route``."""

        def register(endpoint: F) -> F:
            self.add_route(path, endpoint, methods, **options)
            return endpoint

        return register

    get = _OneMethod("GET", " (it answers HEAD too)")
    post = _OneMethod("POST")
    put = _OneMethod("PUT")
    patch = _OneMethod("PATCH")
    delete = _OneMethod("DELETE")
    options = _OneMethod("OPTIONS")
    head = _OneMethod("HEAD")

    def include_router(
        self, router: Router, prefix: str = "", **group: Unpack[GroupOptions]
    ) -> None:
        """Add every route and mount of ``router`` under ``prefix``; ``group`` options
        (``dependencies``, ``tags``...) apply around the router's own."""
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ConfigurationError(f"include prefix {prefix!r} must start and not end with '/'")
        outer = Group.of(group)
        for route in router.routes:
            options = outer.around(route.route_options())
            self.add_route(prefix + route.path, route.endpoint, route.methods, **options)
        for ws_route in router.websocket_routes:
            self.add_websocket_route(
                prefix + ws_route.path,
                ws_route.endpoint,
                ws_route.name,
                dependencies=[*outer.dependencies, *ws_route.dependencies],
            )
        for mount in router.mounts:
            self.mount(prefix + mount.path, mount.app, name=mount.name)

    def mount(self, path: str, app: ASGIApp, *, name: str | None = None) -> None:
        """Serve any ASGI app under ``path``."""
        self.mounts.append(Mount(self.prefix + path, app, name=name))

    def url_path_for(self, name: str, /, **params: Any) -> str:
        """The path of the route called ``name`` with ``params`` filled in.

        ``"mount:route"`` looks ``route`` up in the app mounted with ``name="mount"``.
        """
        mount_name, sep, inner = name.partition(":")
        if sep:
            for mount in self.mounts:
                finder = getattr(mount.app, "url_path_for", None)
                if mount.name == mount_name and finder is not None:
                    return mount.path + str(finder(inner, **params))
        routes: list[Route | WebSocketRoute] = [*self.routes, *self.websocket_routes]
        for route in routes:
            if route.name == name and set(route.compiled.converters) == set(params):
                return route.compiled.format(params)
        raise NoMatchFound(f"no route named {name!r} taking parameters {sorted(params)}")

    # --- dispatch -----------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Find the endpoint for the request and run it; 404 / 405 otherwise."""
        if scope["type"] == "websocket":
            await self.resolve_websocket(scope)(scope, receive, send)
            return
        await self.resolve(scope)(scope, receive, send)

    def resolve(self, scope: Scope) -> Endpoint:
        """The endpoint for the request; raises ``HTTPException`` for 404 and 405.

        Sets ``scope["path_params"]`` when a path with parameters matched.
        """
        path: str = scope["path"]
        root_path: str = scope.get("root_path", "")
        if root_path and under_root(path, root_path):
            path = path[len(root_path) :] or "/"
        method = scope["method"]
        table = self._static.get(path)
        if table is not None:
            handler = table.get(method)
            if handler is not None:
                return handler
        handler, allowed = self._match_dynamic(scope, path, method)
        if handler is not None:
            return handler
        if table is not None or allowed:
            # The path is known, not with this method: 405 naming every method that
            # any matching route serves (RFC 9110 15.5.6).
            methods = {*(allowed or ()), *(table or ())}
            raise HTTPException(405, headers={"Allow": ", ".join(sorted(methods))})
        return self._no_route(scope, path, root_path)

    def resolve_websocket(self, scope: Scope) -> Endpoint:
        """The WebSocket endpoint for the path, a mount below it, or a refusal (403)."""
        path: str = scope["path"]
        root_path: str = scope.get("root_path", "")
        if root_path and under_root(path, root_path):
            path = path[len(root_path) :] or "/"
        handler = self._ws_static.get(path)
        if handler is not None:
            return handler
        for compiled, endpoint in self._ws_dynamic:
            params = compiled.match(path)
            if params is not None:
                scope["path_params"] = params
                return endpoint
        for mount in self.mounts:
            if mount.matches(path):
                return functools.partial(mount, root_path=root_path)
        return reject

    def _match_dynamic(
        self, scope: Scope, path: str, method: str
    ) -> tuple[Endpoint | None, set[str] | None]:
        """The first matching route that serves ``method``, else the methods of those
        that matched, so that two routes for one path behave as one."""
        # PERF: the set is made only when a path matches without the method.
        allowed: set[str] | None = None
        first = path[1:].partition("/")[0]
        for compiled, table in self._by_first.get(first, self._any_first):
            params = compiled.match(path)
            if params is None:
                continue
            handler = table.get(method)
            if handler is not None:
                scope["path_params"] = params
                return handler, allowed
            if allowed is None:
                allowed = set()
            allowed.update(table)
        return None, allowed

    def _no_route(self, scope: Scope, path: str, root_path: str) -> Endpoint:
        for mount in self.mounts:
            if mount.matches(path):
                return functools.partial(mount, root_path=root_path)
        if self.redirect_slashes and path != "/":
            # 307 keeps the method and the body, so this is safe for every method.
            other = path[:-1] if path.endswith("/") else path + "/"
            if self._knows(other):
                return _redirect(scope, root_path + other)
        raise HTTPException(404)

    def _knows(self, path: str) -> bool:
        return path in self._static or any(c.match(path) is not None for c, _ in self._dynamic)


def _encode_text(content: Any) -> bytes:
    if isinstance(content, bytes):
        return content
    return b"" if content is None else str(content).encode("utf-8")


_DIRECT_RENDER: dict[type[Response], Callable[[Any], bytes]] = {
    JSONResponse: encode_json,
    PlainTextResponse: _encode_text,
    HTMLResponse: _encode_text,
}


def _first_segment(path: str) -> str | None:
    """The first path segment if it is literal text, None if it holds a parameter."""
    first = path[1:].partition("/")[0]
    return None if "{" in first else first


def _redirect(scope: Scope, path: str) -> Response:
    # Never a bare RedirectResponse: the path comes from the client (finding 1 of
    # issue 11, "//evil.com/edit/" redirected to evil.com).
    return local_redirect(path, scope.get("query_string", b""))


class _HeadOnly:
    """A GET endpoint answering HEAD: same status and headers, no body (RFC 9110 9.3.2)."""

    implicit_head = True
    __slots__ = ("endpoint",)

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.endpoint(scope, receive, send_headers_only)
