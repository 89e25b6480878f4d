"""The documentation stays honest: every Python block of README.md and docs/*.md runs.

Each block runs on its own, as a reader would paste it, in a fresh module, in a temporary
working directory (the examples write their logs there). A block preceded by the HTML
comment ``<!-- no-run -->`` is skipped, visibly. Relative links must point at files that
exist.
"""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
NO_RUN = "<!-- no-run -->"
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")


# Pages whose blocks are fragments of one deployment (a broker, a project package), skipped
# with this reason until they are marked or made standalone.
def python_blocks() -> list[object]:
    params: list[object] = []
    for path in DOCS:
        text = path.read_text()
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            before = text[: match.start()].rstrip().rsplit("\n", 1)[-1].strip()
            name = f"{path.relative_to(ROOT)}:{line}"
            reason = f"marked {NO_RUN}" if before == NO_RUN else None
            marks = [pytest.mark.skip(reason=reason)] if reason else []
            params.append(pytest.param(name, match.group(1), id=name, marks=marks))
    return params


@pytest.mark.parametrize(("where", "code"), python_blocks())
def test_python_block_runs(
    where: str, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ASGI_BG_EXAMPLES_DIR", str(tmp_path))
    # A real module, so dataclasses and string annotations resolve as in a user's file.
    name = "docs_block_" + re.sub(r"\W", "_", where)
    module = types.ModuleType(name)
    monkeypatch.setitem(sys.modules, name, module)
    exec(compile(code, where, "exec"), module.__dict__)
    # A block that neither checks anything nor defines anything would pass whatever the
    # code it shows does.
    defined = {n for n in vars(module) if not n.startswith("__")}
    assert re.search(r"^\s*assert ", code, re.M) or defined, f"{where} shows nothing testable"


def test_every_doc_has_python_blocks_or_is_known() -> None:
    """A doc page without a single runnable block would be tested by nothing here."""
    without = [p.name for p in DOCS if not BLOCK.search(p.read_text())]
    known = {"performance.md", "server.md", "deployment.md", "architecture.md"}
    assert set(without) <= known, without


@pytest.mark.parametrize("path", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_relative_links_point_at_existing_files(path: Path) -> None:
    targets = [t for t in LINK.findall(path.read_text()) if "://" not in t]
    missing = [t for t in targets if not (path.parent / t).exists()]
    assert not missing, f"{path.name} links to missing files: {missing}"
