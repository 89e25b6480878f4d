"""Finding the app the command line names, and saying plainly why it cannot be found."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any, cast

from .._types import ASGIApp


class AppNotFound(Exception):
    """The module or attribute the command line names does not exist (one-line message)."""


def load_app(target: str, *, factory: bool = False) -> ASGIApp:
    """Import `module:attribute` (the attribute may be dotted).

    Raises `AppNotFound` when the module or attribute is missing; an exception the
    app's own module raises while importing propagates unchanged, with its traceback.
    """
    module_name, sep, attr_path = target.partition(":")
    if not sep or not module_name or not attr_path:
        raise AppNotFound(
            f'Import string "{target}" must be in format "<module>:<attribute>"; '
            f'did you mean "{_suggestion(target)}"?'
        )
    obj: Any = _import(module_name)
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AppNotFound(
                f'Attribute "{attr_path}" not found in module "{module_name}".'
            ) from None
    if factory:
        obj = obj()
    if not callable(obj):
        raise AppNotFound(f'"{target}" is not callable, so it is not an ASGI app.')
    return cast(ASGIApp, obj)


def _import(module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only the module asked for (or a package on its way) missing is "not found";
        # a missing import inside the user's module is their error: its traceback shows.
        if exc.name is None or not (module_name + ".").startswith(exc.name + "."):
            raise
        hint = ""
        if module_name.endswith(".py") or "/" in module_name:
            hint = f'; did you mean "{_suggestion(module_name)}"?'
        raise AppNotFound(f'Could not import module "{module_name}"{hint}') from None


def _suggestion(target: str) -> str:
    """`examples/app.py` and `examples.app` both become `examples.app:app`."""
    module = target.partition(":")[0].removesuffix(".py").strip("/").replace("/", ".")
    return f"{module}:app"


def load_env_file(path: str) -> None:
    """Add `KEY=VALUE` lines to `os.environ` (comments, blank lines, `export ` and quotes
    allowed); variables already set win, as with python-dotenv's default."""
    for number, raw in enumerate(Path(path).read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{path}:{number}: expected KEY=VALUE, got {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        os.environ.setdefault(key.strip(), value)
