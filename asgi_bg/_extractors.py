"""How each parameter is read from the request, chosen at registration.

Per request a ``Solver`` holds the request, its context and the errors so far; each
parameter is one extractor call on it: a path, query, header or cookie reader with its
converter and checks, or a body field reading the JSON decoded once by ``read_body``.
"""

from __future__ import annotations

import copy
import enum
import typing
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ._checks import check_kind, with_checks
from ._context import RequestContext, Teardown
from ._convert import Converter, Invalid, convert_each, is_sequence, item_type, string_converter
from ._form_params import form_values
from .background import BackgroundTask, BackgroundTasks
from .exceptions import ConfigurationError
from .params import REQUIRED, ParamInfo
from .requests import HTTPConnection, Request, loads_json
from .websockets import WebSocket

NO_BODY: Any = object()
UNREAD: Any = object()  # the body was not read: no body field so far needed it
INVALID_JSON: Any = object()


class Solver:
    """Per-request state while a plan runs: the request (or WebSocket), the context,
    collected errors.

    ``overrides`` is the app's ``dependency_overrides``, read from ``request.scope["app"]``
    when the plan has dependencies, unless given; ``exits`` holds the exit code of
    ``scope="function"`` generator dependencies, run as soon as the handler returned;
    ``tasks`` the request's injected ``BackgroundTasks``, made when first asked for.
    """

    __slots__ = ("context", "errors", "exits", "json", "overrides", "request", "tasks")

    def __init__(
        self,
        request: HTTPConnection,
        context: RequestContext,
        overrides: Mapping[Any, Callable[..., Any]] | None = None,
    ) -> None:
        self.request = request
        self.context = context
        self.errors: list[dict[str, Any]] = []
        self.json: Any = UNREAD
        self.exits: list[Teardown] = []
        self.overrides = overrides
        self.tasks: BackgroundTasks | None = None  # the injected collection, once made

    def find_overrides(self) -> None:
        """Look the app's ``dependency_overrides`` up, once, when dependencies run."""
        if self.overrides is None:
            app = self.request.scope.get("app")
            self.overrides = getattr(app, "dependency_overrides", None) or {}


Extractor = Callable[[Solver], Any]


@dataclass(slots=True)
class BodyField:
    """A body parameter; ``embedded`` is settled once the whole tree is known."""

    key: str
    convert: Converter
    default: Callable[[], Any]  # see ``default_maker``
    embedded: bool = False

    def extract(self, solver: Solver) -> Any:
        value = solver.json
        if self.embedded and value is not NO_BODY:
            # A body that is not an object holds no field: each is missing (as FastAPI).
            value = value.get(self.key, NO_BODY) if isinstance(value, dict) else NO_BODY
        if value is NO_BODY or value is INVALID_JSON:
            try:
                return self.default()
            except Invalid as exc:
                raise exc.at(*self._loc()) from None
        try:
            return self.convert(value)
        except Invalid as exc:
            raise exc.at(*self._loc()) from None

    def _loc(self) -> tuple[Any, ...]:
        # Whether the field is embedded is only known once the whole tree is compiled,
        # so its key goes into the error here rather than into the extractor's ``loc``.
        return (self.key,) if self.embedded else ()


def special_extractor(annotation: Any, where: str) -> Extractor | None:
    if isinstance(annotation, type) and issubclass(annotation, HTTPConnection):
        if issubclass(annotation, WebSocket):
            return get_websocket
        return get_request if issubclass(annotation, Request) else _get_connection
    if annotation is BackgroundTasks:
        return _get_tasks
    if annotation is BackgroundTask:
        raise ConfigurationError(
            f"{where}: BackgroundTask is one task for a response's background=; "
            "did you mean BackgroundTasks?"
        )
    return None


# Three names for one look-up, so that a route can tell at registration which of them
# its plan uses (``plan_reads``): a WebSocket route has no Request, and the reverse.
def get_request(solver: Solver) -> HTTPConnection:
    return solver.request


def get_websocket(solver: Solver) -> HTTPConnection:
    return solver.request


def _get_connection(solver: Solver) -> HTTPConnection:
    return solver.request


def _get_tasks(solver: Solver) -> BackgroundTasks:
    # One collection for every parameter and dependency of the request.
    if solver.tasks is None:
        solver.tasks = solver.context.background_tasks()
    return solver.tasks


def checked(convert: Converter, marker: ParamInfo | None, annotation: Any, where: str) -> Converter:
    """``convert`` followed by the marker's checks (``ge=1``...), if it has any."""
    checks = marker.checks() if marker is not None else {}
    return with_checks(convert, checks, check_kind(annotation), where) if checks else convert


def path_extractor(
    name: str, annotation: Any, marker: ParamInfo | None, path_params: dict[str, type], where: str
) -> Extractor:
    if annotation is path_params[name] or annotation is Any:
        convert: Converter = _identity
    else:
        to_type = string_converter(annotation, where)

        def convert(value: Any) -> Any:
            return to_type(str(value))

    convert = checked(convert, marker, annotation, where)
    if convert is _identity:

        def read(solver: Solver) -> Any:
            return solver.request.scope["path_params"][name]

        return read

    def read_and_convert(solver: Solver) -> Any:
        return convert(solver.request.scope["path_params"][name])

    return read_and_convert


def _identity(value: Any) -> Any:
    return value


def string_extractor(
    source: str,
    key: str,
    annotation: Any,
    marker: ParamInfo | None,
    default: Any,
    where: str,
    missing: Callable[[], Any] | None = None,
) -> Extractor:
    """Read ``key`` from ``source`` and convert it; when absent, ``missing()`` (by default
    the ``default``, or a "missing" error if there is none)."""
    getter = _SOURCES[source]
    missing = missing or default_maker(default)
    if is_sequence(annotation):
        convert_many = checked(_many(annotation, where), marker, annotation, where)

        def extract_many(solver: Solver) -> Any:
            values = getter(solver.request, key, True)
            return missing() if not values else convert_many(values)

        return extract_many
    convert = checked(string_converter(annotation, where), marker, annotation, where)

    def extract(solver: Solver) -> Any:
        value = getter(solver.request, key, False)
        return missing() if value is None else convert(value)

    return extract


def _many(annotation: Any, where: str) -> Converter:
    """Repeated values (``?tag=a&tag=b``) into the annotated list, set or tuple."""
    convert_item = string_converter(item_type(annotation), where)
    origin = typing.get_origin(annotation) or annotation
    build = origin if origin in (tuple, set, frozenset) else list

    def convert(values: list[str]) -> Any:
        return build(convert_each(convert_item, enumerate(values)))

    return convert


_IMMUTABLE = (str, bytes, int, float, bool, type(None), enum.Enum, uuid.UUID, frozenset)


def default_maker(default: Any) -> Callable[[], Any]:
    """What a parameter gets when the request lacks it, decided at registration.

    A mutable default (``tags: list[str] = []``) is copied for each request, as FastAPI
    does, so one request's changes never leak into the next.
    """
    if default is REQUIRED:
        return _required
    if isinstance(default, _IMMUTABLE):
        return lambda: default
    return lambda: copy.deepcopy(default)


def _required() -> Any:
    raise Invalid("missing", "Field required", None)


def _from_query(request: HTTPConnection, key: str, many: bool) -> Any:
    params = request.query_params
    return params.getlist(key) if many else params.get(key)


def _from_header(request: HTTPConnection, key: str, many: bool) -> Any:
    headers = request.headers
    return headers.getlist(key) if many else headers.get(key)


def _from_cookie(request: HTTPConnection, key: str, many: bool) -> Any:
    value = request.cookies.get(key)
    return ([value] if value is not None else []) if many else value


def is_json_type(content_type: str) -> bool:
    """``application/json`` or ``application/<anything>+json``, parameters ignored."""
    media = content_type.partition(";")[0].strip().lower()
    main, _, sub = media.partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


_SOURCES: dict[str, Callable[[HTTPConnection, str, bool], Any]] = {
    "query": _from_query,
    "header": _from_header,
    "cookie": _from_cookie,
    "form": form_values,
}


async def read_body(solver: Solver) -> None:
    """Read and decode the JSON body once, before any extractor needs it.

    Only a request that says it holds JSON is decoded, as in FastAPI (whose
    ``strict_content_type`` is on by default): a cross-site form or ``fetch`` cannot
    post a JSON body with the user's cookies, with a ``text/plain`` type or none.
    """
    request = solver.request
    # WebSocket routes refuse body parameters at registration.
    assert isinstance(request, Request)
    raw = await request.body()
    if not raw:
        solver.json = NO_BODY
        return
    content_type = solver.request.headers.get("content-type")
    if content_type is None or not is_json_type(content_type):
        solver.json = INVALID_JSON
        solver.errors.append(_not_json(raw))
        return
    try:
        solver.json = loads_json(raw)
    except ValueError as exc:
        solver.json = INVALID_JSON
        solver.errors.append(_json_invalid(exc))


def _not_json(raw: bytes) -> dict[str, Any]:
    return {
        "type": "model_attributes_type",
        "loc": ["body"],
        "msg": "Input should be a valid dictionary or object to extract fields from",
        "input": raw.decode("utf-8", "replace"),
    }


def _json_invalid(exc: ValueError) -> dict[str, Any]:
    """FastAPI's item for malformed JSON; ``loc`` holds the position when known."""
    position = getattr(exc, "pos", None)
    return {
        "type": "json_invalid",
        "loc": ["body"] if position is None else ["body", position],
        "msg": "JSON decode error",
        "input": {},
        "ctx": {"error": getattr(exc, "msg", str(exc))},
    }
