"""Uploaded files and parsed forms: ``UploadFile`` and the multi-valued ``FormData``.

An ``UploadFile`` made by the form parser lives as long as its request: it stays open in
the background tasks the request queued and in its teardowns, and is closed (its
temporary file deleted) after them. These classes need no third-party package; parsing
does (``asgi_bg.forms``, the ``forms`` extra).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping, Sequence
from typing import IO

import anyio.to_thread

from .datastructures import Headers

# Parts up to this size stay in memory; larger ones roll over to a temporary file.
SPOOL_MAX_SIZE = 1024 * 1024


def spooled_file() -> IO[bytes]:
    """A new file for an upload: in memory up to ``SPOOL_MAX_SIZE``, then on disk.

    On disk it is an unnamed temporary file (unlinked at once where the OS allows it),
    so closing it frees the space and a crash leaves nothing behind.
    """
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX_SIZE)


class UploadFile:
    """An uploaded file: ``filename``, ``content_type``, ``headers``, ``size`` and the
    underlying binary ``file``, with async ``read``/``write``/``seek``/``close``.

    Disk access runs in a worker thread once the file rolled over to disk; in memory it
    is done at once.
    """

    __slots__ = ("file", "filename", "headers", "size")

    def __init__(
        self,
        file: IO[bytes],
        *,
        size: int | None = None,
        filename: str | None = None,
        headers: Headers | None = None,
    ) -> None:
        self.file = file
        self.size = size
        self.filename = filename
        self.headers = headers if headers is not None else Headers()

    @property
    def content_type(self) -> str | None:
        """The part's ``Content-Type``, if the client sent one."""
        return self.headers.get("content-type")

    @property
    def _in_memory(self) -> bool:
        rolled: bool = getattr(self.file, "_rolled", True)
        return not rolled

    async def write(self, data: bytes) -> None:
        """Append ``data`` (used by the parser; ``size`` grows with it)."""
        if self.size is not None:
            self.size += len(data)
        if self._in_memory:
            self.file.write(data)
        else:
            await anyio.to_thread.run_sync(self.file.write, data)

    async def read(self, size: int = -1) -> bytes:
        """Read ``size`` bytes (all that is left by default)."""
        if self._in_memory:
            return self.file.read(size)
        return await anyio.to_thread.run_sync(self.file.read, size)

    async def seek(self, offset: int) -> None:
        """Move to ``offset`` bytes from the start."""
        if self._in_memory:
            self.file.seek(offset)
        else:
            await anyio.to_thread.run_sync(self.file.seek, offset)

    async def close(self) -> None:
        """Close the file; a temporary file on disk is deleted."""
        if self._in_memory:
            self.file.close()
        else:
            await anyio.to_thread.run_sync(self.file.close)

    def __repr__(self) -> str:
        return f"UploadFile(filename={self.filename!r}, size={self.size!r})"


FormValue = str | UploadFile


class FormData(Mapping[str, FormValue]):
    """A parsed form: ``form[key]`` is the last value, ``getlist`` every value in order.

    Values are ``str`` for plain fields and ``UploadFile`` for file parts.
    """

    __slots__ = ("_items", "_list")

    def __init__(self, items: Sequence[tuple[str, FormValue]] = ()) -> None:
        self._list = list(items)
        self._items: dict[str, list[FormValue]] = {}
        for key, value in self._list:
            self._items.setdefault(key, []).append(value)

    def __getitem__(self, key: str) -> FormValue:
        return self._items[key][-1]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def getlist(self, key: str) -> list[FormValue]:
        """Every value of ``key``, in the order sent."""
        return list(self._items.get(key, ()))

    def multi_items(self) -> list[tuple[str, FormValue]]:
        """Every ``(key, value)`` pair, in the order sent."""
        return list(self._list)

    def uploads(self) -> list[UploadFile]:
        """Every uploaded file of the form."""
        return [value for _, value in self._list if isinstance(value, UploadFile)]

    async def close(self) -> None:
        """Close every uploaded file (their temporary files are deleted)."""
        for upload in self.uploads():
            await upload.close()

    def __repr__(self) -> str:
        return f"FormData({self._list!r})"
