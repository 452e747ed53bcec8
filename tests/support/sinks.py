"""Local stand-ins for the bridge's outside world, each with fault injection.

- `SmtpSink`: a real SMTP server (aiosmtpd), optionally with STARTTLS/implicit TLS
  and login; it can be stopped and restarted on the same port ("down for a while").
- `TwilioSink`: an HTTP server speaking Twilio's Messages API
  (POST /2010-04-01/Accounts/{sid}/Messages.json, basic auth, Twilio's error JSON),
  reached through the real `twilio` SDK via TWILIO_API_BASE_URL.
- `WebhookSink`: accepts Slack/Discord/JSON webhook posts on any path.

Every sink has a `Faults` script: fail the next N requests with a code, fail until
told otherwise, or hold requests (block them unrecorded) until released.
Only requests that succeed are recorded in `received`.
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import json
import logging
import re
import ssl
import subprocess
import threading
import time
import uuid
import warnings
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs

import pytest

from tooling.procs import free_port

# Tests log in over plain SMTP on loopback on purpose; aiosmtpd warns on every session.
warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
logging.getLogger("mail.log").setLevel(logging.ERROR)


@dataclass
class Action:
    kind: str  # ok | fail | hold
    code: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class Faults:
    """What the next request to a sink gets. Thread-safe; tests drive it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._script: deque[Action] = deque()
        self._always: Action | None = None
        self._holding = False
        self._released = threading.Event()
        self._discard = False
        self.held = 0

    def fail_next(self, n: int, code: int, **extra: Any) -> None:
        with self._lock:
            self._script.extend(Action("fail", code, extra) for _ in range(n))

    def fail_always(self, code: int, **extra: Any) -> None:
        with self._lock:
            self._always = Action("fail", code, extra)

    def recover(self) -> None:
        with self._lock:
            self._always = None
            self._script.clear()

    def hold(self) -> None:
        """From now on requests block (unrecorded) until `release`."""
        with self._lock:
            self._holding = True
            self._released.clear()

    def release(self, discard: bool) -> None:
        """Let held requests go: discard=True drops them (as if never received)."""
        with self._lock:
            self._holding = False
            self._discard = discard
            self._released.set()

    def take(self) -> Action:
        with self._lock:
            if self._holding:
                self.held += 1
                return Action("hold")
            if self._script:
                return self._script.popleft()
            return self._always or Action("ok")

    def wait_released(self, timeout: float = 120.0) -> bool:
        """Blocks a held request; True when it should now be dropped."""
        self._released.wait(timeout)
        return self._discard

    async def wait_released_async(self, timeout: float = 120.0) -> bool:
        deadline = time.monotonic() + timeout
        while not self._released.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return self._discard


# --- HTTP sinks --------------------------------------------------------------------


@dataclass
class HttpRequest:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


class HttpSink:
    """A threaded HTTP server on a free port; subclasses answer `respond`."""

    def __init__(self) -> None:
        self.faults = Faults()
        self.received: list[HttpRequest] = []
        self.attempts = 0
        self.attempt_times: list[tuple[str, float]] = []  # (path, time) of every request
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes; with Nagle on, the client's
            # delayed ACK adds ~40 ms to every response.
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                req = HttpRequest(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.time()
                )
                status, headers, payload = sink._handle(req)
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.faults.release(discard=True)
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, req: HttpRequest) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self.attempts += 1
            self.attempt_times.append((req.path, req.at))
        action = self.faults.take()
        if action.kind == "hold" and self.faults.wait_released():
            return 503, {}, b'{"error":"dropped while held"}'
        if action.kind == "fail":
            return self.failure(action)
        status, headers, payload = self.respond(req)
        if 200 <= status < 300:
            with self._lock:
                self.received.append(req)
        return status, headers, payload

    def failure(self, action: Action) -> tuple[int, dict[str, str], bytes]:
        headers = {}
        if "retry_after" in action.extra:
            headers["Retry-After"] = str(action.extra["retry_after"])
        return action.code, headers, json.dumps({"error": f"injected {action.code}"}).encode()

    def respond(self, req: HttpRequest) -> tuple[int, dict[str, str], bytes]:
        return 200, {}, b"ok"

    def count(self) -> int:
        with self._lock:
            return len(self.received)


class WebhookSink(HttpSink):
    """Slack, Discord and JSON receivers: use `url_for('slack/...')` as the hook URL."""

    def url_for(self, path: str) -> str:
        return f"{self.url}/{path.lstrip('/')}"

    def bodies(self, path: str | None = None) -> list[Any]:
        with self._lock:
            return [r.json() for r in self.received if path is None or r.path == f"/{path}"]

    def respond(self, req: HttpRequest) -> tuple[int, dict[str, str], bytes]:
        try:
            json.loads(req.body)
        except ValueError:
            return 400, {}, b'{"error":"invalid json"}'
        # Discord answers 204 to a webhook without ?wait=true; Slack answers "ok".
        return (204, {}, b"") if req.path.startswith("/discord") else (200, {}, b"ok")


E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


class TwilioSink(HttpSink):
    """Twilio's Messages API, as the SDK sees it: basic auth with the account SID and
    token, form-encoded To/From/Body, 201 with the message resource, error JSON
    with Twilio's codes (21211 invalid 'To', 20003 auth, 20429 rate limited)."""

    def __init__(self, account_sid: str = "AC" + "0" * 32, auth_token: str = "t" * 32) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token

    def messages(self) -> list[dict[str, str]]:
        with self._lock:
            return [{k: v[0] for k, v in parse_qs(r.body.decode()).items()} for r in self.received]

    @staticmethod
    def _error(status: int, code: int, message: str) -> tuple[int, dict[str, str], bytes]:
        return (
            status,
            {},
            json.dumps(
                {
                    "code": code,
                    "message": message,
                    "status": status,
                    "more_info": f"https://www.twilio.com/docs/errors/{code}",
                }
            ).encode(),
        )

    def failure(self, action: Action) -> tuple[int, dict[str, str], bytes]:
        codes = {429: 20429, 500: 20500, 503: 20503}
        return self._error(
            action.code,
            action.extra.get("code", codes.get(action.code, 20001)),
            f"injected {action.code}",
        )

    def respond(self, req: HttpRequest) -> tuple[int, dict[str, str], bytes]:
        expected_path = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        if req.path != expected_path:
            return self._error(404, 20404, f"The requested resource {req.path} was not found")
        auth = req.headers.get("authorization", "")
        want = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if auth != f"Basic {want}":
            return self._error(401, 20003, "Authenticate")
        form = {k: v[0] for k, v in parse_qs(req.body.decode()).items()}
        if not E164.match(form.get("To", "")):
            return self._error(
                400, 21211, f"The 'To' number {form.get('To')} is not a valid phone number."
            )
        if form.get("To", "").startswith("+1999"):  # a number Twilio knows is unreachable
            return self._error(400, 21614, "'To' number is not a valid mobile number")
        if not form.get("Body"):
            return self._error(400, 21602, "Message body is required.")
        sid = "SM" + uuid.uuid4().hex
        return (
            201,
            {},
            json.dumps(
                {
                    "sid": sid,
                    "account_sid": self.account_sid,
                    "to": form["To"],
                    "from": form.get("From"),
                    "body": form["Body"],
                    "status": "queued",
                    "num_segments": "1",
                    "direction": "outbound-api",
                    "api_version": "2010-04-01",
                    "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
                }
            ).encode(),
        )


# --- SMTP --------------------------------------------------------------------------


@dataclass
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    at: float


def make_tls_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the test trusts it via SMTP_CA_FILE)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


class _SmtpHandler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        action = self.sink.rcpt_faults.take()
        if action.kind == "fail":
            return f"{action.code} {'4.2.1' if action.code < 500 else '5.1.1'} injected"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.sink.attempts += 1
        action = self.sink.faults.take()
        if action.kind == "hold" and await self.sink.faults.wait_released_async():
            return "421 4.3.0 dropped while held"
        if action.kind == "fail":
            return f"{action.code} {'4.3.0' if action.code < 500 else '5.6.0'} injected"
        msg = email.message_from_bytes(
            envelope.original_content or envelope.content, policy=email.policy.default
        )
        with self.sink.lock:
            self.sink.received.append(
                Mail(envelope.mail_from, list(envelope.rcpt_tos), msg, time.time())
            )
        return "250 OK queued"


class SmtpSink:
    """A real aiosmtpd server. `security`: none | starttls | ssl; with `login`,
    AUTH is required and only that (user, password) is accepted."""

    def __init__(
        self,
        tls_dir: Path | None = None,
        security: str = "none",
        login: tuple[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.security = security
        self.login = login
        self.faults = Faults()  # at end of DATA
        self.rcpt_faults = Faults()  # per recipient
        self.received: list[Mail] = []
        self.attempts = 0
        self.lock = threading.Lock()
        self.cert: Path | None = None
        self._ctx: ssl.SSLContext | None = None
        if security != "none":
            assert tls_dir is not None, "TLS needs a directory for the certificate"
            self.cert, key = make_tls_cert(tls_dir)
            self._ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._ctx.load_cert_chain(self.cert, key)
        self.controller: Any = None

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult

        ok = (
            self.login is not None
            and (auth_data.login.decode(), auth_data.password.decode()) == self.login
        )
        return AuthResult(success=ok, handled=False)

    def start(self) -> SmtpSink:
        from aiosmtpd.controller import Controller

        kwargs: dict[str, Any] = {"hostname": "127.0.0.1", "port": self.port, "ready_timeout": 10}
        if self.security == "ssl":
            kwargs["ssl_context"] = self._ctx
        elif self.security == "starttls":
            kwargs["tls_context"] = self._ctx
            kwargs["require_starttls"] = True
        if self.login is not None:
            kwargs.update(
                authenticator=self._authenticate,
                auth_required=True,
                # aiosmtpd only counts STARTTLS as TLS; implicit TLS is TLS too.
                auth_require_tls=self.security == "starttls",
            )
        self.controller = Controller(_SmtpHandler(self), **kwargs)
        self.controller.start()
        return self

    def stop(self) -> None:
        self.faults.release(discard=True)
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def down_for(self, seconds: float) -> threading.Thread:
        """Stop now; listen again on the same port after `seconds`."""
        self.stop()

        def later() -> None:
            time.sleep(seconds)
            self.start()

        t = threading.Thread(target=later, daemon=True)
        t.start()
        return t

    def messages(self, to: str | None = None) -> list[Mail]:
        with self.lock:
            return [m for m in self.received if to is None or to in m.rcpt_tos]

    def count(self) -> int:
        with self.lock:
            return len(self.received)


# --- fixtures ----------------------------------------------------------------------


@pytest.fixture()
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture()
def make_smtp_sink(tmp_path: Path) -> Iterator[Any]:
    """Build SMTP sinks with TLS and/or login: make_smtp_sink(security=..., login=...)."""
    made: list[SmtpSink] = []

    def make(security: str = "none", login: tuple[str, str] | None = None) -> SmtpSink:
        sink = SmtpSink(tmp_path / f"tls{len(made)}", security, login).start()
        made.append(sink)
        return sink

    try:
        yield make
    finally:
        for sink in made:
            sink.stop()


@pytest.fixture()
def twilio_sink() -> Iterator[TwilioSink]:
    sink = TwilioSink().start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture()
def webhook_sink() -> Iterator[WebhookSink]:
    sink = WebhookSink().start()
    try:
        yield sink
    finally:
        sink.stop()
