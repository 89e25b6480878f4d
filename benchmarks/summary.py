"""Medians and per-round ratios, and the targets checked against them.

Absolute times are not comparable across runs on a noisy machine, so every ratio is
taken within one round (same minute, same machine state) and only then the median.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass

from benchmarks.contenders import REFERENCES
from benchmarks.inprocess import Samples
from benchmarks.overhttp import SERVERS, HttpRecord

_SERVER_LABELS = {server.name: server.label for server in SERVERS}


@dataclass(frozen=True, slots=True)
class Summary:
    median: float
    ratios: dict[str, float]  # reference contender -> median of the per-round ratios


# contender -> round number -> value; a round may lack a contender whose server failed.
Rounds = dict[str, dict[int, float]]


def _ratios(values: dict[int, float], per_contender: Rounds) -> dict[str, float]:
    ratios = {}
    for ref in REFERENCES:
        base = per_contender.get(ref, {})
        within_round = [value / base[number] for number, value in values.items() if number in base]
        if within_round:
            ratios[ref] = statistics.median(within_round)
    return ratios


def summarise(per_contender: Rounds) -> dict[str, Summary]:
    """Per contender: the median value and its median ratio to each reference present."""
    return {
        name: Summary(statistics.median(values.values()), _ratios(values, per_contender))
        for name, values in per_contender.items()
    }


# mode -> endpoint -> contender -> summary
InProcessSummary = dict[str, dict[str, dict[str, Summary]]]


def summarise_inprocess(samples: Samples) -> InProcessSummary:
    return {
        mode: {
            key: summarise({name: dict(enumerate(values)) for name, values in by_contender.items()})
            for key, by_contender in by_endpoint.items()
        }
        for mode, by_endpoint in samples.items()
    }


@dataclass(frozen=True, slots=True)
class HttpSummary:
    rps: Summary
    effective: Summary
    p50_ms: float
    p99_ms: float


# server -> endpoint -> contender -> summary
HttpSummaries = dict[str, dict[str, dict[str, HttpSummary]]]


def summarise_http(records: list[HttpRecord]) -> HttpSummaries:
    groups: dict[tuple[str, str], dict[str, list[HttpRecord]]] = defaultdict(dict)
    for record in records:
        groups[record.server, record.endpoint].setdefault(record.contender, []).append(record)
    result: HttpSummaries = defaultdict(dict)
    for (server, endpoint), by_contender in groups.items():
        rps = summarise({n: {r.round: r.rps for r in runs} for n, runs in by_contender.items()})
        effective = summarise(
            {n: {r.round: r.effective_rps for r in runs} for n, runs in by_contender.items()}
        )
        result[server][endpoint] = {
            name: HttpSummary(
                rps[name],
                effective[name],
                statistics.median(r.p50_ms for r in runs),
                statistics.median(r.p99_ms for r in runs),
            )
            for name, runs in by_contender.items()
        }
    return dict(result)


def server_ratios(
    records: list[HttpRecord], contender: str, baseline: str
) -> dict[str, dict[str, float]]:
    """server -> endpoint -> median per-round ratio of req/s to ``baseline`` (same app)."""
    rates: dict[tuple[str, str, int], float] = {
        (r.server, r.endpoint, r.round): r.rps for r in records if r.contender == contender
    }
    ratios: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for (server, endpoint, number), rps in rates.items():
        base = rates.get((baseline, endpoint, number))
        if base is not None and server != baseline:
            ratios[server][endpoint].append(rps / base)
    return {
        server: {endpoint: statistics.median(values) for endpoint, values in by_endpoint.items()}
        for server, by_endpoint in ratios.items()
    }


@dataclass(frozen=True, slots=True)
class Target:
    """One goal for asgi_bg; ``measured`` is None when it could not be run."""

    label: str
    goal: str
    measured: float | None
    met: bool | None
    note: str


def _ratio(summary: InProcessSummary, mode: str, endpoint: str, ref: str) -> float | None:
    found = summary.get(mode, {}).get(endpoint, {}).get("asgi_bg")
    return None if found is None else found.ratios.get(ref)


def _in_process_target(summary: InProcessSummary, endpoint: str, ref: str, limit: float) -> Target:
    measured = _ratio(summary, "sequential", endpoint, ref)
    concurrent = _ratio(summary, "concurrent", endpoint, ref)
    note = "" if concurrent is None else f"{concurrent:.2f}x with 10 concurrent callers"
    met = None if measured is None else measured <= limit
    return Target(f"in-process {endpoint}, sequential", f"<= {limit}x {ref}", measured, met, note)


def _effective_target(http: HttpSummaries, server: str, ref: str, limit: float) -> Target:
    found = http.get(server, {}).get("notify", {}).get("asgi_bg")
    measured = None if found is None else found.effective.ratios.get(ref)
    note = "" if found is None else f"p99 {found.p99_ms:.1f} ms"
    met = None if measured is None else measured >= limit
    label = f"effective req/s, async+sync tasks, {_SERVER_LABELS[server]}"
    return Target(label, f">= {limit}x {ref}", measured, met, note)


def _server_target(ratios: dict[str, float], endpoint: str) -> Target:
    measured = ratios.get(endpoint)
    met = None if measured is None else measured >= 1.0
    label = f"embedded server req/s on {endpoint}, asgi_bg app"
    return Target(label, ">= 1.0x uvicorn --http h11", measured, met, "")


def targets(
    inprocess: InProcessSummary, http: HttpSummaries, records: list[HttpRecord]
) -> list[Target]:
    embedded = server_ratios(records, "asgi_bg", "uvicorn-h11").get("asgi_bg", {})
    return [
        _in_process_target(inprocess, "hello", "raw", 2.5),
        _in_process_target(inprocess, "items", "raw", 1.8),
        _in_process_target(inprocess, "notify_async", "raw", 3.0),
        _in_process_target(inprocess, "notify", "raw", 1.1),
        _in_process_target(inprocess, "dependency", "fastapi", 0.4),
        _effective_target(http, "uvicorn-h11", "starlette", 1.7),
        _effective_target(http, "uvicorn-httptools", "raw", 0.9),
        _effective_target(http, "asgi_bg", "raw", 0.9),
        _server_target(embedded, "hello"),
        _server_target(embedded, "items"),
    ]
