"""Every security scheme on a route, required and optional; also run with FastAPI's
import line by the security tests, which send both apps the same requests.

The schemes are taken with the default-value spelling: FastAPI mixes up two
``Annotated[Any, Depends(...)]`` of equal-looking schemes (typing caches the alias).
"""

from typing import Annotated, Any

from asgi_bg import App, Depends
from asgi_bg.security import (
    APIKeyCookie,
    APIKeyHeader,
    APIKeyQuery,
    HTTPBasic,
    HTTPBearer,
    OAuth2PasswordBearer,
)

app = App()

SCHEMES: dict[str, Any] = {
    "bearer": HTTPBearer(bearerFormat="JWT", description="A signed token"),
    "basic": HTTPBasic(realm="shop"),
    "header-key": APIKeyHeader(name="X-API-Key"),
    "query-key": APIKeyQuery(name="api_key", scheme_name="QueryKey"),
    "cookie-key": APIKeyCookie(name="session"),
    "oauth2": OAuth2PasswordBearer(tokenUrl="/token", scopes={"read": "Read items"}),
}
OPTIONAL: dict[str, Any] = {
    "bearer": HTTPBearer(auto_error=False),
    "basic": HTTPBasic(auto_error=False),
    "header-key": APIKeyHeader(name="X-API-Key", auto_error=False),
    "query-key": APIKeyQuery(name="api_key", auto_error=False),
    "cookie-key": APIKeyCookie(name="session", auto_error=False),
    "oauth2": OAuth2PasswordBearer(tokenUrl="/token", auto_error=False),
}


def shown(value: Any) -> Any:
    """What a handler answers for a scheme's value: credentials objects as their fields."""
    if value is None or isinstance(value, str):
        return value
    return {
        k: getattr(value, k)
        for k in ("scheme", "credentials", "username", "password")
        if hasattr(value, k)
    }


def guarded(scheme: Any) -> Any:
    async def endpoint(value: Any = Depends(scheme)) -> Any:  # noqa: B008
        return {"value": shown(value)}

    return endpoint


for name, scheme in SCHEMES.items():
    app.get(f"/required/{name}")(guarded(scheme))
    app.get(f"/optional/{name}")(guarded(OPTIONAL[name]))


def current_user(token: Annotated[str, Depends(SCHEMES["oauth2"])]) -> str:
    return token.upper()


@app.get("/me")
async def me(user: Annotated[str, Depends(current_user)]) -> dict[str, str]:
    """A scheme two dependencies deep still lists the operation as secured."""
    return {"user": user}
