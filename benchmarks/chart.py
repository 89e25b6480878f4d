"""The PNG chart: in-process time per request and HTTP throughput, grouped by endpoint."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on benchmark machines

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from benchmarks.contenders import LABELS, NAMES
from benchmarks.report import SERVER_LABELS, RunResult
from benchmarks.summary import Summary

_COLOURS = {"raw": "#9e9e9e", "asgi_bg": "#2e7d32", "starlette": "#1565c0", "fastapi": "#00897b"}


def _bars(axes: Axes, series: dict[str, dict[str, float]], title: str, unit: str) -> None:
    """Grouped bars: one group per endpoint (outer key), one bar per contender or server."""
    groups = list(series)
    names = list(dict.fromkeys(name for values in series.values() for name in values))
    width = 0.8 / max(1, len(names))
    for index, name in enumerate(names):
        xs = [group + index * width for group in range(len(groups))]
        heights = [series[key].get(name, 0.0) for key in groups]
        label = LABELS.get(name, SERVER_LABELS.get(name, name))
        bars = axes.bar(xs, heights, width, label=label, color=_COLOURS.get(name))
        axes.bar_label(bars, fmt="%.3g", fontsize=6)
    axes.set_xticks([g + 0.4 - width / 2 for g in range(len(groups))], groups, fontsize=8)
    axes.set_title(title, fontsize=10)
    axes.set_ylabel(unit)
    axes.legend(fontsize=7)


def _medians(by_endpoint: dict[str, dict[str, Summary]]) -> dict[str, dict[str, float]]:
    return {
        key: {name: by_contender[name].median for name in NAMES if name in by_contender}
        for key, by_contender in by_endpoint.items()
    }


def _inprocess_panels(column: list[Axes], run: RunResult) -> None:
    for panel, (mode, by_endpoint) in zip(column, run.inprocess.items(), strict=False):
        title = f"In-process, {mode}: µs per request (lower is better)"
        _bars(panel, _medians(by_endpoint), title, "µs (log scale)")
        panel.set_yscale("log")


Panel = tuple[str, dict[str, dict[str, float]], str]  # title, bars, unit


def _effective_panel(run: RunResult) -> list[Panel]:
    if not run.http:
        return []
    server = "uvicorn-h11" if "uvicorn-h11" in run.http else next(iter(run.http))
    effective = {
        key: {name: found.effective.median for name, found in by_contender.items()}
        for key, by_contender in run.http[server].items()
    }
    return [(f"{SERVER_LABELS[server]}: effective req/s (higher is better)", effective, "req/s")]


def _servers_panel(run: RunResult) -> list[Panel]:
    per_server: dict[str, dict[str, float]] = {}
    for name, by_endpoint in run.http.items():
        for key, by_contender in by_endpoint.items():
            if "asgi_bg" in by_contender:
                per_server.setdefault(key, {})[name] = by_contender["asgi_bg"].rps.median
    if not per_server:
        return []
    return [("asgi_bg app under each server: req/s (higher is better)", per_server, "req/s")]


def draw(run: RunResult, path: Path) -> None:
    http_panels = _effective_panel(run) + _servers_panel(run)
    panels = len(run.inprocess) + len(http_panels)
    figure, axes = plt.subplots(panels, 1, figsize=(10, 3.6 * panels), squeeze=False)
    column = [row[0] for row in axes]
    _inprocess_panels(column, run)
    for axis, (title, bars, unit) in zip(column[len(run.inprocess) :], http_panels, strict=True):
        _bars(axis, bars, title, unit)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
