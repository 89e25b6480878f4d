"""Case-insensitive headers, multi-valued query parameters, URLs and client addresses."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar
from urllib.parse import parse_qsl, quote

from ._types import Scope

V = TypeVar("V")


class Address(NamedTuple):
    """The peer of a connection, as the server reported it."""

    host: str
    port: int


class Headers(Mapping[str, str]):
    """Read-only, case-insensitive view of raw ASGI headers; ``getlist`` returns every value."""

    __slots__ = ("_items", "raw")

    def __init__(self, raw: Sequence[tuple[bytes, bytes]] = ()) -> None:
        self.raw = list(raw)
        self._items: dict[str, list[str]] | None = None

    def _index(self) -> dict[str, list[str]]:
        items = self._items
        if items is None:
            items = {}
            for key, value in self.raw:
                items.setdefault(key.decode("latin-1").lower(), []).append(value.decode("latin-1"))
            self._items = items
        return items

    def __getitem__(self, key: str) -> str:
        return self._index()[key.lower()][0]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._index()

    def __iter__(self) -> Iterator[str]:
        return iter(self._index())

    def __len__(self) -> int:
        return len(self._index())

    def getlist(self, key: str) -> list[str]:
        """Every value of ``key``, in the order received."""
        return list(self._index().get(key.lower(), ()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.raw!r})"


class MutableHeaders(Headers):
    """Headers of a response being built; edits go straight to the raw list sent to the server."""

    __slots__ = ()

    def __setitem__(self, key: str, value: str) -> None:
        raw_key = key.lower().encode("latin-1")
        self.raw[:] = [(k, v) for k, v in self.raw if k != raw_key]
        self.raw.append((raw_key, value.encode("latin-1")))
        self._items = None

    def __delitem__(self, key: str) -> None:
        raw_key = key.lower().encode("latin-1")
        self.raw[:] = [(k, v) for k, v in self.raw if k != raw_key]
        self._items = None

    def append(self, key: str, value: str) -> None:
        """Add a value without removing existing ones (e.g. a second ``set-cookie``)."""
        self.raw.append((key.lower().encode("latin-1"), value.encode("latin-1")))
        self._items = None


class MultiValues(Mapping[str, V]):
    """A mapping whose keys may repeat: ``m[key]`` is the last value, ``getlist`` all of them.

    Subclasses fill ``_items`` (each key's values, in the order received).
    """

    __slots__ = ("_items",)

    _items: dict[str, list[V]]

    def __getitem__(self, key: str) -> V:
        return self._items[key][-1]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    # Mapping.get's overloads allow any default type; this one keeps to ``V | None``.
    def get(self, key: str, default: V | None = None) -> V | None:  # type: ignore[override]
        """The last value of ``key``, or ``default``."""
        # PERF: Mapping.get goes through __getitem__ and a try block, in Python; the
        # injector asks this once per query parameter.
        values = self._items.get(key)
        return default if values is None else values[-1]

    def getlist(self, key: str) -> list[V]:
        """Every value of ``key``, in the order received."""
        return list(self._items.get(key, ()))


class QueryParams(MultiValues[str]):
    """Multi-valued query string; ``params[key]`` is the last value, ``getlist`` all of them."""

    __slots__ = ()

    def __init__(self, query: str | bytes = b"") -> None:
        if isinstance(query, bytes):
            query = query.decode("latin-1")
        self._items = _parse_query(query)

    def multi_items(self) -> list[tuple[str, str]]:
        """Every ``(key, value)`` pair."""
        return [(k, v) for k, values in self._items.items() for v in values]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.multi_items()!r})"


def _parse_query(query: str) -> dict[str, list[str]]:
    items: dict[str, list[str]] = {}
    if "%" in query or "+" in query:
        for key, value in parse_qsl(query, keep_blank_values=True):
            _add(items, key, value)
        return items
    # PERF: without escapes a split is enough (parse_qsl was ~40% of a 8 µs request
    # with one query parameter), in a plain loop: the generator and the comprehension
    # it replaces cost ~3,600 instructions of a 79,000-instruction /items (callgrind).
    for pair in query.split("&"):
        if pair:
            key, _, value = pair.partition("=")
            _add(items, key, value)
    return items


def _add(items: dict[str, list[str]], key: str, value: str) -> None:
    values = items.get(key)
    if values is None:
        items[key] = [value]
    else:
        values.append(value)


class URL:
    """The request URL rebuilt from the scope: ``scheme``, ``netloc``, ``path``, ``query``."""

    __slots__ = ("netloc", "path", "query", "scheme")

    def __init__(self, scheme: str, netloc: str, path: str, query: str) -> None:
        self.scheme = scheme
        self.netloc = netloc
        self.path = path
        self.query = query

    @classmethod
    def from_scope(cls, scope: Scope, headers: Headers) -> URL:
        """Rebuild the URL the client asked for; the path includes the ``root_path``."""
        scheme = scope.get("scheme", "http")
        netloc = headers.get("host") or _server_netloc(scope.get("server"), scheme)
        path = scope.get("path", "/")
        root_path = scope.get("root_path", "")
        if root_path and not under_root(path, root_path):
            path = root_path + path  # old convention: the server stripped the prefix
        return cls(scheme, netloc, path, scope.get("query_string", b"").decode("latin-1"))

    def __str__(self) -> str:
        tail = f"?{self.query}" if self.query else ""
        return f"{self.scheme}://{self.netloc}{self.path}{tail}"

    def __repr__(self) -> str:
        return f"URL({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))


def under_root(path: str, root_path: str) -> bool:
    """True when ``path`` is ``root_path`` or below it: "/subway" is not below "/sub".

    ASGI lets ``path`` either include the ``root_path`` (the current convention) or not
    (the older one); only a whole-segment prefix means it is included.
    """
    return path.startswith(root_path) and path[len(root_path) : len(root_path) + 1] in ("", "/")


def _server_netloc(server: Any, scheme: str) -> str:
    if not server:
        return "localhost"
    host, port = server[0], server[1]
    default = {"http": 80, "https": 443}.get(scheme)
    return host if port in (None, default) else f"{host}:{port}"


# RFC 3986 3.3: the characters a path may carry unescaped.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


def loggable_path(path: str) -> str:
    """A decoded request path made safe to log: control characters and spaces are
    percent-escaped again, so a request cannot write a forged line into the log."""
    return quote(path, safe=_PATH_SAFE)


class RequestLabel:
    """``METHOD /path`` of a request for log lines, built only if a line is written.

    PERF: escaping the path costs ~0.5 µs; most requests never log anything.
    """

    __slots__ = ("_scope",)

    def __init__(self, scope: Scope) -> None:
        self._scope = scope

    def __str__(self) -> str:
        scope = self._scope
        return f"{scope.get('method', 'WebSocket')} {loggable_path(scope.get('path', '?'))}"
