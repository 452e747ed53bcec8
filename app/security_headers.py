"""Security headers on every answer (pure ASGI: a header list appended at response start).

- `X-Content-Type-Options: nosniff` everywhere: browsers take our JSON for JSON.
- `Cache-Control: no-store` unless the route chose its own: answers carry bag, bill
  and user data, and no shared cache or browser disk should keep them.
- `Content-Security-Policy` with `frame-ancestors 'none'` (plus `X-Frame-Options:
  DENY` for older browsers) and `Referrer-Policy: no-referrer`, so the /analytics
  pages cannot be framed (clickjacking) and links out of them leak no URL. The HTML
  pages are server-rendered with inline styles and no script; JSON gets the
  strictest policy, since nothing in it should ever run.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HTML_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
OTHER_CSP = "default-src 'none'; frame-ancestors 'none'"

_ALWAYS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]
_NO_STORE = (b"cache-control", b"no-store")


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = with_security_headers(list(message.get("headers", ())))
            await send(message)

        await self.app(scope, receive, send_with_headers)


def with_security_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    names = {name.lower() for name, _ in headers}
    html = any(
        name.lower() == b"content-type" and value.startswith(b"text/html")
        for name, value in headers
    )
    added = [h for h in _ALWAYS if h[0] not in names]
    if b"content-security-policy" not in names:
        added.append((b"content-security-policy", (HTML_CSP if html else OTHER_CSP).encode()))
    if b"cache-control" not in names:
        added.append(_NO_STORE)
    return headers + added
