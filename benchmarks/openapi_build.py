"""How long ``app.openapi()`` takes for a 100-route app, asgi_bg against FastAPI.

``python -m benchmarks.openapi_build [--routes N] [--rounds R]``

Both apps are built from the same route source (25 kinds of route, repeated with
numbered paths: path/query/header/cookie parameters with constraints, a dataclass body,
an embedded body, a security dependency, a dataclass response). Each round builds a
fresh app and times its first ``openapi()`` call, the one that builds the document (later
calls return the cached one); the table gives the median and the fastest round. The
document is built on the first request to ``/openapi.json``, never on other requests.

(No ``from __future__ import annotations``: the handlers annotate with local names.)
"""

import argparse
import dataclasses
import functools
import statistics
import time
from collections.abc import Callable
from typing import Annotated, Any

ROUTE_KINDS = 4


@dataclasses.dataclass
class Item:
    name: str
    price: float
    tags: list[str] = dataclasses.field(default_factory=list)


def build(framework: Any, routes: int) -> Any:
    """An app of ``routes`` routes made with ``framework``'s names (asgi_bg or fastapi)."""
    app = framework.App()
    bearer = framework.HTTPBearer()
    query, path, header, body, depends = (
        framework.Query,
        framework.Path,
        framework.Header,
        framework.Body,
        framework.Depends,
    )
    for n in range(routes):
        kind = n % ROUTE_KINDS
        if kind == 0:

            async def read(
                item_id: Annotated[int, path(ge=1)],
                q: Annotated[str | None, query(max_length=20)] = None,
                x_trace: Annotated[str | None, header()] = None,
            ) -> Item:
                return Item("x", 1.0)

            app.get(f"/r{n}/items/{{item_id}}")(read)
        elif kind == 1:

            async def create(item: Item) -> dict[str, str]:
                return {}

            app.post(f"/r{n}/items", status_code=201)(create)
        elif kind == 2:

            async def embed(
                item: Annotated[Item, body(embed=True)], auth: Annotated[Any, depends(bearer)]
            ) -> list[Item]:
                return []

            app.put(f"/r{n}/items")(embed)
        else:

            async def search(
                skip: int = 0, limit: Annotated[int, query(le=100)] = 10
            ) -> dict[str, int]:
                return {}

            app.get(f"/r{n}/search")(search)
    return app


class _Names:
    """The names ``build`` uses, from one framework."""

    def __init__(self, **names: Any) -> None:
        self.__dict__.update(names)


def frameworks() -> dict[str, Any]:
    import fastapi  # noqa: PLC0415 - only the benchmark needs FastAPI
    import fastapi.security  # noqa: PLC0415

    import asgi_bg  # noqa: PLC0415
    import asgi_bg.security  # noqa: PLC0415

    names = ("Query", "Path", "Header", "Body", "Depends")
    ours = _Names(
        App=asgi_bg.App,
        HTTPBearer=asgi_bg.security.HTTPBearer,
        **{n: getattr(asgi_bg, n) for n in names},
    )
    theirs = _Names(
        App=fastapi.FastAPI,
        HTTPBearer=fastapi.security.HTTPBearer,
        **{n: getattr(fastapi, n) for n in names},
    )
    return {"asgi_bg": ours, "fastapi": theirs}


def time_first_build(make: Callable[[], Any]) -> float:
    app = make()
    start = time.perf_counter()
    app.openapi()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--routes", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    names = frameworks()
    timings: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(args.rounds):  # frameworks take turns, round after round
        for name, framework in names.items():
            timings[name].append(time_first_build(functools.partial(build, framework, args.routes)))
    print(f"app.openapi() for {args.routes} routes, {args.rounds} rounds")
    print(f"{'framework':<10} {'median ms':>10} {'fastest ms':>11}")
    for name, times in timings.items():
        print(f"{name:<10} {statistics.median(times) * 1e3:>10.2f} {min(times) * 1e3:>11.2f}")


if __name__ == "__main__":
    main()
