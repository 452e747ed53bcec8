"""The runbook (docs/runbook.md) as a phone-friendly HTML page (served by
alert_bridge/routes/runbook.py): every heading has an id, and an alert's section's id
is its name lowercased (`#tracetracktargetdown`), which each rule's `runbook_url`
points at.

Rendered with markdown-it-py (CommonMark plus tables, raw HTML off) once per change of
the file; nothing outside our own file is ever rendered.
"""

from __future__ import annotations

import html
import re
import threading
from pathlib import Path

from markdown_it import MarkdownIt

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body{{font-family:-apple-system,system-ui,sans-serif;margin:0 auto;max-width:52rem;
padding:0 1rem 4rem;line-height:1.5;color:#1d1d1f}}
h1,h2,h3{{line-height:1.25}} h2{{border-top:1px solid #ddd;padding-top:1rem;margin-top:2rem}}
:target{{background:#fff3bf}}
pre{{background:#f4f4f5;padding:.75rem;overflow-x:auto;white-space:pre-wrap;word-break:break-word}}
code{{font-size:.9em}} table{{border-collapse:collapse;display:block;overflow-x:auto}}
td,th{{border:1px solid #ddd;padding:.3rem .5rem;vertical-align:top}}
a.h{{color:#999;text-decoration:none;margin-left:.4rem}}
</style></head><body>
{body}
</body></html>
"""


def slug(text: str) -> str:
    """GitHub's heading anchor: lowercase, punctuation dropped, spaces to hyphens. An
    alert's section heading is its name, so its anchor is the name lowercased."""
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def render(markdown: str) -> tuple[str, list[str]]:
    """(HTML page, heading ids in order)."""
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(markdown)
    ids: list[str] = []
    seen: dict[str, int] = {}
    title = "TraceTrack runbook"
    for i, tok in enumerate(tokens):
        if tok.type != "heading_open":
            continue
        text = tokens[i + 1].content
        base = slug(text)
        n = seen.get(base, 0)
        seen[base] = n + 1
        anchor = base if n == 0 else f"{base}-{n}"
        tok.attrSet("id", anchor)
        ids.append(anchor)
        if tok.tag == "h1":
            title = text
    # Each heading links to itself, for sharing a section from a phone.
    body = md.renderer.render(tokens, md.options, {})
    body = re.sub(
        r'<(h[1-6]) id="([^"]+)">(.*?)</\1>',
        lambda m: f'<{m[1]} id="{m[2]}">{m[3]}<a class="h" href="#{m[2]}">#</a></{m[1]}>',
        body,
    )
    return _PAGE.format(title=html.escape(title), body=body), ids


def advice(markdown: str, alertname: str) -> str:
    """The `Respond:` paragraph of an alert's section, as one line of plain text ("" when
    it has none): what to do, for a page that cannot link to the runbook."""
    m = re.search(rf"^## {re.escape(alertname)}\n(.*?)(?=^## |\Z)", markdown, re.M | re.S)
    if m is None:
        return ""
    for paragraph in m.group(1).split("\n\n"):
        if paragraph.startswith("Respond:"):
            return " ".join(paragraph.split())
    return ""


class Runbook:
    """The rendered runbook, re-rendered when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._page = ""
        self._ids: list[str] = []

    def page(self) -> tuple[str, list[str]]:
        """Raises OSError when the file cannot be read."""
        mtime = self.path.stat().st_mtime
        with self._lock:
            if mtime != self._mtime:
                self._page, self._ids = render(self.path.read_text(encoding="utf-8"))
                self._mtime = mtime
            return self._page, self._ids
