"""``OAuth2PasswordRequestForm``: the password flow's token route, compared with FastAPI's
(both apps driven by asgi_bg's test client, which serves any ASGI app)."""

from typing import Annotated, Any

import fastapi
import fastapi.security
import pytest

from asgi_bg import App, Depends
from asgi_bg.security import OAuth2PasswordRequestForm
from asgi_bg.testing import TestClient


def ours() -> App:
    app = App()

    @app.post("/token")
    async def token(form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> dict[str, Any]:
        return {"user": form.username, "scopes": form.scopes, "client": form.client_id}

    return app


def theirs() -> fastapi.FastAPI:
    app = fastapi.FastAPI()

    @app.post("/token")
    async def token(
        form: Annotated[fastapi.security.OAuth2PasswordRequestForm, fastapi.Depends()],
    ) -> dict[str, Any]:
        return {"user": form.username, "scopes": form.scopes, "client": form.client_id}

    return app


@pytest.mark.parametrize(
    "data",
    [
        {"username": "ada", "password": "secret"},
        {"username": "ada", "password": "secret", "scope": "read write", "client_id": "cli"},
        {"username": "ada", "password": "secret", "grant_type": "password"},
        {"username": "ada", "password": "secret", "grant_type": "implicit"},
        {"username": "ada"},
        {},
    ],
)
def test_the_token_form_answers_as_in_fastapi(data: dict[str, str]) -> None:
    ours_response = TestClient(ours()).post("/token", data=data)
    theirs_response = TestClient(theirs()).post("/token", data=data)

    assert ours_response.status_code == theirs_response.status_code
    if ours_response.status_code == 200:
        assert ours_response.json() == theirs_response.json()
    else:
        locations = [e["loc"] for e in ours_response.json()["detail"]]
        assert locations == [e["loc"] for e in theirs_response.json()["detail"]]


def test_the_token_route_documents_a_form_body() -> None:
    body = ours().openapi()["paths"]["/token"]["post"]["requestBody"]
    assert "application/x-www-form-urlencoded" in body["content"]
