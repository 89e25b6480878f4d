"""The PNG chart: in-process time per request and HTTP throughput, grouped by endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on benchmark machines

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from benchmarks.contenders import LABELS, NAMES
from benchmarks.overhttp import SERVERS
from benchmarks.report import EFFECTIVE, SERVER_LABELS, RunResult

# asgi_bg in one colour no peer comes near (a strong magenta), the peers in greys and blues.
_ASGI_BG = "#c2185b"
_COLOURS = {"raw": "#9e9e9e", "asgi_bg": _ASGI_BG, "starlette": "#1565c0", "fastapi": "#4fc3f7"}
_SERVER_COLOURS = {"uvicorn-h11": "#616161", "uvicorn-httptools": "#1565c0", "asgi_bg": _ASGI_BG}
# The endpoints as users know them, not by the suite's keys or full route patterns.
_ENDPOINT_LABELS = {
    "hello": "GET /hello",
    "items": "GET /items/{id}?q=",
    "notify": "POST + async & sync task",
    "notify_async": "POST + 1 async task",
    "dependency": "POST + dependency,\n2 sync tasks",
}


@dataclass(frozen=True, slots=True)
class Panel:
    title: str
    unit: str
    bars: dict[str, dict[str, float]]  # endpoint -> series (contender or server) -> value
    order: tuple[str, ...]  # the series, in legend order
    labels: dict[str, str]
    colours: dict[str, str]
    log: bool = False


def _short(value: float) -> str:
    return f"{value / 1000:.1f}k" if value >= 1000 else f"{value:.3g}"


def _draw_panel(axes: Axes, panel: Panel) -> None:
    """Grouped bars: one group per endpoint, one bar per series, each labelled with its value."""
    groups = list(panel.bars)
    names = [name for name in panel.order if any(name in bars for bars in panel.bars.values())]
    width = 0.8 / max(1, len(names))
    for index, name in enumerate(names):
        xs = [group + index * width for group in range(len(groups))]
        heights = [panel.bars[key].get(name, 0.0) for key in groups]
        bars = axes.bar(xs, heights, width, label=panel.labels[name], color=panel.colours[name])
        axes.bar_label(bars, labels=[_short(height) for height in heights], fontsize=6)
    labels = [_ENDPOINT_LABELS.get(key, key) for key in groups]
    axes.set_xticks([g + 0.4 - width / 2 for g in range(len(groups))], labels, fontsize=8)
    axes.set_title(f"{panel.title}, log scale" if panel.log else panel.title, fontsize=10)
    axes.set_ylabel(panel.unit)
    if panel.log:
        axes.set_yscale("log")
    axes.legend(fontsize=7)


def _inprocess_panels(run: RunResult) -> list[Panel]:
    return [
        Panel(
            f"In-process, {mode}: µs per request (lower is better)",
            "µs per request (log scale)",
            {key: {n: s.median for n, s in found.items()} for key, found in by_endpoint.items()},
            NAMES,
            LABELS,
            _COLOURS,
            log=True,
        )
        for mode, by_endpoint in run.inprocess.items()
    ]


def _effective_panel(run: RunResult) -> list[Panel]:
    if not run.http:
        return []
    server = "uvicorn-h11" if "uvicorn-h11" in run.http else next(iter(run.http))
    effective = {
        key: {name: found.effective.median for name, found in by_contender.items()}
        for key, by_contender in run.http[server].items()
    }
    title = f"{SERVER_LABELS[server]}: effective req/s (higher is better; see below)"
    return [Panel(title, "req/s", effective, NAMES, LABELS, _COLOURS)]


def _servers_panel(run: RunResult) -> list[Panel]:
    per_server: dict[str, dict[str, float]] = {}
    for name, by_endpoint in run.http.items():
        for key, by_contender in by_endpoint.items():
            if "asgi_bg" in by_contender:
                per_server.setdefault(key, {})[name] = by_contender["asgi_bg"].rps.median
    if not per_server:
        return []
    title = "The asgi_bg app under each server: req/s (higher is better)"
    order = tuple(server.name for server in SERVERS)
    return [Panel(title, "req/s", per_server, order, SERVER_LABELS, _SERVER_COLOURS)]


def caption(run: RunResult) -> str:
    """Where and how the figures were taken, printed under the chart."""
    meta = run.meta
    lines = [
        f"{meta.machine}; commit {meta.commit}; {meta.date}",
        f"HTTP load generator: {meta.load_tool}" if run.http else "in-process only",
    ]
    if run.http:
        lines.append(EFFECTIVE)
    return "\n".join(lines)


def draw(run: RunResult, path: Path) -> None:
    panels = _inprocess_panels(run) + _effective_panel(run) + _servers_panel(run)
    height = 3.6 * len(panels) + 0.6
    figure, axes = plt.subplots(len(panels), 1, figsize=(10, height), squeeze=False)
    for row, panel in zip(axes, panels, strict=True):
        _draw_panel(row[0], panel)
    figure.text(0.01, 0.005, caption(run), fontsize=7, va="bottom", wrap=True)
    figure.tight_layout(rect=(0, 0.6 / height, 1, 1))
    figure.savefig(path, dpi=110)
    plt.close(figure)
