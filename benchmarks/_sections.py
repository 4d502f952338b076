"""Saving results and regenerating one section of a Markdown page: shared by the benchmark
scripts."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path


def replace_section(page: str, heading: str, section: str) -> str:
    """``page`` with the section under ``heading`` (up to the next ``## ``) replaced by
    ``section``, which starts with that heading; appended if the page has no such section."""
    if heading not in page:
        return page.rstrip() + "\n\n" + section
    head, rest = page.split(heading, 1)
    nxt = rest.find("\n## ")
    tail = rest[nxt + 1 :] if nxt >= 0 else ""
    return head + section + ("\n" + tail if tail else "")


def load_or_measure(render: bool, json_path: str, measure: Callable[[], dict]) -> dict:
    """The results: read back from ``json_path`` (``render``), or measured and saved there."""
    path = Path(json_path)
    if render:
        return json.loads(path.read_text())
    data = measure()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))
    return data


def publish(markdown: str, docs: str | None, heading: str) -> Path | None:
    """Print ``markdown`` and put it into the page ``docs`` (if given) under ``heading``."""
    print(markdown)
    if not docs:
        return None
    page = Path(docs)
    page.write_text(replace_section(page.read_text(), heading, markdown))
    return page
