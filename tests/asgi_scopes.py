"""HTTP scopes for tests that drive an ASGI callable directly, as a server would."""

from asgi_bg._types import Scope


def http_scope(
    path: str = "/",
    method: str = "GET",
    *,
    query: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> Scope:
    """A complete ASGI 3 HTTP scope from ``testserver``, with a ``state`` scope."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": [(b"host", b"testserver")] if headers is None else headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
        "extensions": {},
    }
