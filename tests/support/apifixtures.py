"""Fixtures for tests of the JSON API: the real app on a fresh database, in process,
with one user per role. tests/conftest.py registers them for every module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.support.appkit import add_user, app_settings, auth, token

USERS = (("root", "admin"), ("dana", "dispatcher"), ("bill", "biller"))


@pytest.fixture()
def client(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    for name, role in USERS:
        add_user(database_url, name, role)
    app = create_app(app_settings(database_url, tmp_path))
    with TestClient(app) as c:
        yield c


@pytest.fixture()
def admin(client: TestClient) -> dict[str, str]:
    return auth(token(client, "root"))


@pytest.fixture()
def dispatcher(client: TestClient) -> dict[str, str]:
    return auth(token(client, "dana"))


@pytest.fixture()
def biller(client: TestClient) -> dict[str, str]:
    return auth(token(client, "bill"))
