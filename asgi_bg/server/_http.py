"""Constant tables and small helpers for the HTTP side, built once at import."""

from __future__ import annotations

import http
import time
from email.utils import formatdate

import h11

# Reason phrases for every status code the standard library knows; anything else is
# sent with an empty phrase, which RFC 9112 §4 allows.
STATUS_PHRASES: dict[int, bytes] = {s.value: s.phrase.encode("ascii") for s in http.HTTPStatus}

ASGI_VERSION = "3.0"
# 2.3: the server may send `http.disconnect` after the response completed and does not
# raise on `send` to a closed connection (that is 2.4), so apps keep listening.
HTTP_SPEC_VERSION = "2.3"

SERVER_HEADER = (b"server", b"asgi-bg")


class _DateCache:
    """RFC 9110 §6.6.1: an origin server with a clock must send `Date`.

    PERF: formatting the date costs more than parsing a small request; it only changes
    once a second, so it is rebuilt at most that often.
    """

    __slots__ = ("_second", "_value")

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def header(self) -> tuple[bytes, bytes]:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._value = formatdate(now, usegmt=True).encode("ascii")
        return (b"date", self._value)


date_cache = _DateCache()


def simple_response(conn: h11.Connection, status: int, *, close: bool, head: bool = False) -> bytes:
    """The bytes of a complete plain-text response the server writes on its own.

    For a HEAD request the body is left out (RFC 9110 §9.3.2) but still counted in
    `content-length`, as the same GET would have it.
    """
    body = STATUS_PHRASES.get(status, b"Error")
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode("ascii")),
        SERVER_HEADER,
        date_cache.header(),
    ]
    if close:
        headers.append((b"connection", b"close"))
    start = conn.send(h11.Response(status_code=status, headers=headers, reason=body)) or b""
    data = b"" if head else (conn.send(h11.Data(data=body)) or b"")
    end = conn.send(h11.EndOfMessage()) or b""
    return start + data + end
