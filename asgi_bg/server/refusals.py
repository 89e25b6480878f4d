"""What h11 lets through but an HTTP/1.1 server must refuse, and how to answer what h11
refuses itself: checks on a parsed request head, decided before the app is called."""

from __future__ import annotations

import re

import h11

# RFC 9112 §3.2 and RFC 3986 §3.2.2: `uri-host [ ":" port ]`, where uri-host is an IP
# literal in brackets or a reg-name (possibly empty); anything else in Host is a 400.
# Userinfo (`user@host`) is not a host: RFC 9110 §4.2.4 tells recipients to refuse it.
_HOST = re.compile(
    rb"(?:\[[0-9A-Za-z._~!$&'()*+,;=:-]+\]|(?:[0-9A-Za-z._~!$&'()*+,;=-]|%[0-9A-Fa-f]{2})*)"
    rb"(?::[0-9]*)?"
)


def valid_host(value: bytes) -> bool:
    """Whether `value` is a valid Host header value (or absolute-form authority)."""
    return _HOST.fullmatch(value) is not None


def split_target(target: bytes) -> tuple[bytes | None, bytes, bytes]:
    """`(authority, path, query)` of a request target.

    The authority is None for the usual origin form (`/path?query`); for the absolute
    form (`http://host/path`, RFC 9112 §3.2.2) it is the target's host, b"" when the
    target is not a valid http(s) URI.
    """
    path, _, query = target.partition(b"?")
    if path.startswith(b"/") or b"://" not in path:
        return None, path, query
    scheme, _, rest = path.partition(b"://")
    authority, slash, path = rest.partition(b"/")
    if scheme.lower() not in (b"http", b"https") or not authority:
        return b"", b"/", query
    return authority, slash + path or b"/", query


def malformed(request: h11.Request, authority: bytes | None) -> int:
    """400 or 505 for what h11 lets through but HTTP/1.1 refuses; 0 when well formed."""
    if request.http_version[:1] != b"1":
        return 505  # h11 reads any `HTTP/d.d`; RFC 9110 §15.6.6: other major versions
    host: bytes | None = None
    length = chunked = False
    for name, value in request.headers:
        if name == b"host":
            host = value
        elif name == b"content-length":
            length = True
        elif name == b"transfer-encoding":
            chunked = True
    if length and chunked:
        # RFC 9112 §6.1: both framings at once is how requests are smuggled past a
        # proxy that reads the other one; h11 would follow Transfer-Encoding and keep
        # the connection. Refuse, and close.
        return 400
    if host is not None and not valid_host(host):
        return 400  # RFC 9112 §3.2 (a missing Host on 1.1 is h11's 400 already)
    if authority is not None and not (authority and valid_host(authority)):
        return 400
    return 0


def error_status(exc: h11.RemoteProtocolError) -> int:
    # h11's only 501s are Transfer-Encodings other than a lone `chunked`. RFC 9112
    # §6.3 requires 400 when chunked is not the final coding, and h11 does not say
    # which case it saw: every refused Transfer-Encoding gets 400 (as uvicorn).
    status = exc.error_status_hint
    return 400 if status == 501 else status


def head_size(request: h11.Request) -> int:
    """The size of the request line and header fields, as sent less the line breaks."""
    fields = sum(len(name) + len(value) + 2 for name, value in request.headers)
    return len(request.method) + len(request.target) + fields
