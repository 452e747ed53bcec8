"""Debian's headless Chromium driven over the DevTools protocol (a real browser:
navigation, cookies, forms, layout, screenshots), started by PID in a temp profile."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

from tooling.procs import ManagedProcess, require_binary, wait_until

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
]


class Browser:
    def __init__(self, workdir: Path, width: int = 1280, height: int = 1400) -> None:
        self.profile = workdir / "chromium-profile"
        self.profile.mkdir(parents=True, exist_ok=True)
        self.proc = ManagedProcess(
            "chromium",
            [
                require_binary("chromium"),
                *FLAGS,
                f"--user-data-dir={self.profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            workdir / "chromium.log",
        )
        self.ws: ClientConnection | None = None
        self._connection = contextlib.ExitStack()
        self._ids = itertools.count(1)

    def start(self) -> Browser:
        self.proc.start()
        port_file = self.profile / "DevToolsActivePort"
        self.proc.wait_ready(
            lambda: port_file.exists() and port_file.read_text().strip() != "", timeout=60
        )
        port = int(port_file.read_text().splitlines()[0])
        pages: list[dict[str, Any]] = []

        def page_target() -> bool:
            pages[:] = [
                t
                for t in httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=5).json()
                if t["type"] == "page"
            ]
            return bool(pages)

        wait_until(page_target, 60, "a Chromium page target")
        # Entered as the context manager websockets asks for; stop() leaves it.
        self.ws = self._connection.enter_context(
            connect(pages[0]["webSocketDebuggerUrl"], max_size=64 * 2**20, open_timeout=60)
        )
        self.call("Page.enable")
        self.call("Runtime.enable")
        return self

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        assert self.ws is not None
        msg_id = next(self._ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        msg = self._receive(lambda m: m.get("id") == msg_id, f"the answer to {method}")
        if "error" in msg:
            raise RuntimeError(f"{method}: {msg['error']}")
        return dict(msg.get("result", {}))

    def wait_event(self, method: str, timeout: float = 60) -> dict[str, Any]:
        return dict(
            self._receive(lambda m: m.get("method") == method, method, timeout).get("params", {})
        )

    def _receive(
        self, wanted: Callable[[dict[str, Any]], bool], what: str, timeout: float = 60
    ) -> dict[str, Any]:
        """The first message `wanted` accepts, within one deadline however many other
        events Chromium sends meanwhile; past it, TimeoutError naming the last ones."""
        assert self.ws is not None
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg: dict[str, Any] = json.loads(self.ws.recv(timeout=left))
            except TimeoutError:
                break
            if wanted(msg):
                return msg
            seen.append(str(msg.get("method") or f"answer {msg.get('id')}"))
        raise TimeoutError(f"no {what} from Chromium within {timeout:g}s; last: {seen[-5:]}")

    def navigate(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def submit_form(self, fields: dict[str, str]) -> None:
        """Type into the form's inputs and submit it, waiting for the next page."""
        script = "".join(
            f"document.querySelector('input[name={name}]').value = {json.dumps(v)};"
            for name, v in fields.items()
        )
        self.evaluate(script + "document.querySelector('form').submit(); true")
        self.wait_event("Page.loadEventFired")

    def url(self) -> str:
        return str(self.evaluate("location.href"))

    def dom(self) -> str:
        return str(self.evaluate("document.documentElement.outerHTML"))

    def screenshot(self) -> bytes:
        return base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])

    def stop(self) -> None:
        if self.ws is not None:
            self._connection.close()
        self.proc.stop()
