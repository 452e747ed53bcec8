"""Schemathesis over the alert bridge's webhook endpoint: Alertmanager-shaped payloads,
schema-violating ones (wrong types, missing fields, NUL, huge strings) and unknown
severities, with and without the bearer token.

No 5xx (a 503 makes Alertmanager retry a payload that may never store; a 500 is a
bug) and every answer as documented. The real bridge, its SQLite outbox and delivery
workers run on a real port; the document is the bridge app's own (`app.openapi()`).
tests/test_bridge_hostile.py holds the hand-made hostile cases (deep nesting, huge
integers, unpaired surrogates).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fuzz.runner import run_schemathesis
from tests.support.bridgekit import (
    AUTH,
    InProcessBridge,
    bridge_env,
    recipients_for,
    write_alert_config,
)

SEED = int(os.environ.get("FUZZ_SEED", "20261130"))
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
WEBHOOK = "POST /alertmanager/{severity}"


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessBridge]:
    tmp = tmp_path_factory.mktemp("fuzz-bridge")
    cfg = write_alert_config(tmp / "alert_config.py", recipients_for())
    with InProcessBridge(bridge_env(tmp, cfg)) as b:
        yield b


@pytest.mark.timeout(900)
@pytest.mark.parametrize("with_token", [True, False], ids=["token", "no-token"])
def test_fuzzing_the_webhook_finds_no_5xx_and_no_schema_violation(
    bridge: InProcessBridge, tmp_path: Path, with_token: bool
) -> None:
    spec = tmp_path / "bridge-openapi.json"
    app: Any = bridge.server.config.app  # uvicorn types it as any ASGI app
    spec.write_text(json.dumps(app.openapi()))
    run = run_schemathesis(
        str(spec),
        tmp_path / "report",
        seed=SEED,
        max_examples=EXAMPLES,
        base_url=bridge.url,
        extra=[
            "--include-path-regex",
            "^/alertmanager/",
            *(["--header", f"Authorization: {AUTH['Authorization']}"] if with_token else []),
        ],
    )
    print(f"\nschemathesis seed {SEED}, {EXAMPLES} examples: {run.summary()}")
    assert run.server_errors == 0, run.output[-20000:]
    assert run.returncode == 0, run.output[-20000:]
    assert run.operations == {WEBHOOK}
    if with_token:
        assert run.statuses[200] and run.statuses[400]  # payloads stored, and refused
    else:
        assert not run.statuses.get(200)
    assert bridge.http.get("/readyz").status_code == 200  # and the bridge is still fine
