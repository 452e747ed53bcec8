"""Helpers to run the real app in tests: in-process (TestClient) or as `tracetrack app`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from app import users
from common.settings import Settings
from tooling.procs import ManagedProcess, free_port, start_tracetrack

PASSWORD = "correct-horse-battery"


def app_settings(database_url: str, var_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "var_dir": var_dir,
        "secret_key": "test-secret-key-0123456789-abcdefghij",
        "redis_url": None,
    }
    values.update(overrides)
    return Settings(**values)


def add_user(database_url: str, username: str, role: str, password: str = PASSWORD) -> int:
    return users.add_user(database_url, username, password, role)


def token(client: TestClient | httpx.Client, username: str, password: str = PASSWORD) -> str:
    r = client.post("/api/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def auth(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


def start_app_process(
    workdir: Path,
    database_url: str,
    port: int | None = None,
    workers: int = 1,
    env: dict[str, str] | None = None,
) -> tuple[ManagedProcess, int]:
    """`tracetrack app` as a subprocess on a free port; stop it with .stop()."""
    port = port or free_port()
    full_env = {
        "REDIS_URL": "",  # the developer's own Redis must not leak into a test's app
        "DATABASE_URL": database_url,
        "TRACETRACK_VAR_DIR": str(workdir),
        "TRACETRACK_SECRET_KEY": "test-secret-key-0123456789-abcdefghij",
        **(env or {}),
    }
    return start_tracetrack(
        "app", workdir / f"app-{port}.log", full_env, args=["--workers", str(workers)], port=port
    )
