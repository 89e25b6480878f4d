"""A POST with a five-field model body, in-process: asgi_bg with a dataclass, asgi_bg with
a pydantic model, FastAPI with the same pydantic model.

Each app validates the body into the model and returns it (so the model is encoded back
to JSON too). Every answer is checked before timing. Run ``python -m benchmarks.model_body``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
from dataclasses import dataclass, field
from time import perf_counter_ns

from fastapi import FastAPI
from pydantic import BaseModel, Field

import asgi_bg
from benchmarks.inprocess import build_scope, fetch
from benchmarks.workload import ASGIApp, BenchmarkError, Endpoint, Scope

PAYLOAD = {"name": "pen", "price": 2.5, "quantity": 3, "tags": ["office", "blue"], "in_stock": True}
BODY = json.dumps(PAYLOAD).encode()
ENDPOINT = Endpoint("model", "/items", "POST", "/items", "", "json", PAYLOAD, 0)


@dataclass
class ItemData:
    name: str
    price: float
    quantity: int
    tags: list[str] = field(default_factory=list)
    in_stock: bool = True


class ItemModel(BaseModel):
    name: str
    price: float
    quantity: int
    tags: list[str] = Field(default_factory=list)
    in_stock: bool = True


def build_apps() -> dict[str, ASGIApp]:
    with_dataclass = asgi_bg.App()
    with_pydantic = asgi_bg.App()
    fastapi = FastAPI()

    @with_dataclass.post("/items")
    async def create_data(item: ItemData) -> ItemData:
        return item

    @with_pydantic.post("/items")
    async def create_model(item: ItemModel) -> ItemModel:
        return item

    @fastapi.post("/items")
    async def create_fastapi(item: ItemModel) -> ItemModel:
        return item

    return {
        "asgi_bg + dataclass": with_dataclass,
        "asgi_bg + pydantic": with_pydantic,
        "FastAPI": fastapi,
    }


def scope_with_body() -> Scope:
    scope = build_scope(ENDPOINT)
    scope["headers"] = [
        (b"host", b"testserver"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BODY)).encode()),
    ]
    return scope


async def time_batch(app: ASGIApp, count: int) -> float:
    scope = scope_with_body()
    gc.collect()
    start = perf_counter_ns()
    for _ in range(count):
        status, _ = await fetch(app, scope, BODY)
        if status != 200:
            raise BenchmarkError(f"answered {status}")
    return (perf_counter_ns() - start) / count / 1000


async def measure(rounds: int, count: int) -> dict[str, float]:
    apps = build_apps()
    for name, app in apps.items():
        status, body = await fetch(app, scope_with_body(), BODY)
        if status != 200 or json.loads(body) != PAYLOAD:
            raise BenchmarkError(f"{name} answered {status} {body!r}")
        await time_batch(app, count // 5)  # warm-up
    samples: dict[str, list[float]] = {name: [] for name in apps}
    for _ in range(rounds):
        for name, app in apps.items():
            samples[name].append(await time_batch(app, count))
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.model_body", description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=5000)
    args = parser.parse_args()
    medians = asyncio.run(measure(args.rounds, args.requests))
    fastapi = medians["FastAPI"]
    print(f"POST /items, five-field model body; median of {args.rounds} x {args.requests}")
    for name, us in medians.items():
        print(f"  {name:<22} {us:8.1f} us/request   {us / fastapi:5.2f}x FastAPI")


if __name__ == "__main__":
    main()
