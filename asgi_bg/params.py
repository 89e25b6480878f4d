"""The parameter markers: ``Depends``, ``Query``, ``Path``, ``Header``, ``Cookie``, ``Body``.

A marker says where a parameter comes from and what it must satisfy. The markers are
functions typed ``-> Any``, as in FastAPI, so that the default-value spelling
``q: str = Query(min_length=3)`` type-checks under mypy --strict.
"""

from __future__ import annotations

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


class ParamInfo:
    """Base of the request-part markers; ``default`` ``...`` or omitted means required.

    Besides ``default`` and ``alias``, a marker holds the value checks (``gt``, ``ge``,
    ``lt``, ``le``, ``multiple_of``, ``min_length``, ``max_length``, ``pattern``) and
    what the OpenAPI document says about the parameter (``title``, ``description``,
    ``examples``, ``deprecated``, ``include_in_schema``).
    """

    source = ""
    __slots__ = (
        "alias",
        "default",
        "deprecated",
        "description",
        "examples",
        "ge",
        "gt",
        "include_in_schema",
        "le",
        "lt",
        "max_length",
        "min_length",
        "multiple_of",
        "pattern",
        "title",
    )

    def __init__(self, default: Any = REQUIRED, **options: Unpack[Constraints]) -> None:
        self.default = REQUIRED if default is ... else default
        self.alias = options.get("alias")
        self.gt = options.get("gt")
        self.ge = options.get("ge")
        self.lt = options.get("lt")
        self.le = options.get("le")
        self.multiple_of = options.get("multiple_of")
        self.min_length = options.get("min_length")
        self.max_length = options.get("max_length")
        self.pattern = options.get("pattern")
        self.title = options.get("title")
        self.description = options.get("description")
        self.examples = options.get("examples")
        self.deprecated = options.get("deprecated")
        self.include_in_schema = options.get("include_in_schema", True)

    def checks(self) -> dict[str, Any]:
        """The value checks that are set, by name (``{"ge": 1, "max_length": 10}``)."""
        return {name: getattr(self, name) for name in CHECKS if getattr(self, name) is not None}

    def __repr__(self) -> str:
        return f"{type(self).__name__.removesuffix('Info')}(alias={self.alias!r})"


class QueryInfo(ParamInfo):
    """Read the parameter from the query string (the default for scalars)."""

    source = "query"
    __slots__ = ()


class PathInfo(ParamInfo):
    """Read the parameter from the path; the name must appear in the route's path."""

    source = "path"
    __slots__ = ()


class HeaderInfo(ParamInfo):
    """Read the parameter from a header; ``user_agent`` reads ``user-agent``."""

    source = "header"
    __slots__ = ("convert_underscores",)

    def __init__(
        self,
        default: Any = REQUIRED,
        *,
        convert_underscores: bool = True,
        **options: Unpack[Constraints],
    ) -> None:
        super().__init__(default, **options)
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
    __slots__ = ("embed", "media_type")

    def __init__(
        self,
        default: Any = REQUIRED,
        *,
        embed: bool = False,
        media_type: str = "application/json",
        **options: Unpack[Constraints],
    ) -> None:
        super().__init__(default, **options)
        self.embed = embed
        self.media_type = media_type


class FormInfo(ParamInfo):
    """Read the parameter from a form field (the ``forms`` extra)."""

    source = "form"
    __slots__ = ()


class FileInfo(ParamInfo):
    """Read the parameter from a form's uploaded file(s) (the ``forms`` extra)."""

    source = "file"
    __slots__ = ()


def Query(default: Any = REQUIRED, **options: Unpack[Constraints]) -> Any:
    """Read the parameter from the query string (the default for scalars)."""
    return QueryInfo(default, **options)


def Path(default: Any = REQUIRED, **options: Unpack[Constraints]) -> Any:
    """Read the parameter from the path, with checks (``Path(ge=1)``); always required."""
    return PathInfo(default, **options)


def Header(
    default: Any = REQUIRED, *, convert_underscores: bool = True, **options: Unpack[Constraints]
) -> Any:
    """Read the parameter from a header; ``user_agent`` reads ``user-agent``."""
    return HeaderInfo(default, convert_underscores=convert_underscores, **options)


def Cookie(default: Any = REQUIRED, **options: Unpack[Constraints]) -> Any:
    """Read the parameter from a cookie."""
    return CookieInfo(default, **options)


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
    return BodyInfo(default, embed=embed, media_type=media_type, **options)


def Form(default: Any = REQUIRED, **options: Unpack[Constraints]) -> Any:
    """Read the parameter from a form field, converted and checked like a query parameter."""
    return FormInfo(default, **options)


def File(default: Any = REQUIRED, **options: Unpack[Constraints]) -> Any:
    """Read the parameter from the form's uploads: ``UploadFile``, a list, or ``bytes``."""
    return FileInfo(default, **options)
