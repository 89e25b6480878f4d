"""``python -m benchmarks``: run the in-process and HTTP comparisons, print and save results.

``--quick`` is a short smoke run; ``--profile`` profiles asgi_bg's hot path instead (and
breaks each request with tasks down by phase: ``benchmarks/phases.py``);
``--docs`` also refreshes docs/performance.md and docs/bench.png from this run.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from benchmarks import (
    chart,
    contenders,
    inprocess,
    loadgen,
    overhttp,
    phases,
    profiling,
    report,
    summary,
)
from benchmarks.workload import ENDPOINTS

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
DOCS = ROOT / "docs"
_ALL_ENDPOINTS = tuple(endpoint.key for endpoint in ENDPOINTS)
# The quick run's HTTP part keeps the two endpoints the HTTP targets are about.
_QUICK_HTTP_ENDPOINTS = ("hello", "notify")
_PACKAGES = ("asgi_bg", "starlette", "fastapi", "uvicorn", "anyio", "h11", "httptools")


def _names(text: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    names = tuple(name for name in text.split(",") if name)
    unknown = set(names) - set(allowed)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown {sorted(unknown)}; choose from {allowed}")
    return names


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short smoke run (under a minute)")
    parser.add_argument("--rounds", type=int, help="in-process rounds (default 9, quick 2)")
    parser.add_argument(
        "--requests",
        type=int,
        help="requests per batch with tasks, 5x without (default 1000, quick 200)",
    )
    parser.add_argument("--http-rounds", type=int, help="HTTP rounds (default 5, quick 1)")
    parser.add_argument("--http-seconds", type=int, help="seconds of each load (default 1)")
    parser.add_argument("--no-http", action="store_true", help="in-process comparison only")
    parser.add_argument(
        "--contenders",
        type=lambda text: _names(text, contenders.NAMES),
        default=contenders.NAMES,
        help="comma-separated subset of " + ",".join(contenders.NAMES),
    )
    parser.add_argument(
        "--endpoints",
        type=lambda text: _names(text, _ALL_ENDPOINTS),
        help="comma-separated subset of " + ",".join(_ALL_ENDPOINTS),
    )
    parser.add_argument(
        "--docs", action="store_true", help="refresh docs/performance.md and docs/bench.png"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile one contender instead")
    parser.add_argument("--profile-contender", default="asgi_bg", choices=contenders.NAMES)
    return parser


def _pick(value: int | None, quick: bool, full: int, short: int) -> int:
    if value is not None:
        return value
    return short if quick else full


def _settings(
    args: argparse.Namespace,
) -> tuple[inprocess.InProcessSettings, overhttp.HttpSettings]:
    endpoints = args.endpoints or _ALL_ENDPOINTS
    quick_http = tuple(key for key in _QUICK_HTTP_ENDPOINTS if key in endpoints)
    local = inprocess.InProcessSettings(
        rounds=_pick(args.rounds, args.quick, 9, 2),
        requests=_pick(args.requests, args.quick, 1000, 200),
        callers=10,
        endpoints=endpoints,
    )
    http = overhttp.HttpSettings(
        rounds=_pick(args.http_rounds, args.quick, 5, 1),
        seconds=_pick(args.http_seconds, args.quick, 1, 1),
        connections=10,
        endpoints=(quick_http or endpoints) if args.quick else endpoints,
    )
    return local, http


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def _commit() -> str:
    """The commit measured, flagged when asgi_bg had uncommitted changes."""
    head = _git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = _git("status", "--porcelain", "--", "asgi_bg")
    return f"{head} with local changes to asgi_bg" if dirty else head


def _meta(
    local: inprocess.InProcessSettings, http: overhttp.HttpSettings, no_http: bool
) -> report.RunMeta:
    python = f"{platform.python_implementation()} {platform.python_version()}"
    machine = f"{os.cpu_count()} cores ({_cpu_model()}), {platform.system()}, {python}, asyncio"
    return report.RunMeta(
        date=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        machine=machine,
        commit=_commit(),
        versions={package: _version(package) for package in _PACKAGES},
        load_tool=loadgen.tool(),
        inprocess_settings=local,
        http_settings=None if no_http else http,
    )


def _progress_printer() -> Callable[[str], None]:
    started = time.perf_counter()

    def progress(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {message}", file=sys.stderr, flush=True)

    return progress


def _http_records(
    args: argparse.Namespace,
    settings: overhttp.HttpSettings,
    names: list[str],
    skipped: dict[str, str],
    progress: Callable[[str], None],
) -> tuple[list[overhttp.HttpRecord], list[str]]:
    if args.no_http:
        return [], []
    servers, unavailable = overhttp.available_servers()
    for name, why in unavailable.items():
        skipped[f"server {name}"] = why
        progress(f"skipping server {name}: {why}")
    progress(
        f"over HTTP with {loadgen.tool()}: {settings.rounds} rounds of {settings.seconds} s loads"
    )
    return overhttp.run(servers, names, settings, progress)


def _measure(args: argparse.Namespace, progress: Callable[[str], None]) -> report.RunResult:
    local, http = _settings(args)
    loaded, skipped = contenders.load_available(args.contenders)
    for name, why in skipped.items():
        progress(f"skipping {name}: {why}")
    progress(f"in-process: {', '.join(c.name for c in loaded)}; {local.rounds} rounds")
    samples = inprocess.run(loaded, local, progress)
    records, failures = _http_records(args, http, [c.name for c in loaded], skipped, progress)
    local_summary = summary.summarise_inprocess(samples)
    http_summary = summary.summarise_http(records)
    return report.RunResult(
        meta=_meta(local, http, args.no_http),
        skipped=skipped,
        failures=failures,
        samples=samples,
        inprocess=local_summary,
        records=records,
        http=http_summary,
        targets=summary.targets(local_summary, http_summary, records),
    )


def _save(run: report.RunResult, docs: bool) -> list[Path]:
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / datetime.datetime.now().strftime("bench-%Y%m%d-%H%M%S")
    paths = [stem.with_suffix(".json"), stem.with_suffix(".png"), stem.with_suffix(".md")]
    report.write_json(run, paths[0])
    chart.draw(run, paths[1])
    paths[2].write_text(report.text(run, markdown=True))
    if docs:
        shutil.copyfile(paths[1], DOCS / "bench.png")
        report.update_docs(run, DOCS / "performance.md")
        paths += [DOCS / "bench.png", DOCS / "performance.md"]
    return paths


def _profile(args: argparse.Namespace) -> None:
    RESULTS.mkdir(exist_ok=True)
    requests = _pick(args.requests, args.quick, 2000, 200)
    endpoints = args.endpoints or _ALL_ENDPOINTS
    paths = profiling.profile(args.profile_contender, endpoints, requests, 20, RESULTS)
    for key, path in paths.items():
        print(f"== {args.profile_contender} {key}: {path.relative_to(ROOT)}\n{path.read_text()}")
    if args.profile_contender == "asgi_bg":
        for key, table in phases.phases(endpoints, requests).items():
            path = RESULTS / f"phases-asgi_bg-{key}.txt"
            path.write_text(table)
            print(f"== asgi_bg {key} by phase: {path.relative_to(ROOT)}\n{table}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.profile:
        _profile(args)
        return 0
    progress = _progress_printer()
    run = _measure(args, progress)
    print(report.text(run, markdown=False))
    for path in _save(run, args.docs):
        progress(f"wrote {path.relative_to(ROOT)}")
    return 1 if run.failures else 0


if __name__ == "__main__":
    sys.exit(main())
