"""The runbook is served as HTML by the bridge: every rule's runbook_url opens its section."""

from __future__ import annotations

import os
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from alert_bridge.config import check_settings
from tests.support.bridgekit import InProcessBridge, bridge_env, write_alert_config
from tooling import stackconfig


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.viewport = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag == "meta" and a.get("name") == "viewport":
            self.viewport = True


def _bridge(tmp_path: Path, **env: str) -> InProcessBridge:
    cfg = write_alert_config(tmp_path / "alert_config.py", {"email": {"critical": ["a@b.co"]}})
    return InProcessBridge(bridge_env(tmp_path, cfg, **env))


def test_every_rules_runbook_link_opens_its_section_on_the_bridge(tmp_path: Path) -> None:
    public = "https://oncall.example.com/tt"
    rules = yaml.safe_load(stackconfig.render_rules(public_url=public))
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    with _bridge(tmp_path, TRACETRACK_PUBLIC_URL=public + "/") as b:
        resp = b.http.get("/runbook")
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/html")
        page = _Ids()
        page.feed(resp.text)
        assert page.viewport, "no viewport meta: the page would not fit a phone"
        for rule in alerts:
            url = urlsplit(rule["annotations"]["runbook_url"])
            assert f"{url.scheme}://{url.netloc}{url.path}" == f"{public}/runbook"
            assert url.fragment in page.ids, rule["alert"]
        # The short form redirects to the section, on the public address.
        short = b.http.get("/runbook/TraceTrackTargetDown")
        assert short.status_code == 302
        assert short.headers["location"] == f"{public}/runbook#tracetracktargetdown"
        missing = b.http.get("/runbook/NoSuchAlert")
        assert missing.status_code == 404 and "NoSuchAlert" in missing.json()["error"]
        huge = b.http.get("/runbook/" + "A" * 20_000)  # named, not echoed whole
        assert huge.status_code == 404 and len(huge.json()["error"]) < 200
        # Markdown cannot inject markup: raw HTML in the file is escaped.
        assert "<script" not in resp.text


def test_a_missing_runbook_file_is_a_clear_503(tmp_path: Path) -> None:
    with _bridge(tmp_path, BRIDGE_RUNBOOK_FILE=str(tmp_path / "nope.md")) as b:
        resp = b.http.get("/runbook")
        assert resp.status_code == 503
        assert "nope.md" in resp.json()["error"]
    # ... and the bridge says so when it starts (and check-config), not at the first click.
    _errors, warnings = check_settings(b.settings)
    assert [w for w in warnings if w.startswith(f"BRIDGE_RUNBOOK_FILE: {tmp_path / 'nope.md'}")]


def test_the_runbook_follows_edits_of_the_file(tmp_path: Path) -> None:
    book = tmp_path / "runbook.md"
    book.write_text("# Runbook\n\n## FirstAlert\n\ntext <script>x</script>\n")
    with _bridge(tmp_path, BRIDGE_RUNBOOK_FILE=str(book)) as b:
        first = b.http.get("/runbook").text
        assert 'id="firstalert"' in first and "<script>" not in first
        book.write_text("# Runbook\n\n## SecondAlert\n")
        os.utime(book, (1, 1))  # a different mtime even within the same clock tick
        assert 'id="secondalert"' in b.http.get("/runbook").text
