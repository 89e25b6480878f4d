"""The shop with Swagger UI's files served by the app itself (no internet in the test):
the assets come from the ``swagger-ui-py`` package, which ships Swagger UI's dist files."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import swagger_ui
from openapi_shop import app

from asgi_bg import Response

ASSETS = Path(swagger_ui.__file__).parent / "static"
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css"}

app.swagger_js_url = "/assets/swagger-ui-bundle.js"
app.swagger_css_url = "/assets/swagger-ui.css"


@app.get("/assets/{name}", include_in_schema=False)
def asset(name: Literal["swagger-ui-bundle.js", "swagger-ui.css"]) -> Response:
    path = ASSETS / name
    return Response(path.read_bytes(), media_type=MEDIA_TYPES[path.suffix])


@app.get("/greeting")
async def greeting(name: str = "world") -> dict[str, str]:
    """The operation the browser test tries out."""
    return {"greeting": f"hello {name}"}
