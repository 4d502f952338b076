"""The documentation site builds without warnings, and its complete code samples run."""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import qjaxiface

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"

# Pages whose ```python blocks, run in order in one interpreter, form a complete program.
# (Other pages show fragments.)
RUNNABLE_PAGES = ["getting-started.md", "counts-under-jit.md"]


def _have(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


@pytest.mark.skipif(
    not _have("mkdocs", "mkdocstrings", "mkdocstrings_handlers.python"),
    reason="mkdocs and mkdocstrings[python] are not installed (pip install -e '.[docs]')",
)
def test_mkdocs_build_strict(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        # Material 9.7+ prints a banner about MkDocs 2 on every build.
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    assert "WARNING" not in log, log
    api = (tmp_path / "api" / "index.html").read_text()
    for name in (
        "execute",
        "install",
        "uninstall",
        "installed",
        "is_installed",
        "get_jax_interface_name",
        "set_parameters_on_copy",
        "jax_jvp_execute",
        "jax_vjp_execute",
        "jax_jit_jvp_execute",
        "jax_jit_vjp_execute",
    ):
        assert f'id="qjaxiface.{name}"' in api, f"qjaxiface.{name} missing from the API reference"
    # Rendered, not raw: no reST roles or directives, and examples are code blocks (a ``>>>``
    # outside an ``Examples:`` section renders as nested block quotes of run-together text).
    assert not re.search(r":(func|mod|class|meth|attr|data|exc|obj):`", api)
    assert ".. note::" not in api
    assert "<blockquote>" not in api
    assert api.count("&gt;&gt;&gt; ") > 20
    # The execute signature is shown whole: every parameter, each on the page's signature block.
    block = api[api.index('id="qjaxiface.execute"') :]
    block = re.sub(r"<[^>]+>", "", block[block.index("doc-signature") : block.index("</pre>")])
    for parameter in inspect.signature(qjaxiface.execute).parameters:
        assert f"{parameter}" in block, (parameter, block)


def test_docstrings_are_written_for_mkdocstrings():
    """Google sections and Markdown: what the API page renders (reST roles show up raw)."""
    offenders = []
    for path in (REPO / "qjaxiface").rglob("*.py"):
        text = path.read_text()
        for pattern in (
            r":(func|mod|class|meth|attr|data|exc|obj):`",
            r"\*\*Example\*\*",
            r"\.\. \w+::",
        ):
            offenders += [f"{path.name}: {m.group(0)}" for m in re.finditer(pattern, text)]
    assert offenders == []


def test_every_page_is_in_the_nav():
    nav = (REPO / "mkdocs.yml").read_text()
    for page in DOCS.glob("*.md"):
        assert f" {page.name}" in nav, f"docs/{page.name} is not in the mkdocs.yml nav"


@pytest.mark.parametrize("page", RUNNABLE_PAGES)
def test_code_samples_run(page, tmp_path):
    text = (DOCS / page).read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, f"no python blocks in {page}"
    script = tmp_path / "sample.py"
    script.write_text("\n".join(blocks))
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
