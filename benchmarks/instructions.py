"""Instructions per request under callgrind: the one measure a loaded machine cannot blur.

Run the same contender and endpoint twice, with N and N + 1000 requests, and divide the
difference of the two totals by 1000 (start-up, imports and warm-up cancel out)::

    PY=$(python3 -c "import sys; print(sys.executable)")
    for n in 500 1500; do
        PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
            "$PY" -m benchmarks.instructions asgi_bg notify_async $n 2>&1 | grep Collected
    done

Callgrind runs threads one at a time, so a thread hop costs more instructions than it
costs time; compare contenders on the same endpoint, not endpoints with each other.
"""

from __future__ import annotations

import asyncio
import sys

from benchmarks.contenders import load
from benchmarks.inprocess import build_scope, lifespan, run_calls
from benchmarks.workload import ENDPOINTS_BY_KEY

_WARM_UP = 200


async def _serve(name: str, key: str, requests: int) -> None:
    contender = load(name)
    scope = build_scope(ENDPOINTS_BY_KEY[key])
    async with lifespan(contender.app):
        for count in (_WARM_UP, requests):
            await run_calls(contender.app, scope, count, 200)
            if contender.settle is not None:
                await contender.settle()


def main(argv: list[str]) -> None:
    """``python -m benchmarks.instructions CONTENDER ENDPOINT REQUESTS``."""
    name, key, requests = argv
    asyncio.run(_serve(name, key, int(requests)))


if __name__ == "__main__":
    main(sys.argv[1:])
