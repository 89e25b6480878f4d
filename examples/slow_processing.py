"""Slow data processing: upload a file, get ``202 Accepted`` and a job id, poll for the result.

``POST /jobs`` takes the file as the request body, answers ``202`` with the job's id and
URL (also in ``Location``) before any work is done, and processes the file in a ``def``
background task, in a worker thread. ``GET /jobs/{id}`` reports ``queued``,
``processing``, ``done`` (with the result) or ``failed`` (with the error); an unknown id
answers 404.

Jobs live in this process's memory, so this suits one worker; with several workers or
restarts, keep them in a database or a queue instead.

Try it::

    python -m asgi_bg examples.slow_processing:app
    curl -i -X POST localhost:8000/jobs --data-binary @README.md   # 202, a job id
    curl localhost:8000/jobs/<id>                                    # processing, then done

``SLOW_PROCESSING_SECONDS`` (default 2) is how long the pretend-expensive step takes.
"""

import hashlib
import os
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from asgi_bg import App, BackgroundTasks, HTTPException, JSONResponse, Request

app = App()

Status = Literal["queued", "processing", "done", "failed"]


@dataclass
class Job:
    id: str
    size: int
    status: Status = "queued"
    result: dict[str, Any] | None = None
    error: str | None = None
    submitted: float = field(default_factory=time.time)


JOBS: dict[str, Job] = {}


def expensive_step() -> None:
    """Stands in for the slow part of real work: parsing, resizing, calling a model."""
    time.sleep(float(os.environ.get("SLOW_PROCESSING_SECONDS", "2")))


def process(job: Job, data: bytes) -> None:
    """The background task: runs in a worker thread, after the 202 went out."""
    job.status = "processing"
    try:
        text = data.decode("utf-8")
        expensive_step()
    except Exception as exc:
        job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"
        raise  # asgi_bg logs it with the task's name and counts it as failed
    job.result = {
        "bytes": len(data),
        "lines": len(text.splitlines()),
        "words": len(text.split()),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    job.status = "done"


@app.post("/jobs")
async def submit(request: Request, tasks: BackgroundTasks) -> JSONResponse:
    data = await request.body()
    if not data:
        raise HTTPException(422, "Upload a non-empty file as the request body")
    job_id = uuid.uuid4().hex
    job = JOBS[job_id] = Job(job_id, size=len(data))
    tasks.add_task(process, job, data)
    url = app.url_path_for("job_status", job_id=job.id)
    body = {"id": job.id, "status": job.status, "url": url}
    return JSONResponse(body, status_code=202, headers={"location": url})


@app.get("/jobs/{job_id}", name="job_status")
async def job_status(job_id: str) -> dict[str, Any]:
    job = JOBS.get(job_id)
    if job is None:
        raise HTTPException(404, f"No job {job_id}")
    return asdict(job)
