"""asgi_bg: a small, fast pure-ASGI framework whose centre is background tasks done right."""

import typing

from .applications import App
from .background import BackgroundTask, BackgroundTasks
from .exceptions import ConfigurationError, HTTPException, RequestValidationError
from .injection import Body, Cookie, Depends, File, Form, Header, Path, Query
from .requests import Request
from .responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from .routing import Router
from .staticfiles import StaticFiles
from .uploads import UploadFile
from .websockets import WebSocket, WebSocketDisconnect, WebSocketState

if typing.TYPE_CHECKING:
    from .server import run


def __getattr__(name: str) -> typing.Any:
    # ``asgi_bg.run`` loads the embedded server on first use, so ``import asgi_bg`` stays
    # light for apps served by another server (the server costs ~20 ms of import time).
    if name == "run":
        from .server import run  # noqa: PLC0415

        return run
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "App",
    "BackgroundTask",
    "BackgroundTasks",
    "Body",
    "ConfigurationError",
    "Cookie",
    "Depends",
    "File",
    "FileResponse",
    "Form",
    "HTMLResponse",
    "HTTPException",
    "Header",
    "JSONResponse",
    "Path",
    "PlainTextResponse",
    "Query",
    "RedirectResponse",
    "Request",
    "RequestValidationError",
    "Response",
    "Router",
    "StaticFiles",
    "StreamingResponse",
    "UploadFile",
    "WebSocket",
    "WebSocketDisconnect",
    "WebSocketState",
    "run",
]
