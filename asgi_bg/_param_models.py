"""Parameter models: ``Annotated[Model, Query()]`` (or ``Header()``, ``Cookie()``) fills a
dataclass, a ``TypedDict`` or a pydantic model from that part of the request, one field
per key, as FastAPI does for pydantic models.

Decided at registration: each field's name on the wire, whether it repeats (a list field
reads every value) and how it converts; per request, a loop over the fields. A pydantic
model is validated by pydantic itself from every value of that part, as FastAPI does
(so ``extra="forbid"`` refuses an unknown key); a dataclass or TypedDict field converts
and checks like a plain parameter of the same annotation.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from ._convert import is_sequence, is_typeddict, type_hints, typeddict_keys, unwrap_optional
from ._extractors import Extractor, Solver, default_maker, string_extractor
from ._invalid import Invalid, together
from ._models import is_model, model_converter
from .params import REQUIRED, ParamInfo

_OMIT: Any = object()  # a TypedDict key that is not required and not sent


@dataclass(frozen=True, slots=True)
class ModelField:
    """One field of a parameter model, as OpenAPI documents it: ``key`` is its name on
    the wire; ``info`` a marker holding its checks and descriptions, if any."""

    name: str
    key: str
    annotation: Any
    required: bool
    default: Any
    info: ParamInfo | None


def is_param_model(annotation: Any) -> bool:
    """True for what a ``Query()``, ``Header()`` or ``Cookie()`` model may be."""
    is_dataclass = dataclasses.is_dataclass(annotation) and isinstance(annotation, type)
    return is_model(annotation) or is_dataclass or is_typeddict(annotation)


def model_extractor(
    cls: Any, marker: ParamInfo, default: Any, where: str
) -> tuple[Extractor, list[ModelField]]:
    """The extractor of the model parameter and its fields; its errors' ``loc`` starts
    with the field's key (the extractor's own ``loc`` is the source alone)."""
    if is_model(cls):
        return _pydantic_extractor(cls, marker, default, where)
    fields_of = _typeddict_fields if is_typeddict(cls) else _dataclass_fields
    specs = fields_of(cls, marker, where)
    readers = [(f.name, f.key, _field_reader(f, missing, marker, where)) for f, missing in specs]
    build: Callable[..., Any] = dict if is_typeddict(cls) else cls
    absent = _absent_model(cls, default, [f.key for f, _ in specs], marker.source)

    def extract(solver: Solver) -> Any:
        if absent is not None and absent.check(solver):
            return absent.default()
        values: dict[str, Any] = {}
        failures: list[Invalid] = []
        for name, key, read in readers:
            try:
                value = read(solver)
            except Invalid as exc:
                failures.extend(exc.at(key).items())
                continue
            if value is not _OMIT:
                values[name] = value
        if failures:
            raise together(failures)
        return build(**values)

    return extract, [f for f, _ in specs]


# A field and what it gets when its key is absent (None: its default, or "missing").
_Spec = tuple[ModelField, Callable[[], Any] | None]


def _field_reader(
    field: ModelField, missing: Callable[[], Any] | None, marker: ParamInfo, where: str
) -> Extractor:
    inner, _ = unwrap_optional(field.annotation)
    default = REQUIRED if field.required else field.default
    where = f"{where}: field {field.name!r}"
    return string_extractor(marker.source, field.key, inner, field.info, default, where, missing)


def _declared(hint: Any) -> tuple[Any, ParamInfo | None]:
    """A field's type and its own marker: ``Annotated[int, Query(ge=1, alias="n")]``."""
    if typing.get_origin(hint) is not Annotated:
        return hint, None
    inner, *extras = typing.get_args(hint)
    return inner, next((e for e in extras if isinstance(e, ParamInfo)), None)


def _dataclass_fields(cls: Any, marker: ParamInfo, where: str) -> list[_Spec]:
    hints = type_hints(cls, where, extras=True)
    specs: list[_Spec] = []
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        annotation, info = _declared(hints[field.name])
        factory = field.default_factory
        missing = None if factory is dataclasses.MISSING else factory
        default = field.default if missing is None else missing()
        required = default is dataclasses.MISSING
        key = wire_key(field.name, info, marker)
        specs.append((ModelField(field.name, key, annotation, required, default, info), missing))
    return specs


def _typeddict_fields(cls: Any, marker: ParamInfo, where: str) -> list[_Spec]:
    specs: list[_Spec] = []
    for name, hint, required in typeddict_keys(cls, where):
        annotation, info = _declared(hint)
        field = ModelField(name, wire_key(name, info, marker), annotation, required, None, info)
        specs.append((field, None if required else _omitted))
    return specs


def _omitted() -> Any:
    return _OMIT


def wire_key(name: str, info: ParamInfo | None, marker: ParamInfo) -> str:
    """The key a field is read from: its alias, else its name (a header's with ``-`` for
    ``_`` unless ``convert_underscores=False``); header keys are lower-cased."""
    alias = info.alias if info is not None else None
    if marker.source != "header":
        return alias or name
    if alias:
        return alias.lower()
    return (name.replace("_", "-") if marker.convert_underscores else name).lower()


@dataclass(frozen=True, slots=True)
class _Absent:
    """An optional model (``Model | None = None``) whose keys are all absent is its default;
    with ``extra="forbid"`` or ``"allow"``, only when nothing was sent (FastAPI's rule)."""

    keys: tuple[str, ...]
    received: Callable[[Any], Mapping[str, Any]]
    default: Callable[[], Any]
    any_key: bool  # every key sent belongs to the model

    def check(self, solver: Solver) -> bool:
        present = self.received(solver.request)
        if self.any_key:
            return not present
        return not any(key in present for key in self.keys)


def _absent_model(cls: Any, default: Any, keys: list[str], source: str) -> _Absent | None:
    if default is REQUIRED:
        return None
    extra = is_model(cls) and cls.model_config.get("extra") in ("allow", "forbid")
    return _Absent(tuple(keys), _RECEIVED[source], default_maker(default), extra)


def _pydantic_extractor(
    cls: Any, marker: ParamInfo, default: Any, where: str
) -> tuple[Extractor, list[ModelField]]:
    convert = model_converter(cls, where)
    plan = [_pydantic_field(name, info, marker) for name, info in cls.model_fields.items()]
    pick = 0 if marker.source == "header" else -1  # as Starlette's ``get`` picks
    # (pydantic's name for the value, the key on the wire, every value or one)
    reads = [(alias, field.key, many) for field, alias, many in plan]
    # pydantic locates errors by alias; a header's is reported by its wire name.
    locs = {alias: field.key for field, alias, _ in plan if alias == field.name}
    received = _RECEIVED[marker.source]
    absent = _absent_model(cls, default, [field.key for field, _, _ in plan], marker.source)

    def extract(solver: Solver) -> Any:
        if absent is not None and absent.check(solver):
            return absent.default()
        present = dict(received(solver.request))
        data: dict[str, Any] = {}
        for alias, key, many in reads:
            values = present.pop(key, None)
            present.pop(alias, None)  # a header sent as ``user_agent`` is no extra
            if values:
                data[alias] = values if many else values[pick]
        # Every other key goes to the model too: its ``extra`` setting decides.
        for key, values in present.items():
            data[key] = values[0] if len(values) == 1 else values
        try:
            return convert(data)
        except Invalid as exc:
            raise together([_located(item, locs) for item in exc.items()]) from None

    return extract, [field for field, _, _ in plan]


def _pydantic_field(name: str, info: Any, marker: ParamInfo) -> tuple[ModelField, str, bool]:
    alias = info.validation_alias if isinstance(info.validation_alias, str) else None
    alias = alias or info.alias or name
    described = ParamInfo(
        marker.source,
        alias=alias if alias != name else None,
        # pydantic's title, from the alias or the name (a header's not from its wire key)
        title=info.title or alias.replace("_", " ").title(),
        description=info.description,
        examples=info.examples,
        deprecated=bool(info.deprecated) or None,
    )
    annotation = info.annotation
    if info.metadata:
        annotation = Annotated[(annotation, *info.metadata)]
    required = info.is_required()
    default = None if required else info.get_default(call_default_factory=False)
    if default is not None and type(default).__name__ == "PydanticUndefinedType":
        default = None  # a default_factory: pydantic's schema shows no default either
    field = ModelField(
        name, wire_key(name, described, marker), annotation, required, default, described
    )
    return field, alias, is_sequence(unwrap_optional(info.annotation)[0])


def _located(item: Invalid, locs: dict[str, str]) -> Invalid:
    if not item.loc or item.loc[0] not in locs:
        return item
    loc = (locs[item.loc[0]], *item.loc[1:])
    return Invalid(item.type, item.msg, item.value, loc, item.ctx)


def _query_values(request: Any) -> Mapping[str, list[str]]:
    params = request.query_params
    return {key: params.getlist(key) for key in params}


def _header_values(request: Any) -> Mapping[str, list[str]]:
    headers = request.headers
    return {key: headers.getlist(key) for key in headers}


def _cookie_values(request: Any) -> Mapping[str, list[str]]:
    return {key: [value] for key, value in request.cookies.items()}


_RECEIVED: dict[str, Callable[[Any], Mapping[str, list[str]]]] = {
    "query": _query_values,
    "header": _header_values,
    "cookie": _cookie_values,
}
