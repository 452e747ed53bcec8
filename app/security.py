"""Password hashing (argon2) and bearer tokens (signed JWT, HS256).

Tokens carry the user's id, role and token version, so authenticating a request needs
no database round trip; they expire after Settings.token_ttl_seconds, and die sooner
when their user is disabled, deleted, changes role or logs out (app/revocation.py).
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from common.settings import Settings

# argon2id at OWASP's recommended floor (19 MiB, 2 passes, 1 lane): ~10x cheaper than
# argon2-cffi's default profile (64 MiB, 3 passes, 4 lanes), whose ~0.2 s of CPU per login
# let a burst of 1000 logins starve every other request on a 2-core box. Hashes made with
# other parameters still verify: the parameters are stored in each hash.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified against when the user does not exist, so a missing user costs as much as a
# wrong password (no username probing by timing).
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class Principal:
    user_id: int
    username: str
    role: str
    # The user's token version when the token was issued; a token whose version is
    # behind the user's current one is revoked (app/revocation.py).
    token_version: int = 0


def secret_key(settings: Settings) -> str:
    """TRACETRACK_SECRET_KEY, or one generated once and kept under var/ so every worker
    and restart agrees on it."""
    if settings.secret_key:
        return settings.secret_key
    path: Path = settings.resolved_var_dir() / "secret_key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


class TokenError(Exception):
    pass


# Verified tokens one worker remembers (about 300 bytes each).
VERIFIED_TOKENS_KEPT = 20_000


class TokenCodec:
    def __init__(self, key: str, ttl_seconds: int) -> None:
        self._key = key
        self._ttl = ttl_seconds
        self._verified: dict[str, tuple[Principal, float]] = {}

    def issue(self, principal: Principal) -> tuple[str, int]:
        now = int(time.time())
        claims = {
            "sub": str(principal.user_id),
            "name": principal.username,
            "role": principal.role,
            "ver": principal.token_version,
            "iat": now,
            "exp": now + self._ttl,
        }
        return jwt.encode(claims, self._key, algorithm="HS256"), self._ttl

    def verify(self, token: str) -> Principal:
        # Checking a signature costs ~50-90 µs of CPU, as much as the rest of a cached
        # lookup; a user sends the same token for hours. So a token once verified is
        # remembered until its expiry (revocation is checked apart, app/revocation.py).
        known = self._verified.get(token)
        if known is not None and known[1] > time.time():
            return known[0]
        try:
            claims = jwt.decode(
                token, self._key, algorithms=["HS256"], options={"require": ["exp", "sub", "role"]}
            )
            principal = Principal(
                int(claims["sub"]),
                str(claims.get("name", "")),
                str(claims["role"]),
                # Tokens from before revocation existed carry none: version 0.
                int(claims.get("ver", 0)),
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("token expired; log in again") from exc
        except (jwt.InvalidTokenError, ValueError) as exc:
            raise TokenError("invalid token") from exc
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            self._verified.clear()  # rare: more live tokens than that in one worker
        self._verified[token] = (principal, float(claims["exp"]))
        return principal
