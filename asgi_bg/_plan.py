"""The plan of a handler or dependency: what to call and how to fill each parameter.

Built once at registration by ``injection.compile_plan``; also the introspectable record
of every request parameter (``request_fields``) that the OpenAPI document is built from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._extractors import BodyField, Extractor
from .params import ParamInfo


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
    body_fields: list[BodyField] = field(default_factory=list)
    fields: list[ParamField] = field(default_factory=list)  # its own, not its dependencies'
    reads_form: bool = False  # a form or file parameter here or in a dependency
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

    ``compile_override`` compiles an override (``app.dependency_overrides``) for the
    same route the first time it is used; ``overridden`` keeps each such plan.
    """

    plan: Plan
    use_cache: bool
    scope: str  # "request" or "function"
    compile_override: Callable[[Callable[..., Any]], Plan]
    overridden: dict[Any, Plan] = field(default_factory=dict)
