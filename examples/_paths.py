"""Where the examples write their log files.

``ASGI_BG_EXAMPLES_DIR`` picks the folder (read when a task runs, so tests can point it at
a temporary directory); by default it is the working directory, as in the seed.
"""

import os
from pathlib import Path


def log_path(name: str = "log.txt") -> Path:
    """The path of the example's log file."""
    return Path(os.environ.get("ASGI_BG_EXAMPLES_DIR", ".")) / name
