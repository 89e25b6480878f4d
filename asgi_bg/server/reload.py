"""`--reload`: watch files with watchfiles and tell the supervisor when one changes."""

from __future__ import annotations

import threading
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from .config import ProcessConfig, optional_module
from .state import logger

_DEFAULT_INCLUDES = ("*.py",)
_DEFAULT_EXCLUDES = (".*", "*.py[cod]", "*~", "__pycache__")


class FileFilter:
    """Which changed files count: a name or a path matches an include glob and no
    exclude glob (on the file or on any of its directories)."""

    def __init__(self, includes: tuple[str, ...], excludes: tuple[str, ...]) -> None:
        self.includes = includes or _DEFAULT_INCLUDES
        self.excludes = (excludes or ()) + _DEFAULT_EXCLUDES

    def __call__(self, change: Any, path: str) -> bool:
        parts = Path(path).parts
        if any(fnmatch(part, glob) for part in parts for glob in self.excludes):
            return False
        return any(fnmatch(parts[-1], glob) or fnmatch(path, glob) for glob in self.includes)


def start_watching(process: ProcessConfig, changed: threading.Event) -> threading.Event:
    """Watch in a daemon thread, setting `changed` on each change; returns its stop event."""
    watchfiles = optional_module("watchfiles", "'asgi_bg[reload]'", "--reload")
    dirs = [str(Path(d).resolve()) for d in process.reload_dirs or (process.app_dir,)]
    file_filter = FileFilter(process.reload_includes, process.reload_excludes)
    stop = threading.Event()

    def watch() -> None:
        for changes in watchfiles.watch(*dirs, watch_filter=file_filter, stop_event=stop):
            names = sorted({Path(path).name for _, path in changes})
            logger.warning("Changes detected in %s: reloading", ", ".join(names))
            changed.set()

    threading.Thread(target=watch, name="asgi_bg-reload", daemon=True).start()
    logger.info("Watching for file changes in %s", ", ".join(dirs))
    return stop
