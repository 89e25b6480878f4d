"""Security schemes usable as dependencies and declared in the OpenAPI document.

Each scheme is a callable instance: ``Depends(HTTPBearer())`` reads the credentials from
the request, or answers 401 with a ``WWW-Authenticate`` challenge when they are missing
or malformed (``auto_error=False`` gives ``None`` instead, for optional
authentication). A scheme only reads credentials; checking them is the app's job.
Every route that depends on a scheme, at any depth, lists it under ``security`` in
``app.openapi()``, and the scheme's object goes to ``components.securitySchemes``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Annotated, Any

from .exceptions import HTTPException
from .params import Form
from .requests import Request

__all__ = [
    "APIKeyCookie",
    "APIKeyHeader",
    "APIKeyQuery",
    "HTTPAuthorizationCredentials",
    "HTTPBase",
    "HTTPBasic",
    "HTTPBasicCredentials",
    "HTTPBearer",
    "OAuth2PasswordBearer",
    "OAuth2PasswordRequestForm",
    "SecurityBase",
    "get_authorization_scheme_param",
]


@dataclass(frozen=True, slots=True)
class HTTPAuthorizationCredentials:
    """An ``Authorization: <scheme> <credentials>`` header, split."""

    scheme: str
    credentials: str


@dataclass(frozen=True, slots=True)
class HTTPBasicCredentials:
    """The user name and password of an ``Authorization: Basic`` header."""

    username: str
    password: str


def get_authorization_scheme_param(authorization: str | None) -> tuple[str, str]:
    """``"Bearer abc"`` → ``("Bearer", "abc")``; a missing header → ``("", "")``."""
    if not authorization:
        return "", ""
    scheme, _, param = authorization.partition(" ")
    return scheme, param.strip()


class SecurityBase:
    """A security scheme: ``model`` is its OpenAPI Security Scheme Object, and
    ``scheme_name`` the key it is declared under (the class name unless given)."""

    model: dict[str, Any]
    scheme_name: str
    auto_error: bool
    challenge = "Bearer"

    def _setup(
        self, model: dict[str, Any], scheme_name: str | None, description: str | None
    ) -> None:
        if description:
            model["description"] = description
        self.model = model
        self.scheme_name = scheme_name or type(self).__name__

    def not_authenticated(self) -> HTTPException:
        """The 401 this scheme answers when the credentials are missing or malformed."""
        return HTTPException(401, "Not authenticated", {"WWW-Authenticate": self.challenge})

    def _refuse(self) -> None:
        if self.auto_error:
            raise self.not_authenticated()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.scheme_name!r})"


class HTTPBase(SecurityBase):
    """An HTTP authentication scheme (RFC 9110 section 11) read from ``Authorization``;
    the dependency's value is an ``HTTPAuthorizationCredentials``."""

    def __init__(
        self,
        *,
        scheme: str,
        scheme_name: str | None = None,
        description: str | None = None,
        auto_error: bool = True,
    ) -> None:
        self._setup({"type": "http", "scheme": scheme}, scheme_name, description)
        self.challenge = scheme.title()
        self.auto_error = auto_error

    async def __call__(self, request: Request) -> HTTPAuthorizationCredentials | None:
        scheme, credentials = get_authorization_scheme_param(request.headers.get("authorization"))
        if not (scheme and credentials):
            self._refuse()
            return None
        return HTTPAuthorizationCredentials(scheme, credentials)


class HTTPBearer(HTTPBase):
    """``Authorization: Bearer <token>``; the value is an ``HTTPAuthorizationCredentials``."""

    def __init__(
        self,
        *,
        bearerFormat: str | None = None,  # FastAPI's spelling
        scheme_name: str | None = None,
        description: str | None = None,
        auto_error: bool = True,
    ) -> None:
        super().__init__(
            scheme="bearer", scheme_name=scheme_name, description=description, auto_error=auto_error
        )
        if bearerFormat:
            self.model["bearerFormat"] = bearerFormat

    async def __call__(self, request: Request) -> HTTPAuthorizationCredentials | None:
        scheme, credentials = get_authorization_scheme_param(request.headers.get("authorization"))
        if not (scheme and credentials) or scheme.lower() != "bearer":
            self._refuse()
            return None
        return HTTPAuthorizationCredentials(scheme, credentials)


class HTTPBasic(HTTPBase):
    """``Authorization: Basic <base64 user:password>`` (RFC 7617); the value is an
    ``HTTPBasicCredentials``. ``realm`` goes into the 401's challenge."""

    def __init__(
        self,
        *,
        scheme_name: str | None = None,
        realm: str | None = None,
        description: str | None = None,
        auto_error: bool = True,
    ) -> None:
        super().__init__(
            scheme="basic", scheme_name=scheme_name, description=description, auto_error=auto_error
        )
        self.challenge = f'Basic realm="{realm}"' if realm else "Basic"

    async def __call__(self, request: Request) -> HTTPBasicCredentials | None:  # type: ignore[override]
        scheme, param = get_authorization_scheme_param(request.headers.get("authorization"))
        if scheme.lower() != "basic":
            self._refuse()
            return None
        try:
            username, sep, password = base64.b64decode(param).decode("ascii").partition(":")
        except (ValueError, UnicodeDecodeError, binascii.Error):
            sep = ""
        if not sep:
            # Malformed credentials are refused even with auto_error=False, as FastAPI does:
            # the client did try to authenticate, and got it wrong.
            raise self.not_authenticated()
        return HTTPBasicCredentials(username, password)


class _APIKey(SecurityBase):
    """An API key read from ``where`` under ``name``; the value is the key (a ``str``)."""

    where = ""
    challenge = "APIKey"

    def __init__(
        self,
        *,
        name: str,
        scheme_name: str | None = None,
        description: str | None = None,
        auto_error: bool = True,
    ) -> None:
        model = {"type": "apiKey", "in": self.where, "name": name}
        self._setup(model, scheme_name, description)
        self.name = name
        self.auto_error = auto_error

    def _key(self, request: Request) -> str | None:
        raise NotImplementedError

    async def __call__(self, request: Request) -> str | None:
        key = self._key(request)
        if not key:
            self._refuse()
            return None
        return key


class APIKeyQuery(_APIKey):
    """An API key in the query string: ``APIKeyQuery(name="api_key")``."""

    where = "query"

    def _key(self, request: Request) -> str | None:
        return request.query_params.get(self.name)


class APIKeyHeader(_APIKey):
    """An API key in a header: ``APIKeyHeader(name="X-API-Key")``."""

    where = "header"

    def _key(self, request: Request) -> str | None:
        return request.headers.get(self.name)


class APIKeyCookie(_APIKey):
    """An API key in a cookie: ``APIKeyCookie(name="session")``."""

    where = "cookie"

    def _key(self, request: Request) -> str | None:
        return request.cookies.get(self.name)


class OAuth2PasswordBearer(SecurityBase):
    """A bearer token obtained from ``tokenUrl`` with the OAuth2 password flow; the value
    is the token (a ``str``). Swagger UI's "Authorize" button posts the user name and
    password to ``tokenUrl`` and sends the token it gets back."""

    def __init__(
        self,
        tokenUrl: str,  # FastAPI's spelling
        scheme_name: str | None = None,
        scopes: dict[str, str] | None = None,
        description: str | None = None,
        auto_error: bool = True,
        refreshUrl: str | None = None,
    ) -> None:
        flow: dict[str, Any] = {"scopes": dict(scopes or {}), "tokenUrl": tokenUrl}
        if refreshUrl:
            flow["refreshUrl"] = refreshUrl
        self._setup({"type": "oauth2", "flows": {"password": flow}}, scheme_name, description)
        self.auto_error = auto_error

    async def __call__(self, request: Request) -> str | None:
        scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
        if scheme.lower() != "bearer" or not token:
            self._refuse()
            return None
        return token


class OAuth2PasswordRequestForm:
    """The form of the OAuth2 password flow (RFC 6749 section 4.3.2), read from a form
    body: ``username``, ``password``, ``scope`` (also split into ``scopes``), and the
    optional ``grant_type`` (``"password"`` when given), ``client_id`` and
    ``client_secret``. Use it as ``Annotated[OAuth2PasswordRequestForm, Depends()]`` in
    the ``tokenUrl`` route; it needs ``asgi_bg[forms]``.
    """

    def __init__(
        self,
        *,
        grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
        username: Annotated[str, Form()],
        password: Annotated[str, Form()],
        scope: Annotated[str, Form()] = "",
        client_id: Annotated[str | None, Form()] = None,
        client_secret: Annotated[str | None, Form()] = None,
    ) -> None:
        self.grant_type = grant_type
        self.username = username
        self.password = password
        self.scopes = scope.split()
        self.client_id = client_id
        self.client_secret = client_secret
