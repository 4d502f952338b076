"""Shared by the benchmark scripts: running one measurement in a fresh process, naming the
machine, saving results, the cells of their tables (minimum and median over runs, ratios) and
regenerating one section of a Markdown page."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
from collections.abc import Callable
from pathlib import Path


def run_worker(cmd: list[str], timeout: float, env_extra: dict | None = None) -> dict:
    """Run ``cmd`` (a script's worker mode, printing one JSON line last) in a fresh process
    without a persistent compilation cache, with ``env_extra`` set: its result,
    ``{"timeout": ...}`` or ``{"error": <its last stderr line>}``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    env.update(env_extra or {})
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"timeout": timeout}
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def revision(path: str) -> str:
    """The commit checked out at ``path`` (a ``git worktree`` of an earlier qjaxiface), and its
    subject."""
    out = subprocess.run(
        ["git", "-C", path, "log", "-1", "--format=%h (%s)"], capture_output=True, text=True
    )
    return out.stdout.strip() or path


def machine() -> dict:
    """The CPU, Python, JAX and PennyLane a table was measured with."""
    import jax
    import pennylane as qml

    return {
        "cpu": f"{os.cpu_count()}-core CPU ({platform.machine()})",
        "python": platform.python_version(),
        "jax": jax.__version__,
        "pennylane": qml.__version__,
    }


def replace_section(page: str, heading: str, section: str) -> str:
    """``page`` with the section under ``heading`` (up to the next ``## ``) replaced by
    ``section``, which starts with that heading; appended if the page has no such section."""
    if heading not in page:
        return page.rstrip() + "\n\n" + section
    head, rest = page.split(heading, 1)
    nxt = rest.find("\n## ")
    tail = rest[nxt + 1 :] if nxt >= 0 else ""
    return head + section + ("\n" + tail if tail else "")


def save(json_path: str, data: dict) -> None:
    """Write results to ``json_path``, creating its folder."""
    path = Path(json_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))


def load_or_measure(render: bool, json_path: str, measure: Callable[[], dict]) -> dict:
    """The results: read back from ``json_path`` (``render``), or measured and saved there."""
    if render:
        return json.loads(Path(json_path).read_text())
    data = measure()
    save(json_path, data)
    return data


def publish(markdown: str, docs: str | None, heading: str) -> Path | None:
    """Print ``markdown`` and put it into the page ``docs`` (if given) under ``heading``."""
    print(markdown)
    if not docs:
        return None
    page = Path(docs)
    page.write_text(replace_section(page.read_text(), heading, markdown))
    return page


def _values(runs: list[dict], key: str) -> list[float]:
    return [r[key] for r in runs if key in r]


def cell(runs: list[dict], key: str, scale: float = 1.0, fmt: str = "{:.2f}") -> str:
    """``min (median)`` of ``key`` over a cell's runs (times ``scale``): "failed" when no run
    gave it, "-" when there were no runs."""
    values = _values(runs, key)
    if not values:
        return "failed" if runs else "-"
    best, median = min(values) * scale, statistics.median(values) * scale
    return f"{fmt.format(best)} ({fmt.format(median)})"


def ratio(a: list[dict], b: list[dict], key: str) -> str:
    """The ratio of the minima of ``key`` over runs ``a`` and ``b``, as ``"0.50x"``."""
    x, y = _values(a, key), _values(b, key)
    return f"{min(x) / min(y):.2f}x" if x and y else "-"
