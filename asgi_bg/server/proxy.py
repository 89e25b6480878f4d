"""`--proxy-headers`: take the client's address and scheme from a trusted proxy."""

from __future__ import annotations

import ipaddress
from typing import Any

from .._types import ASGIApp, Receive, Scope, Send

_SCHEMES = {"http", "https"}
_WEBSOCKET_SCHEMES = {"http": "ws", "https": "wss"}


class TrustedPeers:
    """`--forwarded-allow-ips`: `*`, or comma-separated addresses and networks."""

    def __init__(self, spec: str) -> None:
        entries = [entry.strip() for entry in spec.split(",") if entry.strip()]
        self.everyone = "*" in entries
        self._networks = [ipaddress.ip_network(e, strict=False) for e in entries if e != "*"]

    def __contains__(self, host: object) -> bool:
        if self.everyone:
            return True
        try:
            address = ipaddress.ip_address(str(host))
        except ValueError:
            return False  # a Unix socket peer (no address), or a name: only `*` trusts it
        return any(address in network for network in self._networks)


class ProxyHeaders:
    """ASGI middleware: `X-Forwarded-For` sets `client`, `X-Forwarded-Proto` the scheme,
    when the connection comes from a trusted peer; from anyone else both are ignored."""

    def __init__(self, app: ASGIApp, trusted: str) -> None:
        self._app = app
        self._trusted = TrustedPeers(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            peer = client[0] if client else None
            if peer in self._trusted:
                scope = self._forwarded(scope)
        await self._app(scope, receive, send)

    def _forwarded(self, scope: Scope) -> Scope:
        values: dict[bytes, list[str]] = {}
        for name, value in scope["headers"]:
            if name in (b"x-forwarded-for", b"x-forwarded-proto"):
                values.setdefault(name, []).extend(value.decode("latin-1").split(","))
        changes: dict[str, Any] = {}
        protos = [p.strip().lower() for p in values.get(b"x-forwarded-proto", []) if p.strip()]
        if protos and protos[-1] in _SCHEMES:
            proto = protos[-1]
            changes["scheme"] = _WEBSOCKET_SCHEMES[proto] if scope["type"] == "websocket" else proto
        hosts = [h.strip() for h in values.get(b"x-forwarded-for", []) if h.strip()]
        if hosts:
            changes["client"] = (self._client_of(hosts), 0)
        return {**scope, **changes} if changes else scope

    def _client_of(self, hosts: list[str]) -> str:
        # Each proxy appends the address it got the request from: walking from the
        # right, the first address that is not a trusted proxy is the client.
        for host in reversed(hosts):
            if host not in self._trusted:
                return host
        return hosts[0]
