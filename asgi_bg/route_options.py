"""The keyword options of a route and of a group of routes, and how groups combine.

A route takes ``status_code``, ``response_class``, ``name``, ``dependencies`` and the
metadata FastAPI documents in OpenAPI (``tags``, ``summary``, ``description``,
``deprecated``, ``response_model``, ``responses``, ``operation_id``,
``include_in_schema``). A ``Router``, ``include_router`` and the ``App`` take the
group options (``dependencies``, ``tags``, ``deprecated``, ``responses``,
``include_in_schema``), which apply to every route in the group, outermost first.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, TypedDict

from .responses import Response

Responses = Mapping[int | str, Mapping[str, Any]]


class GroupOptions(TypedDict, total=False):
    """Options a ``Router``, ``include_router`` or the ``App`` apply to all their routes."""

    dependencies: Sequence[Any] | None
    tags: Sequence[str | Enum] | None
    deprecated: bool | None
    responses: Responses | None
    include_in_schema: bool


class RouteOptions(GroupOptions, total=False):
    """The keyword options of one route."""

    name: str | None
    status_code: int
    response_class: type[Response]
    summary: str | None
    description: str | None
    response_model: Any
    operation_id: str | None


@dataclass(frozen=True, slots=True)
class Group:
    """The combined options of the groups around a route (outermost first)."""

    dependencies: tuple[Any, ...] = ()
    tags: tuple[str | Enum, ...] = ()
    deprecated: bool | None = None
    responses: Mapping[int | str, Mapping[str, Any]] = field(default_factory=dict)
    include_in_schema: bool = True

    @classmethod
    def of(cls, options: GroupOptions) -> Group:
        """The group described by ``options``."""
        return cls(
            tuple(options.get("dependencies") or ()),
            tuple(options.get("tags") or ()),
            options.get("deprecated"),
            dict(options.get("responses") or {}),
            options.get("include_in_schema", True),
        )

    def around(self, options: GroupOptions) -> RouteOptions:
        """``options`` (a route's or an inner group's) inside this group."""
        deprecated = options.get("deprecated")
        merged: RouteOptions = {**options}  # type: ignore[typeddict-item]
        merged["dependencies"] = [*self.dependencies, *(options.get("dependencies") or ())]
        merged["tags"] = [*self.tags, *(options.get("tags") or ())]
        merged["deprecated"] = self.deprecated or deprecated
        merged["responses"] = {**self.responses, **(options.get("responses") or {})}
        merged["include_in_schema"] = self.include_in_schema and options.get(
            "include_in_schema", True
        )
        return merged


def description_of(endpoint: Callable[..., Any], description: str | None) -> str:
    """The route's description: given, else the endpoint's docstring up to a form feed,
    as FastAPI does."""
    if description is None:
        description = inspect.cleandoc(getattr(endpoint, "__doc__", None) or "")
    return description.split("\f")[0].strip()


def response_model_of(endpoint: Callable[..., Any], response_model: Any) -> Any:
    """The declared response model: given, else the return annotation unless it is a
    ``Response`` (FastAPI's rule); None when there is none."""
    if response_model is not None:
        return response_model
    try:
        annotation = inspect.signature(endpoint, eval_str=True).return_annotation
    except (NameError, TypeError, ValueError):
        return None
    if annotation in (inspect.Signature.empty, None, type(None)):
        return None
    if isinstance(annotation, type) and issubclass(annotation, Response):
        return None
    return annotation
