"""Every `tracetrack` command answers bad input with one clear line and a non-zero exit,
never a traceback: command lines that are not UTF-8 text (or carry a NUL), numbers out of
range, absurd durations, unknown users, an unreachable database."""

from __future__ import annotations

import argparse
import getpass
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.guard.routes import parse_duration
from app.main import create_app
from tests.support.appkit import add_user, app_settings, auth, token
from tooling.procs import TRACETRACK
from tracetrack import cli

NOT_UTF8 = "bad \udcff\udcfe"  # how Python hands over the bytes b"bad \xff\xfe" of argv


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`tracetrack argv` in this process: (exit status, stderr)."""
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse refusing an option
        code = exc.code if isinstance(exc.code, int) else 1
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return code, err


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, ...]]:
    """Every runnable command path: ("security", "block"), ("app",), ..."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs or path and parser.get_default("func"):
        yield path
    for action in subs:
        for name, child in action.choices.items():
            yield from commands(child, (*path, name))


ALL = sorted(set(commands(cli.build_parser())))


def test_the_sweep_sees_every_command() -> None:
    assert {("security", "block"), ("user", "disable"), ("report",), ("app",), ("up",)} <= set(ALL)
    assert len(ALL) >= 18, ALL


@pytest.mark.parametrize("path", ALL, ids=" ".join)
def test_every_command_refuses_an_argument_that_is_not_utf8(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run([*path, "--x", NOT_UTF8], capsys)
    assert code == 2
    assert err.strip() == "tracetrack: error: --x: b'bad \\xff\\xfe' is not valid UTF-8 text"


@pytest.mark.parametrize("path", ALL, ids=" ".join)
def test_every_command_refuses_a_nul_character(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run([*path, "a\x00b"], capsys)
    assert code == 2 and "contains a NUL character" in err, err


def test_security_block_with_a_reason_that_is_not_utf8_names_the_option() -> None:
    """The reported crash, as a shell runs it: the raw bytes on the command line."""
    result = subprocess.run(
        [TRACETRACK.encode(), b"security", b"block", b"203.0.113.7", b"--reason", b"x \xff\xfe"],
        capture_output=True,
        timeout=60,
        env={**os.environ, "DATABASE_URL": "postgresql://127.0.0.1:1/unused"},
    )
    err = result.stderr.decode()
    assert result.returncode == 2 and "Traceback" not in err, err
    assert err.strip() == "tracetrack: error: --reason: b'x \\xff\\xfe' is not valid UTF-8 text"


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["app", "--port", "99999"], "--port"),
        (["app", "--port", "0"], "--port"),
        (["app", "--workers", "0"], "--workers"),
        (["up", "--workers", "-2"], "--workers"),
        (["exporter", "--port", "70000"], "--port"),
        (["bridge", "--port", "-1"], "--port"),
        (["seed", "--bags", "-5"], "--bags"),
        (["seed", "--bags", "5", "--users", "-3"], "--users"),
        (["seed", "--bags", "5", "--scans-per-bag", "nan"], "--scans-per-bag"),
        (["seed", "--bags", "5", "--scans-per-bag", "inf"], "--scans-per-bag"),
        (["seed", "--bags", "5", "--scans-per-bag", "-1"], "--scans-per-bag"),
        (["seed", "--bags", "lots"], "--bags"),
        (["security", "events", "--limit", "0"], "--limit"),
        (["security", "events", "--limit", "99999999999999999999999"], "--limit"),
    ],
)
def test_numbers_out_of_range_are_refused_before_any_work(
    argv: list[str], option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run(argv, capsys)
    assert code == 2
    assert f"argument {option}: " in err and ("out of range" in err or "not a" in err), err


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (
            ["security", "block", "203.0.113.7", "--for", "99999999999999d", "--reason", "x"],
            "--for",
        ),
        (["security", "events", "--since", "99999999999999d"], "--since"),
        (["security", "events", "--since", "0s"], "--since"),
    ],
)
def test_absurd_durations_are_refused(
    argv: list[str], option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run(argv, capsys)
    assert code == 2
    assert err.startswith(f"error: {option}: ") and "between 1 s and 10 years" in err, err


def test_parse_duration_past_what_timedelta_holds_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="between 1 s and 10 years"):
        parse_duration("99999999999999d")


def test_the_security_api_answers_an_absurd_duration_with_422(
    database_url: str, tmp_path: Path
) -> None:
    """The same parser behind the admin API: was an OverflowError, a 500."""
    add_user(database_url, "root", "admin")
    with TestClient(create_app(app_settings(database_url, tmp_path))) as c:
        admin = auth(token(c, "root"))
        r = c.get("/analytics/api/security", params={"since": "99999999999999d"}, headers=admin)
        assert r.status_code == 422, r.text
        r = c.post(
            "/api/security/blocks",
            json={"network": "203.0.113.7", "for": "99999999999999d", "reason": "x"},
            headers=admin,
        )
        assert r.status_code == 422, r.text


def test_unknown_users(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("REDIS_URL", raising=False)
    code, err = run(["user", "disable", "nobody-here"], capsys)
    assert code == 1 and err.strip() == "error: no user named 'nobody-here'"
    code, err = run(["user", "enable", "nobody-here"], capsys)
    assert code == 1 and err.strip() == "error: no user named 'nobody-here'"
    code, err = run(["security", "unlock", "nobody-here"], capsys)
    assert code == 2 and "REDIS_URL is not set" in err


def test_a_password_on_stdin_that_is_not_utf8(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"long-password-\xff\n")))
    code, err = run(["user", "add", "alice", "--role", "admin", "--password-stdin"], capsys)
    assert code == 2 and err.strip() == "error: password: standard input is not valid UTF-8 text"


def test_an_unreachable_database_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://tt@127.0.0.1:1/nowhere")
    code, err = run(["user", "disable", "bob"], capsys)
    lines = err.strip().splitlines()
    assert code == 1, err
    assert lines[0].startswith("tracetrack user: error: database: ") and "127.0.0.1" in lines[0]
    assert lines[1:] == ["(TRACETRACK_DEBUG=1 shows where it failed)"]


def test_a_setting_out_of_range_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("APP_WORKERS", "-1")
    code, err = run(["app"], capsys)
    assert code == 1 and "APP_WORKERS: " in err, err


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("APP_PORT", "70000"),
        ("TOKEN_TTL_SECONDS", "-1"),
        ("CACHE_MAX_ENTRIES", "-5"),
        ("CACHE_WARM_ENTRIES", "-1"),
        ("TOKEN_STATE_TTL_SECONDS", "inf"),
        ("DATABASE_URL", "mysql://tt:s3cret-pw@db/tt"),
        ("DATABASE_URL", "postgresql://tt:s3cret-pw@db:notaport/tt"),
        ("REDIS_URL", "memcached://:s3cret-pw@cache:11211"),
        ("AUTO_BLOCK_EXEMPT", "127.0.0.0/8,10.0.0.1/8"),
        ("RATE_LIMIT_LOGIN", "0/minute"),  # every login refused, forever
        ("DB_STATEMENT_TIMEOUT_MS", "99999999999"),  # every connection refused
        ("TRACETRACK_SECRET_KEY", "s3cret"),  # tokens signed with it are guessed offline
        ("TRACETRACK_TIMEZONE", "Mars/Olympus"),  # was checked by the exporter and reports only
    ],
)
@pytest.mark.parametrize(
    "argv",
    [["user", "disable", "bob"], ["exporter"], ["report", "daily"], ["bridge", "check-config"]],
    ids=" ".join,
)
def test_a_bad_setting_is_one_line_naming_the_variable_and_never_its_value(
    var: str,
    value: str,
    argv: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """Refused before any work: not a traceback deep inside a worker, nor a driver's
    error that names neither the variable nor the problem (a URL may carry a password)."""
    monkeypatch.setenv("TRACETRACK_VAR_DIR", str(tmp_path))
    monkeypatch.setenv(var, value)
    code, err = run(argv, capsys)
    assert code != 0, err
    assert f"{var}: " in err.splitlines()[0], err
    assert "s3cret" not in err and "input_value" not in err, err


@pytest.mark.parametrize("command", ["app", "bridge"])
def test_a_listen_address_that_does_not_resolve_is_named(
    command: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """uvicorn said only '[Errno -2] Name or service not known' (exit 3)."""
    from tooling.checkout import ROOT

    monkeypatch.setenv("TRACETRACK_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("ALERT_CONFIG_FILE", str(ROOT / "alert_config.py"))
    code, err = run([command, "--host", "999.1.1.1", "--port", "18999"], capsys)
    assert code == 2 and "cannot listen on 999.1.1.1:18999: " in err, err
    assert "(--host or TRACETRACK_HOST)" in err


def test_an_infinite_scrape_timeout_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """It overflowed every collector's socket timeout at the first scrape."""
    monkeypatch.setenv("TRACETRACK_EXPORTER_SCRAPE_TIMEOUT", "inf")
    code, err = run(["exporter"], capsys)
    assert code == 2 and "TRACETRACK_EXPORTER_SCRAPE_TIMEOUT: " in err, err


def test_a_password_prompt_without_a_terminal_says_how_to_give_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def end_of_input(prompt: str) -> str:  # Ctrl-D, or no terminal and stdin closed
        raise EOFError

    monkeypatch.setattr(getpass, "getpass", end_of_input)
    code, err = run(["user", "add", "alice", "--role", "admin"], capsys)
    assert code == 2 and err.strip().endswith(
        "error: password: no input (use --password-stdin to pipe one)"
    ), err
