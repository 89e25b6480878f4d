"""What kind of callable a handler or dependency is: how it must be called.

FastAPI serves callable instances, ``functools.partial`` objects and ``functools.wraps``
wrappers by the kind of the function they lead to; so does asgi_bg. The kind is read
once, at registration.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, Literal

Kind = Literal["async", "sync", "gen", "agen"]


def kind_of(call: Callable[..., Any]) -> Kind:
    """``"async"``, ``"sync"``, ``"gen"`` or ``"agen"``, looking through partials,
    ``functools.wraps`` wrappers and an instance's ``__call__``; a class is ``"sync"``
    (calling it builds an instance)."""
    seen: set[int] = set()
    target: Any = call
    while id(target) not in seen:
        seen.add(id(target))
        kind = _own_kind(target)
        if kind is not None:
            return kind
        if isinstance(target, type):
            return "sync"
        target = _next(target)
        if target is None:
            break
    return "sync"


def _own_kind(target: Any) -> Kind | None:
    if inspect.isasyncgenfunction(target):
        return "agen"
    if inspect.isgeneratorfunction(target):
        return "gen"
    if inspect.iscoroutinefunction(target):
        return "async"
    return None


def _next(target: Any) -> Any:
    """The callable ``target`` hands the call to, or None when it is the end."""
    if isinstance(target, functools.partial):
        return target.func
    wrapped = getattr(target, "__wrapped__", None)
    if wrapped is not None:
        return wrapped
    if inspect.isfunction(target) or inspect.ismethod(target) or inspect.isbuiltin(target):
        return None
    return getattr(target, "__call__", None)  # noqa: B004 - an instance's own __call__
