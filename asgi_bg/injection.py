"""Signature-based injection: the markers, and the registration-time plan.

``compile_plan`` reads a handler's (or dependency's) signature once and turns every
parameter into a small extractor or a sub-plan (``_plan``); per request,
``run_endpoint`` walks that plan (``_execute``): no ``inspect`` calls, no annotation
look-ups. ``request_fields`` lists every request parameter of a plan, for OpenAPI.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import typing
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeGuard

from ._concurrency import callable_name
from ._convert import is_body_type, json_converter, unwrap_optional
from ._execute import call_plan, run_endpoint, solve
from ._extractors import (
    BodyField,
    Extractor,
    Solver,
    checked,
    default_maker,
    get_request,
    get_websocket,
    path_extractor,
    special_extractor,
    string_extractor,
)
from ._form_params import file_extractor, is_upload_annotation
from ._kinds import kind_of
from ._models import pydantic_available
from ._param_models import is_param_model, model_extractor
from ._plan import Dependency, ParamField, Plan, body_embedded, request_fields
from .exceptions import ConfigurationError
from .forms import require_multipart
from .params import REQUIRED as _REQUIRED
from .params import (
    Body,
    Cookie,
    Depends,
    DependsInfo,
    File,
    Form,
    Header,
    ParamInfo,
    Path,
    Query,
)

__all__ = [
    "Body",
    "Cookie",
    "Depends",
    "DependsInfo",
    "File",
    "Form",
    "Header",
    "ParamField",
    "ParamInfo",
    "Path",
    "Plan",
    "Query",
    "Solver",
    "body_embedded",
    "call_plan",
    "compile_plan",
    "plan_reads",
    "request_fields",
    "run_endpoint",
    "solve",
]


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
    plan.reads_form = plan.reads_form or extra.reads_form
    if plan.reads_form and plan.body_fields:
        raise ConfigurationError(f"{where}: a request has one body: JSON or a form, not both")
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
    recompile = functools.partial(compile_plan, path_params=path_params, where=where)
    plan.dependencies.append((name, Dependency(sub, marker.use_cache, scope, recompile)))
    plan.body_fields.extend(sub.body_fields)
    plan.reads_form = plan.reads_form or sub.reads_form


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
        special = special_extractor(annotation, where)
        if special is not None:
            plan.extractors.append((param.name, (), special))
            return
    default = _default_of(param, marker, where)
    if annotation is _REQUIRED:
        annotation = Any if marker is not None and marker.source == "body" else str
    if default is _REQUIRED and marker is None and unwrap_optional(annotation)[1]:
        default = None  # FastAPI treats a bare ``X | None`` as optional too
    if _is_model_param(marker, annotation):
        _add_param_model(plan, param.name, annotation, marker, default, where)
    else:
        found = _param_extractor(param.name, annotation, marker, default, path_params, where)
        _add_param(plan, param.name, annotation, marker, default, found)


def _add_param(
    plan: Plan,
    name: str,
    annotation: Any,
    marker: ParamInfo | None,
    default: Any,
    found: tuple[str, str, Extractor | BodyField],
) -> None:
    """Record a parameter read from the request: its extractor and its documented field."""
    source, key, extractor = found
    if isinstance(extractor, BodyField):
        plan.body_fields.append(extractor)
        extract: Extractor = extractor.extract
    else:
        extract = extractor
    plan.extractors.append((name, _location(plan, source, key), extract))
    plan.fields.append(
        ParamField(name, source, key, annotation, default is _REQUIRED, default, marker)
    )


def _is_model_param(
    marker: DependsInfo | ParamInfo | None, annotation: Any
) -> TypeGuard[ParamInfo]:
    """``Annotated[Model, Query()]`` (or ``Header()``, ``Cookie()``): a parameter model."""
    return (
        isinstance(marker, ParamInfo)
        and marker.source in ("query", "header", "cookie")
        and is_param_model(unwrap_optional(annotation)[0])
    )


def _add_param_model(
    plan: Plan, name: str, annotation: Any, marker: ParamInfo, default: Any, where: str
) -> None:
    """``Annotated[Model, Query()]``: one extractor for the model, each of its fields
    listed as a parameter of its own (what OpenAPI documents, as FastAPI does)."""
    inner, _ = unwrap_optional(annotation)
    extract, fields = model_extractor(inner, marker, default, where)
    plan.extractors.append((name, (marker.source,), extract))
    plan.fields.extend(
        ParamField(f.name, marker.source, f.key, f.annotation, f.required, f.default, f.info)
        for f in fields
    )


def _location(plan: Plan, source: str, key: str) -> tuple[str, ...]:
    """Where a 422 points; form and file fields are FastAPI's ``["body", name]``."""
    if source in ("form", "file"):
        plan.reads_form = True
        return ("body", key)
    return (source, key) if source != "body" else ("body",)


def _split_annotation(param: inspect.Parameter) -> tuple[Any, DependsInfo | ParamInfo | None]:
    """The parameter's type and its marker, from ``Annotated[...]`` or from the default."""
    annotation = _unalias(param.annotation)
    marker: DependsInfo | ParamInfo | None = None
    if typing.get_origin(annotation) is Annotated:
        annotation, *extras = typing.get_args(annotation)
        marker = next((e for e in extras if isinstance(e, DependsInfo | ParamInfo)), None)
        others = [e for e in extras if not isinstance(e, DependsInfo | ParamInfo | str)]
        if others and pydantic_available():
            # ``Annotated[int, Field(gt=0)]``, ``PositiveInt``: pydantic's own checks.
            annotation = Annotated[(annotation, *others)]
    if isinstance(param.default, DependsInfo | ParamInfo):
        marker = param.default
    return annotation, marker


def _unalias(annotation: Any) -> Any:
    """``type UserDep = Annotated[...]`` (PEP 695, or typing_extensions' TypeAliasType)
    stands for its value. Checked by name: ``typing.TypeAliasType`` is 3.12+ only."""
    while type(annotation).__name__ == "TypeAliasType" and hasattr(annotation, "__value__"):
        annotation = annotation.__value__
    return annotation


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
) -> tuple[str, str, Extractor | BodyField]:
    inner, _ = unwrap_optional(annotation)
    given = marker.source if marker is not None else None
    if given in ("form", "file") or (marker is None and is_upload_annotation(inner)):
        return _form_extractor(name, inner, marker, default, where)
    if given == "path" or (marker is None and name in path_params):
        if name not in path_params:
            raise ConfigurationError(f"{where}: Path() but the route's path has no {{{name}}}")
        return "path", name, path_extractor(name, inner, marker, path_params, where)
    if given == "body" or (marker is None and is_body_type(annotation)):
        key = (marker.alias if marker else None) or name
        convert = checked(json_converter(annotation, where), marker, inner, where)
        body = BodyField(key, convert, default_maker(default))
        body.embedded = marker is not None and marker.embed
        return "body", key, body
    source = given or "query"
    key = _request_key(name, marker)
    return source, key, string_extractor(source, key, inner, marker, default, where)


def _form_extractor(
    name: str, annotation: Any, marker: ParamInfo | None, default: Any, where: str
) -> tuple[str, str, Extractor]:
    require_multipart(where)
    key = _request_key(name, marker)
    if (marker is not None and marker.source == "file") or is_upload_annotation(annotation):
        return "file", key, file_extractor(key, annotation, default_maker(default), where)
    return "form", key, string_extractor("form", key, annotation, marker, default, where)


def _request_key(name: str, marker: ParamInfo | None) -> str:
    if marker is not None and marker.alias:
        return marker.alias.lower() if marker.source == "header" else marker.alias
    if marker is not None and marker.source == "header":
        return name.replace("_", "-") if marker.convert_underscores else name
    return name


def plan_reads(plan: Plan, kind: str) -> bool:
    """True when ``plan`` or a dependency of it takes a parameter annotated ``Request``
    (``kind="request"``) or ``WebSocket`` (``kind="websocket"``)."""
    wanted = get_request if kind == "request" else get_websocket
    if any(extract is wanted for _, _, extract in plan.extractors):
        return True
    return any(plan_reads(dependency.plan, kind) for _, dependency in plan.dependencies)
