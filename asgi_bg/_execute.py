"""Running a plan for one request: resolve the dependencies, fill the parameters, call.

A short loop over what registration decided: no ``inspect`` calls, no annotation
look-ups. Generator dependencies register their exit code as teardowns of the request,
or, with ``scope="function"``, run it as soon as the handler returned.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

import anyio.to_thread

from ._concurrency import run_in_thread
from ._convert import Invalid
from ._extractors import INVALID_JSON, UNREAD, Solver, read_body
from ._plan import Dependency, Plan
from .exceptions import RequestValidationError
from .requests import Request


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
            if loc[0] == "body" and solver.json is INVALID_JSON:
                continue
            for item in exc.items():
                error = _error(loc, item)
                # A body field declared twice (handler and dependency) is reported once.
                if loc[0] != "body" or error not in solver.errors:
                    solver.errors.append(error)
    return kwargs


def _error(loc: tuple[Any, ...], exc: Invalid) -> dict[str, Any]:
    # "input" is always there, null for a missing value, as in FastAPI's answers.
    error = {"type": exc.type, "loc": [*loc, *exc.loc], "msg": exc.msg, "input": exc.value}
    if exc.ctx is not None:
        error["ctx"] = exc.ctx
    return error


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
        plan = dependency.compile_override(replacement)
        dependency.overridden[replacement] = plan
    if plan.body_fields and solver.json is UNREAD:
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
    add_teardown = solver.exits.append if scope == "function" else solver.context.add_teardown
    assert plan.manager is not None
    if mode == "agen":
        manager = plan.manager(**kwargs)
        value = await manager.__aenter__()
        add_teardown(functools.partial(_exit_async, manager))
        return value
    sync_manager = plan.manager(**kwargs)
    value = await run_in_thread(sync_manager.__enter__)
    add_teardown(functools.partial(_exit_sync, sync_manager))
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
        elif plan.reads_form:
            assert isinstance(solver.request, Request)  # WebSocket routes refuse form fields
            await solver.request.form()
        if plan.dependencies:
            solver.find_overrides()
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
