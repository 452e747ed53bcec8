"""Database URLs as people write them, turned into the SQLAlchemy URL our services use.

The docs, docker-compose.yml and most tools write `postgresql://…` (libpq's form) or
`postgres://…` (Heroku's); SQLAlchemy needs the driver named (`postgresql+psycopg2://…`),
else it picks a driver we do not ship. Every service that takes a URL resolves it here.
"""

from __future__ import annotations

from urllib.parse import urlsplit

DRIVER_URL_PREFIX = "postgresql+psycopg2://"
_LIBPQ_PREFIXES = ("postgresql://", "postgres://")


def sqlalchemy_url(url: str) -> str:
    """`postgresql://` and `postgres://` become `postgresql+psycopg2://`; others unchanged."""
    for prefix in _LIBPQ_PREFIXES:
        if url.startswith(prefix):
            return DRIVER_URL_PREFIX + url[len(prefix) :]
    return url


def scheme(url: str) -> str:
    """The URL's scheme (`postgresql+psycopg2`, `sqlite`, ...), '' when there is none."""
    return urlsplit(url).scheme if "://" in url else ""
