"""Tables (terminal and Markdown), the raw JSON, the PNG chart and the docs section."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path

from benchmarks.contenders import LABELS, NAMES, REFERENCES
from benchmarks.inprocess import InProcessSettings, Samples
from benchmarks.overhttp import SERVERS, HttpRecord, HttpSettings
from benchmarks.summary import HttpSummaries, InProcessSummary, Target, server_ratios
from benchmarks.workload import ENDPOINTS_BY_KEY

SERVER_LABELS = {server.name: server.label for server in SERVERS}
DOCS_START = "<!-- bench:start -->"
DOCS_END = "<!-- bench:end -->"


def _numeric(cell: str) -> bool:
    return cell == "-" or cell.rstrip("x").replace(".", "", 1).isdigit()


def render(headers: list[str], rows: list[list[str]], markdown: bool) -> str:
    """A table: Markdown for the docs, aligned plain text for the terminal."""
    if markdown:
        rule = [
            "---:" if all(_numeric(row[i]) for row in rows) else "---" for i in range(len(headers))
        ]
        lines = [headers, rule, *rows]
        return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    lines = [headers, ["-" * width for width in widths], *rows]
    return "\n".join("  ".join(map(str.ljust, cells, widths)).rstrip() for cells in lines)


def _ratio_cells(ratios: dict[str, float]) -> list[str]:
    return [f"{ratios[ref]:.2f}" if ref in ratios else "-" for ref in REFERENCES]


def _ordered(names: Mapping[str, object]) -> list[str]:
    return [name for name in NAMES if name in names]


def inprocess_table(summary: InProcessSummary, mode: str, markdown: bool) -> str:
    headers = ["endpoint", "contender", "µs/request", *(f"x {LABELS[ref]}" for ref in REFERENCES)]
    rows = []
    for key, by_contender in summary[mode].items():
        for name in _ordered(by_contender):
            found = by_contender[name]
            label = ENDPOINTS_BY_KEY[key].label
            rows.append([label, LABELS[name], f"{found.median:.1f}", *_ratio_cells(found.ratios)])
    return render(headers, rows, markdown)


def http_table(http: HttpSummaries, server: str, markdown: bool) -> str:
    headers = ["endpoint", "contender", "req/s", "p50 ms", "p99 ms", "effective req/s"]
    headers += ["effective x Starlette", "req/s x raw ASGI"]
    rows = []
    for key, by_contender in http[server].items():
        for name in _ordered(by_contender):
            found = by_contender[name]
            effective_vs = found.effective.ratios.get("starlette")
            rps_vs = found.rps.ratios.get("raw")
            rows.append(
                [
                    ENDPOINTS_BY_KEY[key].label,
                    LABELS[name],
                    f"{found.rps.median:.0f}",
                    f"{found.p50_ms:.2f}",
                    f"{found.p99_ms:.2f}",
                    f"{found.effective.median:.0f}",
                    "-" if effective_vs is None else f"{effective_vs:.2f}",
                    "-" if rps_vs is None else f"{rps_vs:.2f}",
                ]
            )
    return render(headers, rows, markdown)


def servers_table(http: HttpSummaries, records: list[HttpRecord], markdown: bool) -> str:
    """The asgi_bg app under every server: req/s and the per-round ratio to uvicorn h11."""
    ratios = server_ratios(records, "asgi_bg", "uvicorn-h11")
    headers = ["endpoint", "server", "req/s", "p99 ms", "x uvicorn h11"]
    rows = []
    for server, by_endpoint in http.items():
        for key, by_contender in by_endpoint.items():
            found = by_contender.get("asgi_bg")
            if found is None:
                continue
            ratio = ratios.get(server, {}).get(key)
            rows.append(
                [
                    ENDPOINTS_BY_KEY[key].label,
                    SERVER_LABELS[server],
                    f"{found.rps.median:.0f}",
                    f"{found.p99_ms:.2f}",
                    "-" if ratio is None else f"{ratio:.2f}",
                ]
            )
    return render(headers, rows, markdown)


def _http_cells(http: HttpSummaries, key: str) -> list[str]:
    found = http.get("uvicorn-h11", {}).get(key, {}).get("asgi_bg")
    if found is None:
        return ["-", "-"]
    ratio = found.effective.ratios.get("starlette")
    return [f"{found.effective.median:.0f}", "-" if ratio is None else f"{ratio:.2f}"]


def asgi_bg_table(run: RunResult, markdown: bool) -> str:
    """asgi_bg alone, one row per endpoint: the short table for the README."""
    headers = ["endpoint", "µs/request", *(f"x {LABELS[ref]}" for ref in REFERENCES)]
    headers += ["uvicorn h11 effective req/s", "x Starlette"]
    rows = []
    for key, by_contender in run.inprocess.get("sequential", {}).items():
        found = by_contender.get("asgi_bg")
        if found is not None:
            cells = [
                f"{found.median:.1f}",
                *_ratio_cells(found.ratios),
                *_http_cells(run.http, key),
            ]
            rows.append([ENDPOINTS_BY_KEY[key].label, *cells])
    return render(headers, rows, markdown)


def targets_table(targets: list[Target], markdown: bool) -> str:
    headers = ["target", "goal", "measured", "met", "note"]
    rows = [
        [
            target.label,
            target.goal,
            "-" if target.measured is None else f"{target.measured:.2f}x",
            {True: "yes", False: "NO", None: "not run"}[target.met],
            target.note,
        ]
        for target in targets
    ]
    return render(headers, rows, markdown)


@dataclass(frozen=True, slots=True)
class RunMeta:
    """Where and how a run was made: what makes two runs comparable, or not."""

    date: str
    machine: str
    commit: str
    versions: dict[str, str]
    load_tool: str
    inprocess_settings: InProcessSettings
    http_settings: HttpSettings | None


@dataclass(frozen=True, slots=True)
class RunResult:
    """Everything one run measured, as written to JSON and shown in the tables."""

    meta: RunMeta
    skipped: dict[str, str]
    failures: list[str]
    samples: Samples
    inprocess: InProcessSummary
    records: list[HttpRecord]
    http: HttpSummaries
    targets: list[Target]


def _sections(run: RunResult, markdown: bool) -> list[tuple[str, str]]:
    sequential = run.inprocess.get("sequential", {})
    sections = []
    if any("asgi_bg" in by_contender for by_contender in sequential.values()):
        title = "asgi_bg at a glance (in-process sequential; over HTTP with uvicorn h11)"
        sections.append((title, asgi_bg_table(run, markdown)))
    sections += [
        (
            f"In-process, {mode} (median µs per request; x X = median per-round ratio)",
            inprocess_table(run.inprocess, mode, markdown),
        )
        for mode in run.inprocess
    ]
    for server in run.http:
        title = f"Over HTTP, {SERVER_LABELS[server]} ({run.meta.load_tool})"
        sections.append((title, http_table(run.http, server, markdown)))
    if any(record.contender == "asgi_bg" for record in run.records):
        table = servers_table(run.http, run.records, markdown)
        sections.append(("The asgi_bg app under each server", table))
    sections.append(("Targets", targets_table(run.targets, markdown)))
    return sections


EFFECTIVE = (
    "Effective req/s: answered requests ÷ (load time + the wait until every background "
    "task the load queued had run), so work left queued behind the responses is not free."
)


def text(run: RunResult, markdown: bool) -> str:
    """The whole report; Markdown headings for the docs, underlined titles for the terminal."""
    versions = ", ".join(f"{name} {version}" for name, version in run.meta.versions.items())
    parts = [
        f"Machine: {run.meta.machine}",
        f"Run {run.meta.date} at commit {run.meta.commit}; {versions}.",
    ]
    parts += [f"Skipped {name}: {why}" for name, why in run.skipped.items()]
    parts += [f"FAILED {failure}" for failure in run.failures]
    if run.http:
        parts.append(EFFECTIVE)
    for title, table in _sections(run, markdown):
        heading = f"### {title}" if markdown else f"{title}\n{'=' * len(title)}"
        parts.append(f"{heading}\n\n{table}")
    return "\n\n".join(parts) + "\n"


def _plain(value: object) -> object:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    raise TypeError(f"not JSON serialisable: {value!r}")


def write_json(run: RunResult, path: Path) -> None:
    path.write_text(json.dumps(run, default=_plain, indent=1, ensure_ascii=False) + "\n")


def update_docs(run: RunResult, page: Path) -> None:
    """Replace the generated part of the performance page, between its two markers."""
    content = page.read_text()
    start, end = content.index(DOCS_START) + len(DOCS_START), content.index(DOCS_END)
    page.write_text(f"{content[:start]}\n{text(run, markdown=True)}{content[end:]}")
