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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

import anyio.to_thread

from ._concurrency import callable_name, run_in_thread
from ._context import RequestContext, Teardown
from ._convert import (
    Converter,
    Invalid,
    convert_each,
    is_body_type,
    is_sequence,
    item_type,
    json_converter,
    string_converter,
    unwrap_optional,
)
from ._kinds import kind_of
from .background import BackgroundTasks
from .exceptions import ConfigurationError, RequestValidationError
from .params import REQUIRED as _REQUIRED
from .params import (
    Body,
    BodyInfo,
    Cookie,
    CookieInfo,
    Depends,
    DependsInfo,
    Header,
    HeaderInfo,
    ParamInfo,
    Path,
    PathInfo,
    Query,
    QueryInfo,
)
from .requests import Request, loads_json

__all__ = [
    "Body",
    "BodyInfo",
    "Cookie",
    "CookieInfo",
    "Depends",
    "DependsInfo",
    "Header",
    "HeaderInfo",
    "ParamField",
    "ParamInfo",
    "Path",
    "PathInfo",
    "Plan",
    "Query",
    "QueryInfo",
    "Solver",
    "body_embedded",
    "compile_plan",
    "request_fields",
    "run_endpoint",
]

_NO_BODY: Any = object()
_UNREAD: Any = object()  # the body was not read: no body field so far needed it
_INVALID_JSON: Any = object()


class Solver:
    """Per-request state while a plan runs: the request, the context, collected errors.

    ``overrides`` is the app's ``dependency_overrides``, read from ``request.scope["app"]``
    unless given; ``exits`` holds the exit code of ``scope="function"`` generator
    dependencies, run as soon as the handler returned.
    """

    __slots__ = ("context", "errors", "exits", "json", "overrides", "request")

    def __init__(
        self,
        request: Request,
        context: RequestContext,
        overrides: Mapping[Any, Callable[..., Any]] | None = None,
    ) -> None:
        self.request = request
        self.context = context
        self.errors: list[dict[str, Any]] = []
        self.json: Any = _UNREAD
        self.exits: list[Teardown] = []
        if overrides is None:
            overrides = getattr(request.scope.get("app"), "dependency_overrides", None)
        self.overrides = overrides


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


@dataclass(frozen=True, slots=True)
class ParamField:
    """One parameter read from the request, as declared: what OpenAPI documents.

    ``source`` is ``"path"``, ``"query"``, ``"header"``, ``"cookie"`` or ``"body"``;
    ``key`` is the name on the wire (the alias, the header's name, the body key);
    ``default`` is meaningful only when not ``required``; ``info`` is the marker, if
    any, with its checks and descriptions.
    """

    name: str
    source: str
    key: str
    annotation: Any
    required: bool
    default: Any
    info: ParamInfo | None


@dataclass(slots=True)
class Plan:
    """What to call and how to fill each of its parameters."""

    call: Callable[..., Any]
    name: str
    mode: str  # "async", "sync", "gen", "agen"
    # Named dependencies fill a parameter; those of ``dependencies=[...]`` have no name.
    dependencies: list[tuple[str | None, Dependency]] = field(default_factory=list)
    extractors: list[tuple[str, tuple[Any, ...], Extractor]] = field(default_factory=list)
    body_fields: list[_BodyField] = field(default_factory=list)
    fields: list[ParamField] = field(default_factory=list)  # its own, not its dependencies'
    # For a generator: the context-manager factory, built once here, not per request.
    manager: Callable[..., Any] | None = None


def request_fields(plan: Plan) -> list[ParamField]:
    """Every request parameter of ``plan`` and its dependencies, each ``(source, key)``
    once: the plan's own in declaration order, then each dependency's (as FastAPI)."""
    seen: dict[tuple[str, str], ParamField] = {}
    _collect_fields(plan, seen)
    return list(seen.values())


def _collect_fields(plan: Plan, seen: dict[tuple[str, str], ParamField]) -> None:
    for param in plan.fields:
        seen.setdefault((param.source, param.key), param)
    for _, dependency in plan.dependencies:
        _collect_fields(dependency.plan, seen)


def body_embedded(plan: Plan) -> bool:
    """True when the body is an object holding each body field under its key (several
    body fields, or ``Body(embed=True)``); False when the one body field is the body."""
    return any(body_field.embedded for body_field in plan.body_fields)


@dataclass(slots=True)
class Dependency:
    """A ``Depends`` resolved at registration: its plan, caching policy and scope.

    ``path_params`` and ``where`` are kept to compile an override the first time it is
    used; ``overridden`` maps each override seen so far to its plan.
    """

    plan: Plan
    use_cache: bool
    scope: str  # "request" or "function"
    path_params: dict[str, type]
    where: str
    overridden: dict[Any, Plan] = field(default_factory=dict)


def compile_plan(
    call: Callable[..., Any],
    path_params: dict[str, type],
    *,
    where: str,
    dependencies: Sequence[Any] = (),
) -> Plan:
    """Analyse ``call``'s signature into a plan; raises ``ConfigurationError`` naming the
    parameter it cannot serve. ``path_params`` maps path parameter names to the type the
    router's converter yields; ``dependencies`` are ``Depends(...)`` run before the
    handler for their effects, their values discarded.
    """
    plan = _compile(call, path_params, where, stack=())
    extra = Plan(call, plan.name, plan.mode)
    for marker in dependencies:
        if not isinstance(marker, DependsInfo) or marker.dependency is None:
            raise ConfigurationError(f"{where}: dependencies=[...] takes Depends(callable) items")
        _add_dependency(extra, None, marker, marker.dependency, path_params, where, ())
    plan.dependencies[:0] = extra.dependencies
    plan.body_fields[:0] = extra.body_fields
    _settle_body(plan)
    return plan


def _settle_body(plan: Plan) -> None:
    # One key declared by the handler and by a dependency is one body field.
    embedded = len({body_field.key for body_field in plan.body_fields}) > 1
    for body_field in plan.body_fields:
        body_field.embedded = body_field.embedded or embedded


def _compile(
    call: Callable[..., Any], path_params: dict[str, type], where: str, stack: tuple[Any, ...]
) -> Plan:
    if call in stack:
        raise ConfigurationError(f"{where}: dependency cycle through {callable_name(call)}")
    if not callable(call):
        raise ConfigurationError(f"{where}: {call!r} is not callable")
    plan = Plan(call, callable_name(call), kind_of(call))
    if plan.mode == "agen":
        plan.manager = contextlib.asynccontextmanager(call)
    elif plan.mode == "gen":
        plan.manager = contextlib.contextmanager(call)
    for param in _signature(call, where).parameters.values():
        _compile_param(plan, param, path_params, f"{where}: parameter {param.name!r}", stack)
    return plan


def _add_dependency(
    plan: Plan,
    name: str | None,
    marker: DependsInfo,
    call: Callable[..., Any],
    path_params: dict[str, type],
    where: str,
    stack: tuple[Any, ...],
) -> None:
    sub = _compile(call, path_params, where, (*stack, plan.call))
    scope = marker.scope or "request"
    plan.dependencies.append((name, Dependency(sub, marker.use_cache, scope, path_params, where)))
    plan.body_fields.extend(sub.body_fields)


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
        _add_dependency(plan, param.name, marker, dependency, path_params, where, stack)
        return
    if marker is None:
        special = _special_extractor(annotation)
        if special is not None:
            plan.extractors.append((param.name, (), special))
            return
    default = _default_of(param, marker, where)
    if annotation is _REQUIRED:
        annotation = str if not isinstance(marker, BodyInfo) else Any
    if default is _REQUIRED and marker is None and unwrap_optional(annotation)[1]:
        default = None  # FastAPI treats a bare ``X | None`` as optional too
    source, key, extractor = _param_extractor(
        param.name, annotation, marker, default, path_params, where
    )
    if isinstance(extractor, _BodyField):
        plan.body_fields.append(extractor)
        extract: Extractor = extractor.extract
    else:
        extract = extractor
    loc = (source, key) if source != "body" else ("body",)
    plan.extractors.append((param.name, loc, extract))
    plan.fields.append(
        ParamField(param.name, source, key, annotation, default is _REQUIRED, default, marker)
    )


def _split_annotation(param: inspect.Parameter) -> tuple[Any, DependsInfo | ParamInfo | None]:
    """The parameter's type and its marker, from ``Annotated[...]`` or from the default."""
    annotation = _unalias(param.annotation)
    marker: DependsInfo | ParamInfo | None = None
    if typing.get_origin(annotation) is Annotated:
        annotation, *extras = typing.get_args(annotation)
        marker = next((e for e in extras if isinstance(e, DependsInfo | ParamInfo)), None)
    if isinstance(param.default, DependsInfo | ParamInfo):
        marker = param.default
    return annotation, marker


def _unalias(annotation: Any) -> Any:
    """``type UserDep = Annotated[...]`` (PEP 695, or typing_extensions' TypeAliasType)
    stands for its value. Checked by name: ``typing.TypeAliasType`` is 3.12+ only."""
    while type(annotation).__name__ == "TypeAliasType" and hasattr(annotation, "__value__"):
        annotation = annotation.__value__
    return annotation


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
    name: str,
    annotation: Any,
    marker: ParamInfo | None,
    default: Any,
    path_params: dict[str, type],
    where: str,
) -> tuple[str, str, Extractor | _BodyField]:
    inner, _ = unwrap_optional(annotation)
    if isinstance(marker, PathInfo) or (marker is None and name in path_params):
        if name not in path_params:
            raise ConfigurationError(f"{where}: Path() but the route's path has no {{{name}}}")
        return "path", name, _path_extractor(name, inner, path_params, where)
    if isinstance(marker, BodyInfo) or (marker is None and is_body_type(annotation)):
        key = (marker.alias if marker else None) or name
        body = _BodyField(key, json_converter(annotation, where), default_maker(default))
        body.embedded = isinstance(marker, BodyInfo) and marker.embed
        return "body", key, body
    source = marker.source if marker else "query"
    key = _request_key(name, marker)
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
        origin = typing.get_origin(annotation) or annotation
        build = origin if origin in (tuple, set, frozenset) else list

        def extract_many(solver: Solver) -> Any:
            values = getter(solver.request, key, True)
            if not values:
                return missing()
            return build(convert_each(convert_item, enumerate(values)))

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
        solver.json = _NO_BODY
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
        value = await _resolve(dependency, solver)
        if name is not None:
            kwargs[name] = value
    extract_into(kwargs, plan, solver)
    return kwargs


def extract_into(kwargs: dict[str, Any], plan: Plan, solver: Solver) -> dict[str, Any]:
    """Fill the parameters read straight from the request (no dependencies)."""
    for name, loc, extract in plan.extractors:
        try:
            kwargs[name] = extract(solver)
        except Invalid as exc:
            # A malformed body is reported once, as such, not again for every body field.
            if loc[0] == "body" and solver.json is _INVALID_JSON:
                continue
            error = _error(loc, exc)
            # A body field declared twice (handler and dependency) is reported once.
            if loc[0] != "body" or error not in solver.errors:
                solver.errors.append(error)
    return kwargs


def _error(loc: tuple[Any, ...], exc: Invalid) -> dict[str, Any]:
    # "input" is always there, null for a missing value, as in FastAPI's answers.
    return {"type": exc.type, "loc": [*loc, *exc.loc], "msg": exc.msg, "input": exc.value}


async def _resolve(dependency: Dependency, solver: Solver) -> Any:
    plan = dependency.plan
    if solver.overrides:
        plan = await _overridden(dependency, solver)
    cache = solver.context.cache
    if dependency.use_cache and cache is not None and plan.call in cache:
        return cache[plan.call]
    errors_before = len(solver.errors)
    kwargs = await solve(plan, solver)
    if len(solver.errors) > errors_before:
        return None  # its own inputs are invalid: the 422 will say so; don't call it
    value = await call_plan(plan, kwargs, solver, dependency.scope)
    if dependency.use_cache:
        # Re-read: resolving this dependency's own dependencies may have created the cache.
        if solver.context.cache is None:
            solver.context.cache = {}
        solver.context.cache[plan.call] = value
    return value


async def _overridden(dependency: Dependency, solver: Solver) -> Plan:
    """The plan of the app's override for this dependency, compiled on first use."""
    assert solver.overrides is not None
    replacement = solver.overrides.get(dependency.plan.call)
    if replacement is None:
        return dependency.plan
    plan = dependency.overridden.get(replacement)
    if plan is None:
        plan = compile_plan(replacement, dependency.path_params, where=dependency.where)
        dependency.overridden[replacement] = plan
    if plan.body_fields and solver.json is _UNREAD:
        await read_body(solver)  # the original did not need the body; its override does
    return plan


async def call_plan(
    plan: Plan, kwargs: dict[str, Any], solver: Solver, scope: str = "request"
) -> Any:
    """Call ``plan.call`` the way its kind needs: await, worker thread, or context manager.

    A generator's exit code is registered as a teardown of the request, or, with
    ``scope="function"``, of the handler's call (``solver.exits``).
    """
    mode = plan.mode
    if mode == "async":
        return await plan.call(**kwargs)
    if mode == "sync":
        return await anyio.to_thread.run_sync(functools.partial(plan.call, **kwargs))
    teardowns = solver.exits if scope == "function" else solver.context.teardowns
    assert plan.manager is not None
    if mode == "agen":
        manager = plan.manager(**kwargs)
        value = await manager.__aenter__()
        teardowns.append(functools.partial(_exit_async, manager))
        return value
    sync_manager = plan.manager(**kwargs)
    value = await run_in_thread(sync_manager.__enter__)
    teardowns.append(functools.partial(_exit_sync, sync_manager))
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
    """Solve the endpoint's parameters, raise one 422 listing every error, then call it.

    The exit code of ``scope="function"`` dependencies runs before this returns, with
    the handler's exception if it raised; what that code raises replaces it.
    """
    try:
        if plan.body_fields:
            await read_body(solver)
        if plan.dependencies:
            kwargs = await solve(plan, solver)
        else:
            kwargs = extract_into({}, plan, solver)
        if solver.errors:
            raise RequestValidationError(solver.errors)
        if plan.mode == "async":
            result = await plan.call(**kwargs)
        else:
            result = await call_plan(plan, kwargs, solver)
    except BaseException as exc:
        if solver.exits:
            await _exit_function_scope(solver, exc)
        raise
    if solver.exits:
        await _exit_function_scope(solver, None)
    return result


async def _exit_function_scope(solver: Solver, exc: BaseException | None) -> None:
    """Run the function-scoped exit code, last entered first; raise what it raised."""
    error = exc
    while solver.exits:
        exit_code = solver.exits.pop()
        try:
            await exit_code(error)
        except Exception as raised:
            error = raised
    if error is not exc and error is not None:
        raise error
