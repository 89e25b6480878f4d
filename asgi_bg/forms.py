"""Form parsing (the ``forms`` extra: python-multipart): ``multipart/form-data`` and
``application/x-www-form-urlencoded``, streamed from the ASGI receive channel.

File parts are written to spooled files as the body arrives, so memory stays flat
whatever the upload's size. Limits are checked while parsing: too many files or fields,
or a plain field over ``max_part_size``, answer 413; a malformed body answers 400; in
both cases the files already written are closed (their temporary files deleted).
"""

from __future__ import annotations

import importlib
from contextlib import aclosing
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

from ._context import CONTEXT_KEY
from ._types import Scope
from .datastructures import Headers
from .exceptions import ConfigurationError, HTTPException
from .uploads import FormData, FormValue, UploadFile, spooled_file

if TYPE_CHECKING:
    from .requests import Request

__all__ = ["FormLimits", "close_with_request", "read_form", "require_multipart", "spooled_file"]

_MISSING_EXTRA = "forms need python-multipart: pip install 'asgi_bg[forms]'"


@dataclass(frozen=True, slots=True)
class FormLimits:
    """How much one form may hold; past a limit the request is answered 413."""

    max_files: int = 1000
    max_fields: int = 1000
    max_part_size: int = 1024 * 1024  # a plain field's bytes; files spool to disk instead


def multipart() -> ModuleType:
    """The python-multipart package; a ``RuntimeError`` naming the extra when missing."""
    try:
        return importlib.import_module("python_multipart")
    except ImportError:
        raise RuntimeError(_MISSING_EXTRA) from None


def require_multipart(where: str) -> None:
    """At registration: a ``ConfigurationError`` naming the extra when it is missing."""
    try:
        multipart()
    except RuntimeError as exc:
        raise ConfigurationError(f"{where}: {exc}") from None


async def read_form(request: Request, limits: FormLimits) -> FormData:
    """Parse the request's form from its body stream; an empty form for other bodies."""
    parser = _parser_for(request.headers.get("content-type", ""), limits)
    if parser is None:
        return FormData()
    try:
        # Closed at once when parsing stops early, not whenever it is collected.
        async with aclosing(request.stream()) as stream:
            async for chunk in stream:
                parser.feed(chunk)
                await parser.flush()
        parser.finish()
        await parser.flush()
    except BaseException:
        parser.discard()  # also when cancelled: no temporary file is left open
        raise
    form = FormData(parser.items)
    for upload in form.uploads():
        await upload.seek(0)
    return form


def close_with_request(scope: Scope, form: FormData) -> None:
    """Close the form's files once the request's tasks and teardowns have all finished.

    Outside an asgi_bg app (no request context) the caller closes them: ``form.close()``.
    """
    context = scope.get(CONTEXT_KEY)
    if context is None or not form.uploads():
        return

    async def close(_: BaseException | None) -> None:
        await form.close()

    context.add_teardown(close, last=True)  # a dependency's exit code may still read them


def _parser_for(content_type: str, limits: FormLimits) -> _FormParser | None:
    module = multipart()
    kind, options = module.multipart.parse_options_header(content_type)
    if kind == b"multipart/form-data":
        boundary = options.get(b"boundary")
        if not boundary:
            raise HTTPException(400, "Malformed multipart body: no boundary in content-type")
        return _MultipartForm(module, boundary, limits)
    if kind == b"application/x-www-form-urlencoded":
        return _UrlencodedForm(module, limits)
    return None


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def _too_large(what: str) -> HTTPException:
    return HTTPException(413, what)


class _FormParser:
    """What both parsers share: the items so far, the counts, pending file writes."""

    def __init__(self, limits: FormLimits) -> None:
        self.limits = limits
        self.items: list[tuple[str, FormValue]] = []
        self._fields = 0
        self._files = 0
        # Written after each chunk: the parser's callbacks cannot await.
        self._writes: list[tuple[UploadFile, bytes]] = []

    def feed(self, chunk: bytes) -> None:
        """Parse one chunk of the body."""
        raise NotImplementedError

    def finish(self) -> None:
        """The body ended: a form cut short is malformed."""
        raise NotImplementedError

    async def flush(self) -> None:
        """Write the file data the last chunk carried."""
        writes, self._writes = self._writes, []
        for upload, data in writes:
            await upload.write(data)

    def discard(self) -> None:
        """Close every file written so far (synchronously: this may run cancelled)."""
        for _, value in self.items:
            if isinstance(value, UploadFile):
                value.file.close()

    def _count_field(self) -> None:
        self._fields += 1
        if self._fields > self.limits.max_fields:
            raise _too_large(f"Too many fields: the limit is {self.limits.max_fields}")

    def _count_file(self) -> None:
        self._files += 1
        if self._files > self.limits.max_files:
            raise _too_large(f"Too many files: the limit is {self.limits.max_files}")

    def _check_size(self, size: int) -> None:
        if size > self.limits.max_part_size:
            raise _too_large(f"A form field is over the limit of {self.limits.max_part_size} bytes")


class _MultipartForm(_FormParser):
    """``multipart/form-data``: a part with a ``filename`` is a file, others are fields."""

    def __init__(self, module: ModuleType, boundary: bytes, limits: FormLimits) -> None:
        super().__init__(limits)
        callbacks = {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }
        self._errors = module.exceptions.MultipartParseError
        self._parse_options = module.multipart.parse_options_header
        self._parser = module.MultipartParser(boundary, callbacks)
        self._headers: list[tuple[bytes, bytes]] = []
        self._field = self._value = b""
        self._name = ""
        self._upload: UploadFile | None = None
        self._data = bytearray()
        self._ended = False

    def feed(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except self._errors as exc:
            raise HTTPException(400, f"Malformed multipart body: {exc}") from None

    def finish(self) -> None:
        self._parser.finalize()
        if not self._ended:
            raise HTTPException(400, "Malformed multipart body: it ends before its last boundary")

    def _part_begin(self) -> None:
        self._headers = []
        self._data = bytearray()
        self._upload = None

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers.append((self._field.lower(), self._value))
        self._field = self._value = b""

    def _headers_finished(self) -> None:
        headers = Headers(self._headers)
        _, options = self._parse_options(headers.get("content-disposition"))
        if b"name" not in options:
            raise HTTPException(400, "Malformed multipart body: a part has no field name")
        self._name = _decode(options[b"name"])
        if b"filename" not in options:
            self._count_field()
            return
        self._count_file()
        filename = _decode(options[b"filename"])
        self._upload = UploadFile(spooled_file(), size=0, filename=filename, headers=headers)
        self.items.append((self._name, self._upload))

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._upload is not None:
            self._writes.append((self._upload, data[start:end]))
            return
        self._data += data[start:end]
        self._check_size(len(self._data))

    def _part_end(self) -> None:
        if self._upload is None:
            self.items.append((self._name, _decode(bytes(self._data))))

    def _end(self) -> None:
        self._ended = True


class _UrlencodedForm(_FormParser):
    """``application/x-www-form-urlencoded``: ``name=value`` pairs joined by ``&``."""

    def __init__(self, module: ModuleType, limits: FormLimits) -> None:
        super().__init__(limits)
        callbacks: dict[str, Any] = {
            "on_field_start": self._field_start,
            "on_field_name": self._field_name,
            "on_field_data": self._field_data,
            "on_field_end": self._field_end,
        }
        self._errors = module.exceptions.QuerystringParseError
        self._parser = module.QuerystringParser(callbacks)
        self._name = bytearray()
        self._value = bytearray()

    def feed(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except self._errors as exc:
            raise HTTPException(400, f"Malformed form body: {exc}") from None

    def finish(self) -> None:
        self._parser.finalize()

    def _field_start(self) -> None:
        self._count_field()
        self._name = bytearray()
        self._value = bytearray()

    def _field_name(self, data: bytes, start: int, end: int) -> None:
        self._name += data[start:end]
        self._check_size(len(self._name) + len(self._value))

    def _field_data(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]
        self._check_size(len(self._name) + len(self._value))

    def _field_end(self) -> None:
        self.items.append((_unquote(self._name), _unquote(self._value)))


def _unquote(raw: bytearray) -> str:
    return _decode(unquote_to_bytes(bytes(raw).replace(b"+", b" ")))
