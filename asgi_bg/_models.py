"""pydantic models, when pydantic is installed (``asgi_bg[pydantic]``).

A parameter, body or response model that pydantic validates gets a ``TypeAdapter``
built at registration; per request pydantic itself validates and serialises, so the
behaviour (and the error words) are pydantic's. pydantic is imported only when a route
needs it: ``import asgi_bg`` never loads it.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any

from ._invalid import Invalid
from .exceptions import ConfigurationError

_EXTRA = "install asgi_bg[pydantic] or use a dataclass"


def is_model(annotation: Any) -> bool:
    """True for a pydantic ``BaseModel`` subclass, told without importing pydantic."""
    return isinstance(annotation, type) and any(
        cls.__name__ == "BaseModel" and cls.__module__.startswith("pydantic")
        for cls in annotation.__mro__
    )


def holds_model(annotation: Any) -> bool:
    """True when ``annotation`` is a model or has one inside (``list[Item]``, ``Item | None``)."""
    if is_model(annotation):
        return True
    return any(holds_model(arg) for arg in typing.get_args(annotation))


def pydantic_available() -> bool:
    """Whether pydantic can be imported (it is then imported)."""
    try:
        import pydantic  # noqa: F401, PLC0415 - loaded only for routes that need it
    except ImportError:
        return False
    return True


def model_converter(annotation: Any, where: str) -> Callable[[Any], Any]:
    """Validate with ``pydantic.TypeAdapter(annotation)``; errors as ``Invalid``."""
    adapter = _adapter(annotation, where)
    from pydantic import ValidationError  # noqa: PLC0415

    def convert(value: Any) -> Any:
        try:
            # As FastAPI validates: a non-object says "object to extract fields from".
            return adapter.validate_python(value, from_attributes=True)
        except ValidationError as exc:
            raise _invalid(exc) from None

    return convert


def model_encoder(response_model: Any, where: str) -> Callable[[Any], bytes]:
    """Validate a return value against ``response_model`` and serialise it to JSON,
    keeping only the model's fields (FastAPI's ``response_model`` filtering)."""
    adapter = _adapter(response_model, where)

    def encode(value: Any) -> bytes:
        validated = adapter.validate_python(value, from_attributes=True)
        encoded: bytes = adapter.dump_json(validated, by_alias=True)  # as FastAPI
        return encoded

    return encode


def _adapter(annotation: Any, where: str) -> Any:
    try:
        from pydantic import TypeAdapter  # noqa: PLC0415
    except ImportError:
        raise ConfigurationError(
            f"{where}: {getattr(annotation, '__name__', annotation)} is a pydantic model "
            f"but pydantic is not installed; {_EXTRA}"
        ) from None
    try:
        return TypeAdapter(annotation)
    except Exception as exc:  # pydantic's own schema errors name the problem
        raise ConfigurationError(
            f"{where}: pydantic cannot validate {annotation!r}: {exc}"
        ) from exc


def _invalid(exc: Any) -> Invalid:
    errors = [
        Invalid(e["type"], e["msg"], e.get("input"), tuple(e["loc"]), _plain(e.get("ctx")))
        for e in exc.errors(include_url=False)
    ]
    first, *more = errors
    return Invalid(first.type, first.msg, first.value, first.loc, first.ctx, tuple(more))


def _plain(ctx: dict[str, Any] | None) -> dict[str, Any] | None:
    """pydantic's ``ctx`` may hold exception objects; the 422 answer carries their text."""
    if ctx is None:
        return None
    return {k: v if isinstance(v, str | int | float | bool) else str(v) for k, v in ctx.items()}
