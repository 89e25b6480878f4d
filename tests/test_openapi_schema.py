"""JSON Schema from Python types, and operations for each parameter, body and response kind.

The type mapping is checked against pydantic's own ``TypeAdapter.json_schema()`` (what
FastAPI writes), type by type; every document built here passes openapi-spec-validator.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import uuid
from typing import Annotated, Any, Literal

import pydantic
import pytest
from openapi_support import checked
from typing_extensions import TypedDict

from asgi_bg import App, Body, Cookie, Header, HTMLResponse, Path, Query
from asgi_bg.injection import ParamField
from asgi_bg.openapi.schema import REF_PREFIX, SchemaRegistry


class Colour(enum.Enum):
    """A colour."""

    red = "red"
    blue = "blue"


class Level(enum.IntEnum):
    low = 1
    high = 2


@dataclasses.dataclass
class Leaf:
    name: str
    weight: float = 1.5


@dataclasses.dataclass
class Tree:
    """A tree of trees."""

    label: str
    leaves: list[Leaf] = dataclasses.field(default_factory=list)
    subtrees: list[Tree] = dataclasses.field(default_factory=list)
    colour: Colour | None = None
    level: Level = Level.low


class Point(TypedDict):
    x: int
    y: int


class Pet(pydantic.BaseModel):
    name: str
    age: int = pydantic.Field(ge=0)


SAME_AS_PYDANTIC = [
    str,
    int,
    float,
    bool,
    bytes,
    uuid.UUID,
    datetime.datetime,
    datetime.date,
    datetime.time,
    datetime.timedelta,
    decimal.Decimal,
    Any,
    int | None,
    str | int,
    decimal.Decimal | None,
    list[int],
    list,
    set[str],
    frozenset[int],
    tuple[int, ...],
    tuple[int, str],
    dict,
    dict[str, int],
    dict[str, Any],
    Literal["a"],
    Literal["a", "b"],
    Literal[1, 2],
    Literal["a", 1],
    # Types only pydantic knows (the app validates them with pydantic too).
    pydantic.AnyUrl,
    Annotated[int, pydantic.Field(ge=3)],
    list[Annotated[str, pydantic.Field(max_length=2)]],
]


@pytest.mark.parametrize("annotation", SAME_AS_PYDANTIC, ids=str)
def test_unnamed_types_map_as_pydantic_maps_them(annotation: Any) -> None:
    assert SchemaRegistry().schema(annotation) == pydantic.TypeAdapter(annotation).json_schema()


@pytest.mark.parametrize("named", [Colour, Level, Leaf, Tree, Point, Pet])
def test_named_types_are_components_equal_to_pydantics(named: type) -> None:
    registry = SchemaRegistry()
    assert registry.schema(named) == {"$ref": REF_PREFIX + named.__name__}
    theirs = pydantic.TypeAdapter(named).json_schema(ref_template=REF_PREFIX + "{model}")
    defs = theirs.pop("$defs", {})
    defs.setdefault(named.__name__, theirs)
    for schema in defs.values():
        # FastAPI writes no "default": null (test_openapi_fastapi shows it); pydantic does.
        for prop in schema.get("properties", {}).values():
            if "default" in prop and prop["default"] is None:
                del prop["default"]
    assert registry.components == defs


def test_a_type_nothing_can_describe_is_any_value() -> None:
    class Opaque:
        pass

    assert SchemaRegistry().schema(Opaque) == {}


def test_a_recursive_dataclass_refers_to_itself() -> None:
    registry = SchemaRegistry()
    registry.schema(Tree)
    subtrees = registry.components["Tree"]["properties"]["subtrees"]
    assert subtrees == {
        "type": "array",
        "items": {"$ref": REF_PREFIX + "Tree"},
        "title": "Subtrees",
    }


def test_two_types_of_one_name_get_two_components() -> None:
    first = dataclasses.make_dataclass("Thing", [("a", int)])
    second = dataclasses.make_dataclass("Thing", [("b", str)])
    registry = SchemaRegistry()
    refs = [registry.schema(first), registry.schema(second), registry.schema(first)]
    assert refs == [
        {"$ref": REF_PREFIX + "Thing"},
        {"$ref": REF_PREFIX + "Thing2"},
        {"$ref": REF_PREFIX + "Thing"},
    ]


def table() -> App:
    """A route for each parameter source, constraint, body kind and response kind."""
    app = App()

    @app.get("/checks/{code}")
    async def checks(
        code: Annotated[str, Path(min_length=2, max_length=4, pattern="^[A-Z]+$")],
        count: Annotated[int, Query(gt=0, lt=10, multiple_of=2)] = 2,
        ratio: Annotated[float | None, Query(ge=0.5, le=1.5, title="Ratio!")] = None,
        names: Annotated[list[str], Query(min_length=1, max_length=3)] = ["a"],  # noqa: B006
        old: Annotated[str, Query(deprecated=True, description="Do not use", examples=["x"])] = "",
        hidden: Annotated[str, Query(include_in_schema=False)] = "",
        request_id: Annotated[uuid.UUID | None, Header(alias="X-Request-ID")] = None,
        theme: Annotated[Colour, Cookie()] = Colour.red,
    ) -> None:
        return None

    @app.post("/trees", status_code=201)
    async def plant(seed: Leaf) -> Tree:
        return Tree(seed.name)

    @app.put("/pair")
    async def pair(left: Leaf, right: Annotated[Leaf | None, Body()] = None) -> dict[str, Leaf]:
        return {}

    @app.post("/points")
    async def points(points: list[dict[str, int]]) -> list[int]:
        return []

    @app.get("/page", response_class=HTMLResponse)
    async def page() -> str:
        return "<p>hi</p>"

    @app.delete("/trees/{tree_id:int}", status_code=204)
    async def fell() -> None:
        return None

    return app


def test_the_route_table_document_is_valid() -> None:
    checked(table().openapi())


def test_constraints_become_json_schema_keywords() -> None:
    params = table().openapi()["paths"]["/checks/{code}"]["get"]["parameters"]
    by_name = {p["name"]: p for p in params}
    assert by_name["code"]["schema"] == {
        "type": "string",
        "minLength": 2,
        "maxLength": 4,
        "pattern": "^[A-Z]+$",
        "title": "Code",
    }
    assert by_name["count"]["schema"] == {
        "type": "integer",
        "exclusiveMinimum": 0,
        "exclusiveMaximum": 10,
        "multipleOf": 2,
        "default": 2,
        "title": "Count",
    }
    assert by_name["ratio"]["schema"] == {
        "anyOf": [{"type": "number", "minimum": 0.5, "maximum": 1.5}, {"type": "null"}],
        "title": "Ratio!",
    }
    assert by_name["names"]["schema"]["minItems"] == 1
    assert by_name["names"]["schema"]["maxItems"] == 3
    assert by_name["old"]["deprecated"] is True
    assert by_name["old"]["description"] == "Do not use"
    assert by_name["old"]["schema"]["examples"] == ["x"]
    assert "hidden" not in by_name
    assert by_name["X-Request-ID"]["in"] == "header"
    assert by_name["theme"] == {
        "name": "theme",
        "in": "cookie",
        "required": False,
        "schema": {"$ref": REF_PREFIX + "Colour", "default": "red"},
    }
    assert [p["in"] for p in params] == [
        "path",
        "query",
        "query",
        "query",
        "query",
        "header",
        "cookie",
    ]


def test_bodies_and_responses() -> None:
    document = table().openapi()
    paths, schemas = document["paths"], document["components"]["schemas"]
    plant = paths["/trees"]["post"]
    assert plant["requestBody"] == {
        "content": {"application/json": {"schema": {"$ref": REF_PREFIX + "Leaf"}}},
        "required": True,
    }
    assert list(plant["responses"]) == ["201", "422"]
    created = plant["responses"]["201"]["content"]["application/json"]["schema"]
    assert created == {"$ref": REF_PREFIX + "Tree"}
    pair = paths["/pair"]["put"]["requestBody"]["content"]["application/json"]["schema"]
    assert pair == {"$ref": REF_PREFIX + "Body_pair_pair_put"}
    assert schemas["Body_pair_pair_put"]["required"] == ["left"]
    page = paths["/page"]["get"]["responses"]
    assert page == {
        "200": {
            "description": "Successful Response",
            "content": {"text/html": {"schema": {"type": "string"}}},
        }
    }
    fell = paths["/trees/{tree_id}"]["delete"]
    assert fell["parameters"][0]["schema"] == {"type": "integer", "title": "Tree Id"}
    assert fell["responses"]["204"] == {"description": "Successful Response"}


class UploadFile:
    """Stands for the forms module's ``UploadFile``, which OpenAPI tells by name."""


def test_form_and_file_fields_make_a_form_body() -> None:
    # The forms helper's ``Form()``/``File()`` markers record fields of source "form" and
    # "file" in the plan; here they are recorded by hand, as those markers will.
    app = App()

    @app.post("/login")
    async def login() -> None:
        return None

    @app.post("/upload")
    async def upload() -> None:
        return None

    login_route, upload_route = app.router.routes
    login_route.plan.fields += [
        ParamField("username", "form", "username", str, True, None, None),
        ParamField("remember", "form", "remember", bool, False, False, None),
    ]
    upload_route.plan.fields += [
        ParamField("note", "form", "note", str | None, False, None, None),
        ParamField("files", "file", "files", list[UploadFile], True, None, None),
    ]
    document = checked(app.openapi())
    login_body = document["paths"]["/login"]["post"]["requestBody"]
    assert login_body == {
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {"$ref": REF_PREFIX + "Body_login_login_post"}
            }
        },
        "required": True,
    }
    upload_content = document["paths"]["/upload"]["post"]["requestBody"]["content"]
    assert list(upload_content) == ["multipart/form-data"]
    files = document["components"]["schemas"]["Body_upload_upload_post"]["properties"]["files"]
    assert files == {
        "type": "array",
        "items": {"type": "string", "format": "binary"},
        "title": "Files",
    }


def test_checks_on_one_parameter_stay_on_it() -> None:
    app = App()

    @app.get("/prices")
    async def prices(
        low: Annotated[decimal.Decimal | None, Query(ge=1)] = None,
        high: decimal.Decimal | None = None,
    ) -> None:
        return None

    params = app.openapi()["paths"]["/prices"]["get"]["parameters"]
    low, high = (p["schema"]["anyOf"] for p in params)
    assert low[0] == {"type": "number", "minimum": 1}
    assert high[0] == {"type": "number"}
    assert low[1] == high[1] == {"type": "string", "pattern": r"^(?!^[-+.]*$)[+-]?0*\d*\.?\d*$"}
