"""The parameter markers: ``Depends``, ``Query``, ``Path``, ``Header``, ``Cookie``, ``Body``.

A marker says where a parameter comes from and what it must satisfy. The markers are
functions typed ``-> Any``, as in FastAPI, so that the default-value spelling
``q: str = Query(min_length=3)`` type-checks under mypy --strict.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, Literal, TypedDict, Unpack

from ._concurrency import callable_name

REQUIRED: Any = inspect.Parameter.empty

Scope = Literal["function", "request"]


class DependsInfo:
    """What ``Depends(...)`` returns: the dependency, its caching policy and its scope."""

    __slots__ = ("dependency", "scope", "use_cache")

    def __init__(
        self,
        dependency: Callable[..., Any] | None = None,
        *,
        use_cache: bool = True,
        scope: Scope | None = None,
    ) -> None:
        if scope not in (None, "function", "request"):
            raise ValueError(f"Depends(scope=...) is 'function' or 'request', not {scope!r}")
        self.dependency = dependency
        self.use_cache = use_cache
        self.scope = scope

    def __repr__(self) -> str:
        name = callable_name(self.dependency) if self.dependency else ""
        return f"Depends({name})"


def Depends(
    dependency: Callable[..., Any] | None = None,
    *,
    use_cache: bool = True,
    scope: Scope | None = None,
) -> Any:
    """Declare a dependency: the parameter receives ``dependency``'s result.

    The dependency is injected by the same rules as a handler and, with ``use_cache``
    (the default), called at most once per request however often it is declared.
    ``Depends()`` with no argument uses the parameter's annotation (a class). For a
    generator dependency, ``scope="request"`` (the default) runs the code after
    ``yield`` once the response and the request's tasks are done; ``"function"`` runs
    it as soon as the handler returned, before the response is sent.
    """
    return DependsInfo(dependency, use_cache=use_cache, scope=scope)


class Constraints(TypedDict, total=False):
    """The keyword arguments every request-part marker takes besides ``default``."""

    alias: str | None
    gt: float | None
    ge: float | None
    lt: float | None
    le: float | None
    multiple_of: float | None
    min_length: int | None
    max_length: int | None
    pattern: str | None
    title: str | None
    description: str | None
    examples: list[Any] | None
    deprecated: bool | None
    include_in_schema: bool


# The checks a value goes through, in the order pydantic applies them.
CHECKS = ("gt", "ge", "lt", "le", "multiple_of", "min_length", "max_length", "pattern")


Source = Literal["query", "path", "header", "cookie", "body", "form", "file"]


@dataclasses.dataclass(slots=True, eq=False, repr=False)
class ParamInfo:
    """What a request-part marker returns: where the value comes from and its checks.

    ``source`` is the part of the request the marker reads (``"query"`` for ``Query()``,
    ``"header"`` for ``Header()``, ...); ``default`` ``...`` or omitted means required.
    Besides ``default`` and ``alias``, a marker holds the value checks (``gt``, ``ge``,
    ``lt``, ``le``, ``multiple_of``, ``min_length``, ``max_length``, ``pattern``) and
    what the OpenAPI document says about the parameter (``title``, ``description``,
    ``examples``, ``deprecated``, ``include_in_schema``). ``convert_underscores`` is read
    for headers only, ``embed`` and ``media_type`` for bodies only.
    """

    # eq=False: a marker is told apart by identity (``marker is param.default``) and
    # stays hashable, as ``Annotated[...]`` metadata must be.
    source: Source
    default: Any = REQUIRED
    _: dataclasses.KW_ONLY
    convert_underscores: bool = True
    embed: bool = False
    media_type: str = "application/json"
    alias: str | None = None
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    multiple_of: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    title: str | None = None
    description: str | None = None
    examples: list[Any] | None = None
    deprecated: bool | None = None
    include_in_schema: bool = True

    def __post_init__(self) -> None:
        if self.default is ...:
            self.default = REQUIRED

    def checks(self) -> dict[str, Any]:
        """The value checks that are set, by name (``{"ge": 1, "max_length": 10}``)."""
        return {name: getattr(self, name) for name in CHECKS if getattr(self, name) is not None}

    def __repr__(self) -> str:
        return f"{self.source.capitalize()}(alias={self.alias!r})"


_OPTIONS = frozenset(Constraints.__annotations__)


def _marker(source: Source, default: Any, options: Constraints, **extras: Any) -> ParamInfo:
    # A keyword outside ``Constraints`` (FastAPI's ``example``, ...) is passed over, not
    # refused, so a FastAPI app that spells one still imports (mypy flags it). FastAPI's
    # deprecated ``regex=`` is a check, so it is kept, as ``pattern``.
    given: dict[str, Any] = dict(options)
    if "regex" in given and given.get("pattern") is None:
        given["pattern"] = given["regex"]
    known = {k: v for k, v in given.items() if k in _OPTIONS}
    return ParamInfo(source, default, **extras, **known)


def Query(default: Any = REQUIRED, **options: Unpack[Constraints]) -> Any:
    """Read the parameter from the query string (the default for scalars)."""
    return _marker("query", default, options)


def Path(default: Any = REQUIRED, **options: Unpack[Constraints]) -> Any:
    """Read the parameter from the path, with checks (``Path(ge=1)``); always required."""
    return _marker("path", default, options)


def Header(
    default: Any = REQUIRED, *, convert_underscores: bool = True, **options: Unpack[Constraints]
) -> Any:
    """Read the parameter from a header; ``user_agent`` reads ``user-agent``."""
    return _marker("header", default, options, convert_underscores=convert_underscores)


def Cookie(default: Any = REQUIRED, **options: Unpack[Constraints]) -> Any:
    """Read the parameter from a cookie."""
    return _marker("cookie", default, options)


def Body(
    default: Any = REQUIRED,
    *,
    embed: bool = False,
    media_type: str = "application/json",
    **options: Unpack[Constraints],
) -> Any:
    """Read the parameter from the JSON body.

    With one body parameter the whole body is its value; with several, or with
    ``embed=True``, each reads the key of its name from a JSON object.
    """
    return _marker("body", default, options, embed=embed, media_type=media_type)


def Form(default: Any = REQUIRED, **options: Unpack[Constraints]) -> Any:
    """Read the parameter from a form field, converted and checked like a query parameter."""
    return _marker("form", default, options)


def File(default: Any = REQUIRED, **options: Unpack[Constraints]) -> Any:
    """Read the parameter from the form's uploads: ``UploadFile``, a list, or ``bytes``."""
    return _marker("file", default, options)
