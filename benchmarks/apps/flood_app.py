"""The app of the task flood (issue 11, finding 2): each POST queues a one-second ``def`` task.

``FLOOD_MAX_PENDING`` sets ``max_pending_tasks`` ("none" for no bound); unset, the
app keeps asgi_bg's default.
"""

import os
import resource
import time
from typing import Any

from asgi_bg import App, BackgroundTasks

_setting = os.environ.get("FLOOD_MAX_PENDING")
_options: dict[str, Any] = {}
if _setting is not None:
    _options["max_pending_tasks"] = None if _setting == "none" else int(_setting)

app = App(shutdown_timeout=0.5, **_options)


def one_second_of_work(n: int) -> None:
    time.sleep(1.0)


@app.post("/flood/{n:int}")
async def flood(n: int, tasks: BackgroundTasks) -> dict[str, int]:
    tasks.add_task(one_second_of_work, n)
    return {"queued": n}


@app.get("/stats")
def stats() -> dict[str, int]:
    with open("/proc/self/statm") as statm:
        rss_pages = int(statm.read().split()[1])
    return {**app.tasks.stats(), "rss": rss_pages * resource.getpagesize()}
