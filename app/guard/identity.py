"""Who the client is: its IP address, and the user its bearer token names.

The IP is the socket's peer, or, behind `TRUSTED_PROXY_HOPS` reverse proxies, the
address the outermost trusted proxy appended to X-Forwarded-For. Anything a client
writes into that header itself sits further left and is never read, so a forged
header buys no fresh rate-limit budget and escapes no block.
"""

from __future__ import annotations

import ipaddress
import time

from starlette.types import Scope

from app.security import TokenCodec, TokenError

UNKNOWN_IP = "unknown"
_XFF = b"x-forwarded-for"
_AUTHORIZATION = b"authorization"


def client_ip(scope: Scope, trusted_hops: int) -> str:
    peer = scope.get("client")
    ip = peer[0] if peer else UNKNOWN_IP
    if trusted_hops <= 0:
        return ip
    # Proxies may each add a header line or extend one; together they are one list.
    hops = [
        part.strip()
        for name, value in scope.get("headers", ())
        if name == _XFF
        for part in value.decode("latin-1").split(",")
    ]
    # With N trusted proxies, the Nth entry from the right was written by the
    # outermost one: the client it saw. Fewer entries: the request did not come
    # through the proxies, and the socket's peer is all we know.
    if len(hops) < trusted_hops:
        return ip
    candidate = hops[-trusted_hops]
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return ip
    # A proxy writes the peer it saw, never a zone ("fe80::1%eth0"): a zone of any
    # length is a client writing the header itself past a proxy that is not there.
    return ip if "%" in candidate else str(address)


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == _AUTHORIZATION:
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token else None
    return None


class TokenUsers:
    """Verified token -> user id, remembered for `remember_seconds`.

    Used only to choose whose rate-limit budget a request spends; authorization
    stays with the routes' own dependency. A token that does not verify (forged,
    expired) gives no user: such requests spend their IP's budget. Remembering
    saves a signature check per request; re-checking every few minutes keeps an
    expired token from naming its user for long.
    """

    def __init__(
        self, tokens: TokenCodec, remember_seconds: float = 300.0, max_entries: int = 50_000
    ) -> None:
        self._tokens = tokens
        self._remember = remember_seconds
        self._max = max_entries
        self._known: dict[str, tuple[int, str, float]] = {}

    def lookup(self, token: str, now: float | None = None) -> tuple[int, str] | None:
        """(user id, user name) of a valid token, else None."""
        now = time.time() if now is None else now
        known = self._known.get(token)
        if known is not None and known[2] > now:
            return known[0], known[1]
        try:
            principal = self._tokens.verify(token)
        except TokenError:
            return None
        if len(self._known) >= self._max:
            self._known.clear()  # cheaper than LRU bookkeeping; refills at one verify each
        self._known[token] = (principal.user_id, principal.username, now + self._remember)
        return principal.user_id, principal.username
