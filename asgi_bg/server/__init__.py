"""The embedded HTTP/1.1 server: any ASGI 3 app, on anyio and h11.

`run(app, ...)` blocks and handles signals; `serve(app, ..., task_status=...)` is the
async form for embedding (tests, larger programs).
"""

from .config import DEFAULT_MAX_BODY, ServerConfig, ServerOptions
from .lifespan import LifespanFailure
from .run import run
from .server import serve

__all__ = ["DEFAULT_MAX_BODY", "LifespanFailure", "ServerConfig", "ServerOptions", "run", "serve"]
