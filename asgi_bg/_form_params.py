"""Form and file parameters for the injector: reading fields and uploads from the form
the request parsed before its extractors ran.

Plain form fields go through the injector's string extractor (so they convert exactly
like query parameters); this module supplies what it reads them from, and the extractor
for ``UploadFile``, ``list[UploadFile]``, optional files and ``bytes`` file parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._convert import Invalid, is_sequence, item_type, unwrap_optional
from .exceptions import ConfigurationError
from .requests import Request
from .uploads import UploadFile

if TYPE_CHECKING:
    from .requests import HTTPConnection


def is_upload_annotation(annotation: Any) -> bool:
    """True for ``UploadFile``, ``UploadFile | None`` and ``list[UploadFile]``."""
    inner, _ = unwrap_optional(annotation)
    if is_sequence(inner):
        inner = item_type(inner)
    return isinstance(inner, type) and issubclass(inner, UploadFile)


def form_values(request: HTTPConnection, key: str, many: bool) -> Any:
    """The plain (text) values of ``key``: the string extractor's source for forms."""
    assert isinstance(request, Request)  # WebSocket routes refuse form fields
    values = [v for v in request.parsed_form().getlist(key) if isinstance(v, str)]
    if many:
        return values
    return values[-1] if values else None


def file_extractor(
    key: str, annotation: Any, missing: Callable[[], Any], where: str
) -> Callable[[Any], Any]:
    """Read ``key``'s uploads: one file, a list, or the bytes of one file."""
    many = is_sequence(annotation)
    kind = item_type(annotation) if many else annotation
    if kind is bytes:
        convert: Callable[[UploadFile], Any] = _file_bytes
    elif isinstance(kind, type) and issubclass(kind, UploadFile):
        convert = _same
    else:
        raise ConfigurationError(
            f"{where}: File() takes UploadFile, list[UploadFile] or bytes, not {annotation!r}"
        )

    def extract(solver: Any) -> Any:
        values = solver.request.parsed_form().getlist(key)
        if not values:
            return missing()
        for value in values:
            if not isinstance(value, UploadFile):
                raise Invalid("value_error", "Expected an uploaded file, got a text field", value)
        return [convert(v) for v in values] if many else convert(values[-1])

    return extract


def _same(upload: UploadFile) -> UploadFile:
    return upload


def _file_bytes(upload: UploadFile) -> bytes:
    # Read at once: ``bytes`` asks for the content in memory, so the file is small by intent.
    data = upload.file.read()
    upload.file.seek(0)
    return data
