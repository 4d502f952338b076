"""Replace one generated section of a Markdown page: shared by the benchmark scripts."""

from __future__ import annotations


def replace_section(page: str, heading: str, section: str) -> str:
    """``page`` with the section under ``heading`` (up to the next ``## ``) replaced by
    ``section``, which starts with that heading; appended if the page has no such section."""
    if heading not in page:
        return page.rstrip() + "\n\n" + section
    head, rest = page.split(heading, 1)
    nxt = rest.find("\n## ")
    tail = rest[nxt + 1 :] if nxt >= 0 else ""
    return head + section + ("\n" + tail if tail else "")
