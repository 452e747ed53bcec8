"""Schemathesis over the app's /openapi.json: every operation, with and without a token.

No 5xx (a 500 pages on-call: no client, authenticated or not, may raise the error
rate) and no schema violation: every status, header and body the app answers is the
one its OpenAPI document promises. The app runs as `tracetrack app` with the real
PostgreSQL, Prometheus and Alertmanager behind /analytics. Fixed seed, bounded
examples; `make fuzz` (docs/api.md) runs the same with a new seed and more examples.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fuzz.runner import run_schemathesis
from tests.support.livestack import LiveStack, start_live_stack
from tooling.pgserver import PostgresServer

SEED = int(os.environ.get("FUZZ_SEED", "20261130"))
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
SECRET = "test-secret-key-0123456789-abcdefghij"  # tests.support.appkit's


@pytest.fixture(scope="module")
def stack(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    url = postgres.create_database(f"fuzz_{uuid.uuid4().hex[:8]}")
    live = start_live_stack(tmp_path_factory.mktemp("fuzz-stack"), url)
    try:
        yield live
    finally:
        live.stop()


def operations(stack: LiveStack) -> set[str]:
    paths = httpx.get(f"{stack.app_url}/openapi.json", timeout=30).json()["paths"]
    return {f"{m.upper()} {p}" for p, item in paths.items() for m in item}


@pytest.mark.timeout(900)
@pytest.mark.parametrize("with_token", [True, False], ids=["admin-token", "no-token"])
def test_fuzzing_finds_no_5xx_and_no_schema_violation(
    stack: LiveStack, tmp_path: Path, with_token: bool
) -> None:
    run = run_schemathesis(
        f"{stack.app_url}/openapi.json",
        tmp_path / "report",
        seed=SEED,
        max_examples=EXAMPLES,
        hooks="tests.fuzz.admin_auth" if with_token else None,
        env={
            "FUZZ_DATABASE_URL": stack.database_url,
            "FUZZ_ADMIN": "admin",
            "TRACETRACK_SECRET_KEY": SECRET,
        },
    )
    print(f"\nschemathesis seed {SEED}, {EXAMPLES} examples: {run.summary()}")
    assert run.server_errors == 0, run.output[-20000:]
    assert run.returncode == 0, run.output[-20000:]
    assert run.operations == operations(stack)  # every operation was exercised
    if with_token:
        assert run.statuses[200] and run.statuses[201]  # the token really worked
    else:
        assert not run.statuses.get(201)  # nothing was created without one
