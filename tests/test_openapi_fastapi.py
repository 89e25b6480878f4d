"""The document asgi_bg generates against FastAPI's for the same source.

Each app is written once with asgi_bg's import line and run a second time with FastAPI's
(``openapi_support.fastapi_twin``): the seed's examples, a ten-route shop covering every
parameter kind, body kind, constraint and response code, more kinds of each
(``openapi_kinds``), every security scheme, and pydantic parameter models
(``param_models_app``: one parameter per field, as FastAPI lists them).
"""

from __future__ import annotations

import importlib
import json
import re

import pytest
from openapi_support import checked, comparable, fastapi_twin

APPS = [
    "examples.background_notification",
    "examples.dependency_annotated",
    "examples.dependency_default",
    "examples.dependency_typing_extensions",
    "openapi_shop",
    "openapi_kinds",
    "openapi_guarded",
    "param_models_app",
]


@pytest.mark.parametrize("module", APPS)
def test_paths_parameters_bodies_and_response_codes_equal_fastapis(module: str) -> None:
    ours = checked(importlib.import_module(module).app.openapi())
    theirs = fastapi_twin(module).app.openapi()
    assert comparable(ours) == comparable(theirs)


@pytest.mark.parametrize("module", APPS)
def test_operation_ids_summaries_descriptions_and_security_equal_fastapis(module: str) -> None:
    def described(document: dict[str, object]) -> dict[str, object]:
        paths = document["paths"]
        assert isinstance(paths, dict)
        keys = ("operationId", "summary", "description", "security", "tags", "deprecated")
        return {
            f"{method} {path}": {k: op.get(k) for k in keys}
            for path, item in paths.items()
            for method, op in item.items()
        }

    ours = importlib.import_module(module).app.openapi()
    theirs = fastapi_twin(module).app.openapi()
    assert described(ours) == described(theirs)
    ours_schemes = ours.get("components", {}).get("securitySchemes")
    assert ours_schemes == theirs.get("components", {}).get("securitySchemes")


@pytest.mark.parametrize("module", APPS)
def test_component_schemas_equal_fastapis(module: str) -> None:
    ours = importlib.import_module(module).app.openapi()
    theirs = fastapi_twin(module).app.openapi()
    # FastAPI gives a recursive dataclass two schemas, "-Input" and "-Output", equal but
    # for the name; asgi_bg keeps one.
    text = json.dumps(theirs.get("components", {}).get("schemas"))
    merged = json.loads(re.sub(r"-(Input|Output)\b", "", text))
    assert ours.get("components", {}).get("schemas") == merged
