"""``StaticFiles``: serve a folder, mounted with ``app.mount("/static", StaticFiles(...))``.

Starlette's name and arguments. The request path is checked segment by segment before
any file is touched, and the file found is checked to lie inside the folder after its
links are resolved, so no path a client can write reaches a file outside it.
"""

from __future__ import annotations

import os
import stat
from email.utils import parsedate_to_datetime

import anyio.to_thread

from ._context import CONTEXT_KEY
from ._types import Receive, Scope, Send
from .datastructures import Headers, under_root
from .exceptions import HTTPException
from .responses import FileResponse, JSONResponse, Response, local_redirect

# Headers a 304 repeats from the 200 it stands for (RFC 9110 section 15.4.5).
_NOT_MODIFIED_KEEPS = frozenset(
    {b"cache-control", b"content-location", b"date", b"etag", b"expires", b"vary"}
)

Found = tuple[str, os.stat_result]


class StaticFiles:
    """An ASGI app serving the files under ``directory`` to GET and HEAD requests.

    Args:
        directory: the folder to serve.
        html: serve ``index.html`` for a folder (redirecting ``/docs`` to ``/docs/``) and
            ``404.html``, if present, for a path that names no file.
        check_dir: raise ``RuntimeError`` now if ``directory`` is not a folder.
        follow_symlink: serve links that point outside ``directory`` (by default, a file
            whose real path is outside it is a 404).

    Files are sent by ``FileResponse``: ``etag``, ``last-modified``, ``Range`` requests;
    ``If-None-Match`` and ``If-Modified-Since`` answer 304 when the client's copy is
    current. ``..`` segments, backslashes, NUL bytes and names outside the folder are
    404, never an error.
    """

    def __init__(
        self,
        *,
        directory: str | os.PathLike[str],
        html: bool = False,
        check_dir: bool = True,
        follow_symlink: bool = False,
    ) -> None:
        self.directory = os.fspath(directory)
        self.html = html
        self.follow_symlink = follow_symlink
        if check_dir and not os.path.isdir(self.directory):
            raise RuntimeError(f"Directory '{self.directory}' does not exist")
        self._root: str | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1000})
            return
        try:
            response = await self._respond(scope)
        except HTTPException as exc:
            if CONTEXT_KEY in scope:
                raise  # inside an asgi_bg App: its exception handlers answer
            response = _error_response(exc)
        await response(scope, receive, send)

    async def _respond(self, scope: Scope) -> Response:
        if scope["method"] not in ("GET", "HEAD"):
            raise HTTPException(405, headers={"Allow": "GET, HEAD"})
        root = self._root or await self._find_root()
        parts = _segments(_route_path(scope))
        found = None if parts is None else await self._find(root, parts)
        if found is not None and stat.S_ISREG(found[1].st_mode):
            return _file_response(found, scope)
        if found is not None and stat.S_ISDIR(found[1].st_mode) and self.html:
            assert parts is not None
            index = await self._find(root, [*parts, "index.html"])
            if index is not None and stat.S_ISREG(index[1].st_mode):
                return _file_response(index, scope) if _ends_in_slash(scope) else _to_folder(scope)
        if self.html:
            page = await self._find(root, ["404.html"])
            if page is not None and stat.S_ISREG(page[1].st_mode):
                return FileResponse(page[0], status_code=404, stat_result=page[1])
        raise HTTPException(404)

    async def _find(self, root: str, parts: list[str]) -> Found | None:
        return await anyio.to_thread.run_sync(self._lookup, root, parts)

    async def _find_root(self) -> str:
        # Resolved once, at the first request (the folder may be created after the
        # app is built, with check_dir=False); a folder still missing then is the
        # deployment's mistake, raised loudly rather than answered as a 404.
        root = await anyio.to_thread.run_sync(self._resolve_root)
        self._root = root
        return root

    def _resolve_root(self) -> str:
        root = os.path.abspath(self.directory)
        if not self.follow_symlink:
            root = os.path.realpath(root)
        if not os.path.isdir(root):
            raise RuntimeError(f"StaticFiles directory '{self.directory}' is not a folder")
        return root

    def _lookup(self, root: str, parts: list[str]) -> Found | None:
        """The file's real path and stat, or None if it is missing or outside ``root``."""
        joined = os.path.join(root, *parts)
        # realpath resolves every link, so a link leading out of the folder is caught
        # by the check below; with follow_symlink the links are trusted.
        full = joined if self.follow_symlink else os.path.realpath(joined)
        if os.path.commonpath([full, root]) != root:
            return None
        try:
            return full, os.stat(full)
        except (OSError, ValueError):
            return None  # missing, a name too long, no access: not there


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and under_root(path, root_path):
        return path[len(root_path) :]
    return path


def _segments(path: str) -> list[str] | None:
    """The path's segments; None if any could name something outside the folder.

    The server has percent-decoded the path already ("%2e%2e%2f" is "../" here) and it
    is never decoded again. Empty and "." segments are dropped.
    """
    parts = [p for p in path.split("/") if p not in ("", ".")]
    for part in parts:
        if part == ".." or "\\" in part or "\x00" in part or os.path.isabs(part):
            return None
        if os.altsep and os.altsep in part:
            return None
    return parts


def _ends_in_slash(scope: Scope) -> bool:
    return str(scope["path"]).endswith("/")


def _to_folder(scope: Scope) -> Response:
    # A folder's page links to its files relative to the folder: send the browser to
    # the path with its slash (the full path, under whatever root it is mounted).
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if not under_root(path, root_path):
        path = root_path + path
    return local_redirect(path + "/", scope.get("query_string", b""))


def _file_response(found: Found, scope: Scope) -> Response:
    response = FileResponse(found[0], stat_result=found[1])
    if _not_modified(Headers(scope.get("headers", ())), response.headers):
        kept = [(k, v) for k, v in response.raw_headers if k in _NOT_MODIFIED_KEEPS]
        not_modified = Response(status_code=304)
        not_modified.raw_headers += kept
        return not_modified
    return response


def _not_modified(request: Headers, response: Headers) -> bool:
    """RFC 9110 section 13.1: does the client's copy match the file?"""
    if_none_match = request.get("if-none-match")
    if if_none_match is not None:
        # Weak comparison; If-Modified-Since is ignored when If-None-Match is present.
        if if_none_match.strip() == "*":
            return True
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return response["etag"].removeprefix("W/") in tags
    if_modified_since = request.get("if-modified-since")
    if if_modified_since is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
        modified = parsedate_to_datetime(response["last-modified"])
    except (TypeError, ValueError, OverflowError, IndexError):
        return False  # an invalid date is ignored (RFC 9110 section 13.1.3)
    return since.tzinfo is not None and modified <= since


def _error_response(exc: HTTPException) -> Response:
    # Served on its own (not inside an asgi_bg App): answer the way an App would.
    return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)
