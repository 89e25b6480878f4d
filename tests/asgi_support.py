"""For tests that drive an ASGI callable directly, as a server would: scopes, and a
wrapper noting when the response is complete."""

from asgi_bg._types import ASGIApp, Message, Receive, Scope, Send


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


def recording(app: ASGIApp, log: list[str], note: str = "response complete") -> ASGIApp:
    """Append ``note`` to ``log`` when the final body message reaches the server."""

    async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
        async def record(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                log.append(note)

        await app(scope, receive, record)

    return wrapper
