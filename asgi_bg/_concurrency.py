"""Telling async callables from sync ones, and running sync ones in worker threads."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
from anyio import CapacityLimiter

T = TypeVar("T")


def is_async_callable(obj: Any) -> bool:
    """True for coroutine functions, partials of them and objects with an async ``__call__``."""
    try:
        return _is_async_cached(obj)
    except TypeError:  # unhashable callable
        return _is_async(obj)


# PERF: add_task asks this for every task; inspect took 0.4 µs of a ~15 µs request with
# one task (in-process loop). Bounded, since closures made per request are new objects.
@functools.lru_cache(maxsize=1024)
def _is_async_cached(obj: Any) -> bool:
    return _is_async(obj)


def _is_async(obj: Any) -> bool:
    while isinstance(obj, functools.partial):
        obj = obj.func
    if inspect.iscoroutinefunction(obj):
        return True
    if isinstance(obj, type):
        return False  # calling a class builds an instance, even if its __call__ is async
    call = getattr(obj, "__call__", None)  # noqa: B004 - we want the bound __call__ itself
    return not inspect.isfunction(obj) and inspect.iscoroutinefunction(call)


async def run_in_thread(
    func: Callable[..., T],
    *args: Any,
    limiter: CapacityLimiter | None = None,
    **kwargs: Any,
) -> T:
    """Run ``func(*args, **kwargs)`` in a worker thread, copying the caller's contextvars."""
    if kwargs:
        func = functools.partial(func, **kwargs)
    return await anyio.to_thread.run_sync(func, *args, limiter=limiter)


def callable_name(func: Any) -> str:
    """A readable ``module.qualname`` for logs, looking through partials."""
    while isinstance(func, functools.partial):
        func = func.func
    qualname = getattr(func, "__qualname__", None) or type(func).__qualname__
    module = getattr(func, "__module__", None)
    return f"{module}.{qualname}" if module else qualname
