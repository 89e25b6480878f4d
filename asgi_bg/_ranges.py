"""HTTP range requests (RFC 9110 section 14) for files: which bytes to send, and how.

``plan_ranges`` turns a request's ``Range`` and ``If-Range`` headers into a list of
parts; ``multipart`` frames several parts as ``multipart/byteranges``.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

# More parts than this is ignored (the whole file is sent): many tiny ranges are a way
# to make a server do a lot of work for little data (RFC 9110 section 14.2).
MAX_RANGES = 100

# ASCII digits only: fullwidth digits or "1_0" are not positions (as for int params).
# At most 19 of them (any real file's size): int() refuses 4,300 digits with ValueError.
_SPEC = re.compile(r"([0-9]{0,19})-([0-9]{0,19})")


class Unsatisfiable(Exception):
    """No requested range overlaps the file: answer 416 with ``bytes */size``."""


@dataclass(frozen=True, slots=True)
class Part:
    """Bytes ``start`` to ``end`` (exclusive) of the file, preceded by ``head``."""

    start: int
    end: int
    head: bytes = b""


def requested_ranges(header: str, size: int) -> list[tuple[int, int]] | None:
    """The ``[start, end)`` byte ranges a ``Range`` header asks for, sorted and merged.

    None when the header is to be ignored (another unit, bad syntax, too many parts):
    the whole file is sent then. Raises ``Unsatisfiable`` when no range fits the file.
    """
    unit, equals, spec = header.partition("=")
    if not equals or unit.strip().lower() != "bytes":
        return None
    items = [item.strip() for item in spec.split(",") if item.strip()]
    if not items or len(items) > MAX_RANGES:
        return None
    ranges: list[tuple[int, int]] = []
    for item in items:
        found = _SPEC.fullmatch(item)
        if found is None or found[1] == found[2] == "":
            return None
        first, last = found[1], found[2]
        if first and last and int(last) < int(first):
            return None  # syntactically invalid: the whole header is ignored
        if first:
            start, end = int(first), size if not last else min(int(last) + 1, size)
        else:
            start, end = max(size - int(last), 0), size
        if start < end:  # satisfiable: some byte of it exists
            ranges.append((start, end))
    if not ranges:
        raise Unsatisfiable
    return _merged(ranges)


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    # Overlapping or adjacent ranges become one, so no byte is sent twice.
    ranges.sort()
    merged = [ranges[0]]
    for start, end in ranges[1:]:
        last_start, last_end = merged[-1]
        if start <= last_end:
            merged[-1] = (last_start, max(last_end, end))
        else:
            merged.append((start, end))
    return merged


def content_range(start: int, end: int, size: int) -> bytes:
    """The ``content-range`` value for bytes ``[start, end)`` of ``size``."""
    return f"bytes {start}-{end - 1}/{size}".encode()


@dataclass(frozen=True, slots=True)
class Multipart:
    """A ``multipart/byteranges`` body: its content type, length, parts and closing line."""

    content_type: bytes
    length: int
    parts: list[Part]
    closing: bytes


def multipart(ranges: list[tuple[int, int]], size: int, content_type: bytes) -> Multipart:
    """Frame ``ranges`` as ``multipart/byteranges`` (RFC 9110 section 14.6)."""
    boundary = secrets.token_hex(13)  # about the entropy browsers put in theirs
    parts: list[Part] = []
    for index, (start, end) in enumerate(ranges):
        head = b"".join(
            [
                b"\r\n" if index else b"",  # ends the previous part's bytes
                f"--{boundary}\r\n".encode(),
                b"content-type: " + content_type + b"\r\n",
                b"content-range: " + content_range(start, end, size) + b"\r\n\r\n",
            ]
        )
        parts.append(Part(start, end, head))
    closing = f"\r\n--{boundary}--\r\n".encode()
    length = sum(len(p.head) + p.end - p.start for p in parts) + len(closing)
    return Multipart(f"multipart/byteranges; boundary={boundary}".encode(), length, parts, closing)
