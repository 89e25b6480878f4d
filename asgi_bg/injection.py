"""Signature-based injection: markers, the registration-time plan, and its execution.

``compile_plan`` reads a handler's (or dependency's) signature once and turns every
parameter into a small extractor or a sub-plan. Per request, ``solve`` walks that plan:
no ``inspect`` calls, no annotation look-ups.
"""

from __future__ import annotations

import contextlib
import copy
import enum
import functools
import inspect
import typing
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import anyio.to_thread

from ._concurrency import callable_name, is_async_callable, run_in_thread
from ._context import RequestContext
from ._convert import (
    Converter,
    Invalid,
    is_body_type,
    is_sequence,
    item_type,
    json_converter,
    string_converter,
    unwrap_optional,
)
from .background import BackgroundTasks
from .exceptions import ConfigurationError, RequestValidationError
from .requests import Request, loads_json

_REQUIRED: Any = inspect.Parameter.empty
_NO_BODY: Any = object()
_INVALID_JSON: Any = object()


class DependsInfo:
    """What ``Depends(...)`` returns: the dependency and its caching policy."""

    __slots__ = ("dependency", "use_cache")

    def __init__(
        self, dependency: Callable[..., Any] | None = None, *, use_cache: bool = True
    ) -> None:
        self.dependency = dependency
        self.use_cache = use_cache

    def __repr__(self) -> str:
        name = callable_name(self.dependency) if self.dependency else ""
        return f"Depends({name})"


# The markers are functions typed ``-> Any``, as in FastAPI, so that the default-value
# spelling ``q: str = Depends(get_query)`` type-checks under mypy --strict.
def Depends(dependency: Callable[..., Any] | None = None, *, use_cache: bool = True) -> Any:
    """Declare a dependency: the parameter receives ``dependency``'s result.

    The dependency is injected by the same rules as a handler and, with ``use_cache``
    (the default), called at most once per request however often it is declared.
    ``Depends()`` with no argument uses the parameter's annotation (a class).
    """
    return DependsInfo(dependency, use_cache=use_cache)


class ParamInfo:
    """Base of the request-part markers; ``default`` ``...`` or omitted means required."""

    source = ""
    __slots__ = ("alias", "default")

    def __init__(self, default: Any = _REQUIRED, *, alias: str | None = None) -> None:
        self.default = _REQUIRED if default is ... else default
        self.alias = alias

    def __repr__(self) -> str:
        return f"{type(self).__name__.removesuffix('Info')}(alias={self.alias!r})"


class QueryInfo(ParamInfo):
    """Read the parameter from the query string (the default for scalars)."""

    source = "query"
    __slots__ = ()


class HeaderInfo(ParamInfo):
    """Read the parameter from a header; ``user_agent`` reads ``user-agent``."""

    source = "header"
    __slots__ = ("convert_underscores",)

    def __init__(
        self,
        default: Any = _REQUIRED,
        *,
        alias: str | None = None,
        convert_underscores: bool = True,
    ) -> None:
        super().__init__(default, alias=alias)
        self.convert_underscores = convert_underscores


class CookieInfo(ParamInfo):
    """Read the parameter from a cookie."""

    source = "cookie"
    __slots__ = ()


class BodyInfo(ParamInfo):
    """Read the parameter from the JSON body.

    With one body parameter the whole body is its value; with several, or with
    ``embed=True``, each reads the key of its name from a JSON object.
    """

    source = "body"
    __slots__ = ("embed",)

    def __init__(
        self, default: Any = _REQUIRED, *, alias: str | None = None, embed: bool = False
    ) -> None:
        super().__init__(default, alias=alias)
        self.embed = embed


def Query(default: Any = _REQUIRED, *, alias: str | None = None) -> Any:
    """Read the parameter from the query string (the default for scalars)."""
    return QueryInfo(default, alias=alias)


def Header(
    default: Any = _REQUIRED, *, alias: str | None = None, convert_underscores: bool = True
) -> Any:
    """Read the parameter from a header; ``user_agent`` reads ``user-agent``."""
    return HeaderInfo(default, alias=alias, convert_underscores=convert_underscores)


def Cookie(default: Any = _REQUIRED, *, alias: str | None = None) -> Any:
    """Read the parameter from a cookie."""
    return CookieInfo(default, alias=alias)


def Body(default: Any = _REQUIRED, *, alias: str | None = None, embed: bool = False) -> Any:
    """Read the parameter from the JSON body.

    With one body parameter the whole body is its value; with several, or with
    ``embed=True``, each reads the key of its name from a JSON object.
    """
    return BodyInfo(default, alias=alias, embed=embed)


class Solver:
    """Per-request state while a plan runs: the request, the context, collected errors."""

    __slots__ = ("context", "errors", "json", "request")

    def __init__(self, request: Request, context: RequestContext) -> None:
        self.request = request
        self.context = context
        self.errors: list[dict[str, Any]] = []
        self.json: Any = _NO_BODY


Extractor = Callable[[Solver], Any]


@dataclass(slots=True)
class _BodyField:
    """A body parameter; ``embedded`` is settled once the whole tree is known."""

    key: str
    convert: Converter
    default: Callable[[], Any]  # see ``default_maker``
    embedded: bool = False

    def extract(self, solver: Solver) -> Any:
        value = solver.json
        if self.embedded and value is not _NO_BODY:
            if not isinstance(value, dict):
                raise Invalid("model_type", "Input should be a valid dictionary", value)
            value = value.get(self.key, _NO_BODY)
        if value is _NO_BODY or value is _INVALID_JSON:
            try:
                return self.default()
            except Invalid as exc:
                raise Invalid(exc.type, exc.msg, exc.value, self._loc()) from None
        try:
            return self.convert(value)
        except Invalid as exc:
            raise Invalid(exc.type, exc.msg, exc.value, (*self._loc(), *exc.loc)) from None

    def _loc(self) -> tuple[Any, ...]:
        # Whether the field is embedded is only known once the whole tree is compiled,
        # so its key goes into the error here rather than into the extractor's ``loc``.
        return (self.key,) if self.embedded else ()


@dataclass(slots=True)
class Plan:
    """What to call and how to fill each of its parameters."""

    call: Callable[..., Any]
    name: str
    mode: str  # "async", "sync", "gen", "agen"
    dependencies: list[tuple[str, Dependency]] = field(default_factory=list)
    extractors: list[tuple[str, tuple[Any, ...], Extractor]] = field(default_factory=list)
    body_fields: list[_BodyField] = field(default_factory=list)


@dataclass(slots=True)
class Dependency:
    """A ``Depends`` resolved at registration: its plan and caching policy."""

    plan: Plan
    use_cache: bool


def compile_plan(call: Callable[..., Any], path_params: dict[str, type], *, where: str) -> Plan:
    """Analyse ``call``'s signature into a plan; raises ``ConfigurationError`` naming the
    parameter it cannot serve. ``path_params`` maps path parameter names to the type the
    router's converter yields.
    """
    plan = _compile(call, path_params, where, stack=())
    embedded = len(plan.body_fields) > 1
    for body_field in plan.body_fields:
        body_field.embedded = body_field.embedded or embedded
    return plan


def _compile(
    call: Callable[..., Any], path_params: dict[str, type], where: str, stack: tuple[Any, ...]
) -> Plan:
    if call in stack:
        raise ConfigurationError(f"{where}: dependency cycle through {callable_name(call)}")
    plan = Plan(call, callable_name(call), _mode(call, where))
    for param in _signature(call, where).parameters.values():
        _compile_param(plan, param, path_params, f"{where}: parameter {param.name!r}", stack)
    return plan


def _mode(call: Callable[..., Any], where: str) -> str:
    if inspect.isasyncgenfunction(call):
        return "agen"
    if inspect.isgeneratorfunction(call):
        return "gen"
    if not callable(call):
        raise ConfigurationError(f"{where}: {call!r} is not callable")
    return "async" if is_async_callable(call) else "sync"


def _signature(call: Callable[..., Any], where: str) -> inspect.Signature:
    try:
        return inspect.signature(call, eval_str=True)
    except (NameError, TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"{where}: cannot read the signature of {callable_name(call)}: {exc}"
        ) from exc


def _compile_param(
    plan: Plan,
    param: inspect.Parameter,
    path_params: dict[str, type],
    where: str,
    stack: tuple[Any, ...],
) -> None:
    if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
        raise ConfigurationError(f"{where}: *args, **kwargs and positional-only are not injected")
    annotation, marker = _split_annotation(param)
    if isinstance(marker, DependsInfo):
        dependency = marker.dependency or annotation
        if dependency is _REQUIRED or not callable(dependency):
            raise ConfigurationError(f"{where}: Depends() needs a callable or a class annotation")
        sub = _compile(dependency, path_params, where, (*stack, plan.call))
        plan.dependencies.append((param.name, Dependency(sub, marker.use_cache)))
        plan.body_fields.extend(sub.body_fields)
        return
    if marker is None:
        special = _special_extractor(annotation)
        if special is not None:
            plan.extractors.append((param.name, (), special))
            return
    source, key, extractor = _param_extractor(param, annotation, marker, path_params, where)
    if isinstance(extractor, _BodyField):
        plan.body_fields.append(extractor)
        extract: Extractor = extractor.extract
    else:
        extract = extractor
    plan.extractors.append((param.name, (source, key) if key else (source,), extract))


def _split_annotation(param: inspect.Parameter) -> tuple[Any, DependsInfo | ParamInfo | None]:
    """The parameter's type and its marker, from ``Annotated[...]`` or from the default."""
    annotation = param.annotation
    marker: DependsInfo | ParamInfo | None = None
    if typing.get_origin(annotation) is Annotated:
        annotation, *extras = typing.get_args(annotation)
        marker = next((e for e in extras if isinstance(e, DependsInfo | ParamInfo)), None)
    if isinstance(param.default, DependsInfo | ParamInfo):
        marker = param.default
    return annotation, marker


def _special_extractor(annotation: Any) -> Extractor | None:
    if isinstance(annotation, type) and issubclass(annotation, Request):
        return _get_request
    if annotation is BackgroundTasks:
        return _get_tasks
    return None


def _get_request(solver: Solver) -> Request:
    return solver.request


def _get_tasks(solver: Solver) -> BackgroundTasks:
    return solver.context.background_tasks()


def _default_of(
    param: inspect.Parameter, marker: DependsInfo | ParamInfo | None, where: str
) -> Any:
    # ``q: str = Query("x")`` and ``q: Annotated[str, Query("x")]`` both default to "x";
    # ``q: Annotated[str, Query()] = "x"`` too. Two different defaults are ambiguous.
    if not isinstance(marker, ParamInfo) or marker is param.default:
        return marker.default if isinstance(marker, ParamInfo) else param.default
    if marker.default is _REQUIRED:
        return param.default
    if param.default is not _REQUIRED:
        raise ConfigurationError(f"{where}: a default both in {marker!r} and after '='")
    return marker.default


def _param_extractor(
    param: inspect.Parameter,
    annotation: Any,
    marker: ParamInfo | None,
    path_params: dict[str, type],
    where: str,
) -> tuple[str, str, Extractor | _BodyField]:
    default = _default_of(param, marker, where)
    if annotation is _REQUIRED:
        annotation = str if not isinstance(marker, BodyInfo) else Any
    inner, optional = unwrap_optional(annotation)
    if optional and default is _REQUIRED and marker is None:
        default = None  # FastAPI treats a bare ``X | None`` as optional too
    if marker is None and param.name in path_params:
        return "path", param.name, _path_extractor(param.name, inner, path_params, where)
    if isinstance(marker, BodyInfo) or (marker is None and is_body_type(annotation)):
        key = (marker.alias if marker else None) or param.name
        body = _BodyField(key, json_converter(annotation, where), default_maker(default))
        body.embedded = isinstance(marker, BodyInfo) and marker.embed
        return "body", "", body
    source = marker.source if marker else "query"
    key = _request_key(param.name, marker)
    return source, key, _string_extractor(source, key, inner, default, where)


def _request_key(name: str, marker: ParamInfo | None) -> str:
    if marker is not None and marker.alias:
        return marker.alias if not isinstance(marker, HeaderInfo) else marker.alias.lower()
    if isinstance(marker, HeaderInfo):
        return name.replace("_", "-") if marker.convert_underscores else name
    return name


def _path_extractor(
    name: str, annotation: Any, path_params: dict[str, type], where: str
) -> Extractor:
    if annotation is path_params[name] or annotation is Any:

        def read(solver: Solver) -> Any:
            return solver.request.scope["path_params"][name]

        return read
    convert = string_converter(annotation, where)

    def read_and_convert(solver: Solver) -> Any:
        return convert(str(solver.request.scope["path_params"][name]))

    return read_and_convert


def _string_extractor(
    source: str, key: str, annotation: Any, default: Any, where: str
) -> Extractor:
    getter = _SOURCES[source]
    missing = default_maker(default)
    if is_sequence(annotation):
        convert_item = string_converter(item_type(annotation), where)

        def extract_many(solver: Solver) -> Any:
            values = getter(solver.request, key, True)
            if not values:
                return missing()
            return [convert_item(v) for v in values]

        return extract_many
    convert = string_converter(annotation, where)

    def extract(solver: Solver) -> Any:
        value = getter(solver.request, key, False)
        return missing() if value is None else convert(value)

    return extract


_IMMUTABLE = (str, bytes, int, float, bool, type(None), enum.Enum, uuid.UUID, frozenset)


def default_maker(default: Any) -> Callable[[], Any]:
    """What a parameter gets when the request lacks it, decided at registration.

    A mutable default (``tags: list[str] = []``) is copied for each request, as FastAPI
    does, so one request's changes never leak into the next.
    """
    if default is _REQUIRED:
        return _required
    if isinstance(default, _IMMUTABLE):
        return lambda: default
    return lambda: copy.deepcopy(default)


def _required() -> Any:
    raise Invalid("missing", "Field required", None)


def _from_query(request: Request, key: str, many: bool) -> Any:
    params = request.query_params
    return params.getlist(key) if many else params.get(key)


def _from_header(request: Request, key: str, many: bool) -> Any:
    headers = request.headers
    return headers.getlist(key) if many else headers.get(key)


def _from_cookie(request: Request, key: str, many: bool) -> Any:
    value = request.cookies.get(key)
    return ([value] if value is not None else []) if many else value


_SOURCES: dict[str, Callable[[Request, str, bool], Any]] = {
    "query": _from_query,
    "header": _from_header,
    "cookie": _from_cookie,
}


# --- per request ------------------------------------------------------------------------


async def read_body(solver: Solver) -> None:
    """Read and decode the JSON body once, before any extractor needs it."""
    raw = await solver.request.body()
    if not raw:
        return
    try:
        solver.json = loads_json(raw)
    except ValueError as exc:
        solver.json = _INVALID_JSON
        solver.errors.append(
            {"loc": ["body"], "msg": f"JSON decode error: {exc}", "type": "json_invalid"}
        )


async def solve(plan: Plan, solver: Solver) -> dict[str, Any]:
    """Compute the keyword arguments for ``plan.call``; errors go to ``solver.errors``."""
    kwargs: dict[str, Any] = {}
    for name, dependency in plan.dependencies:
        kwargs[name] = await _resolve(dependency, solver)
    extract_into(kwargs, plan, solver)
    return kwargs


def extract_into(kwargs: dict[str, Any], plan: Plan, solver: Solver) -> dict[str, Any]:
    """Fill the parameters read straight from the request (no dependencies)."""
    for name, loc, extract in plan.extractors:
        try:
            kwargs[name] = extract(solver)
        except Invalid as exc:
            # A malformed body is reported once, as such, not again for every body field.
            if not (loc[0] == "body" and solver.json is _INVALID_JSON):
                solver.errors.append(_error(loc, exc))
    return kwargs


def _error(loc: tuple[Any, ...], exc: Invalid) -> dict[str, Any]:
    error = {"loc": [*loc, *exc.loc], "msg": exc.msg, "type": exc.type}
    if exc.value is not None:
        error["input"] = exc.value
    return error


async def _resolve(dependency: Dependency, solver: Solver) -> Any:
    plan = dependency.plan
    cache = solver.context.cache
    if dependency.use_cache and cache is not None and plan.call in cache:
        return cache[plan.call]
    errors_before = len(solver.errors)
    kwargs = await solve(plan, solver)
    if len(solver.errors) > errors_before:
        return None  # its own inputs are invalid: the 422 will say so; don't call it
    value = await call_plan(plan, kwargs, solver.context)
    if dependency.use_cache:
        # Re-read: resolving this dependency's own dependencies may have created the cache.
        if solver.context.cache is None:
            solver.context.cache = {}
        solver.context.cache[plan.call] = value
    return value


async def call_plan(plan: Plan, kwargs: dict[str, Any], context: RequestContext) -> Any:
    """Call ``plan.call`` the way its kind needs: await, worker thread, or context manager."""
    mode = plan.mode
    if mode == "async":
        return await plan.call(**kwargs)
    if mode == "sync":
        return await anyio.to_thread.run_sync(functools.partial(plan.call, **kwargs))
    if mode == "agen":
        manager = contextlib.asynccontextmanager(plan.call)(**kwargs)
        value = await manager.__aenter__()
        context.add_teardown(functools.partial(_exit_async, manager))
        return value
    sync_manager = contextlib.contextmanager(plan.call)(**kwargs)
    value = await run_in_thread(sync_manager.__enter__)
    context.add_teardown(functools.partial(_exit_sync, sync_manager))
    return value


async def _exit_async(
    manager: contextlib.AbstractAsyncContextManager[Any], exc: BaseException | None
) -> None:
    await manager.__aexit__(type(exc) if exc else None, exc, exc.__traceback__ if exc else None)


async def _exit_sync(
    manager: contextlib.AbstractContextManager[Any], exc: BaseException | None
) -> None:
    await run_in_thread(
        manager.__exit__, type(exc) if exc else None, exc, exc.__traceback__ if exc else None
    )


async def run_endpoint(plan: Plan, solver: Solver) -> Any:
    """Solve the endpoint's parameters, raise one 422 listing every error, then call it."""
    if plan.body_fields:
        await read_body(solver)
    if plan.dependencies:
        kwargs = await solve(plan, solver)
    else:
        kwargs = extract_into({}, plan, solver)
    if solver.errors:
        raise RequestValidationError(solver.errors)
    if plan.mode == "async":
        return await plan.call(**kwargs)
    return await call_plan(plan, kwargs, solver.context)
