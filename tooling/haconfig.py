"""The HA stack's third-party engines, configured from one place: PgBouncer, HAProxy and
VictoriaMetrics, and the PostgreSQL connection budget PgBouncer is sized from.

docker-compose.yml (through deploy/render_configs.py) and the tests that run these
engines on loopback render their files here, so what is tested is what is shipped;
only addresses, authentication and file paths differ. The sizing is explained in
docs/scaling.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from common.settings import Settings
from common.thresholds import BY_KEY

# --- the PostgreSQL connection budget ------------------------------------------------

# PostgreSQL's max_connections in docker-compose.yml and common.pgserver.
MAX_CONNECTIONS = 300
SUPERUSER_RESERVED = 3  # PostgreSQL's default superuser_reserved_connections


@dataclass(frozen=True)
class ConnectionBudget:
    """Who holds PostgreSQL server connections, at most, with app replicas behind PgBouncer.

    The app's pool of 100-250 connections (docs/architecture.md §11) becomes PgBouncer's server pool:
    `pool` connections in steady state, `reserve` more for bursts (after
    `reserve_timeout` seconds of queueing). App workers hold *client* connections to
    PgBouncer (cheap, a few kB each), so adding replicas or workers adds queueing in
    PgBouncer, never PostgreSQL backends. The total stays below the warning threshold
    of the database-connections alert, so only something bypassing the pooler (or an
    incident's psql sessions piling up) can raise it.
    """

    app_replicas: int = 2
    pool: int = 100
    reserve: int = 50
    reserve_timeout_seconds: int = 3
    exporter: int = 2  # the exporter's own connection (+1 while reconnecting)
    migrations: int = 1  # `tracetrack db upgrade`, direct: no statement timeout
    reporter: int = 2  # `tracetrack report` / the reporter, direct
    admin: int = 10  # people's psql sessions during an incident

    @property
    def pooler(self) -> int:
        """PgBouncer's max_db_connections: every server connection it may open."""
        return self.pool + self.reserve

    @property
    def server_connections(self) -> int:
        return self.pooler + self.exporter + self.migrations + self.reporter + self.admin

    def client_connections_per_replica(self, settings: Settings) -> int:
        """What one replica's workers may hold towards PgBouncer (all workers together)."""
        return settings.db_pool_size_total + settings.db_pool_max_overflow_total

    def max_client_connections(self, settings: Settings) -> int:
        """PgBouncer's max_client_conn: every replica at full pool, plus the same again
        so a rolling restart (old and new replica both connected) is never refused."""
        return 2 * self.app_replicas * self.client_connections_per_replica(settings)

    def problems(self) -> list[str]:
        """Why this budget is wrong ([] when it holds)."""
        out = []
        warning = BY_KEY["db_connections"].warning
        if self.server_connections >= warning:
            out.append(
                f"{self.server_connections} server connections at full load reach the "
                f"database-connections warning threshold ({warning:g})"
            )
        usable = MAX_CONNECTIONS - SUPERUSER_RESERVED
        if self.server_connections > usable:
            out.append(f"{self.server_connections} server connections exceed {usable} usable")
        if not 100 <= self.pooler <= 250:
            out.append(
                f"PgBouncer's {self.pooler} is outside the 100-250 of docs/architecture.md §11"
            )
        return out


# --- PgBouncer -------------------------------------------------------------------------


def session_settings(settings: Settings) -> dict[str, int]:
    """The per-session PostgreSQL settings the app asks for at connect time (app/db.py's
    `options`), which PgBouncer sets on its server connections instead."""
    return {
        "statement_timeout": settings.db_statement_timeout_ms,
        "lock_timeout": settings.db_lock_timeout_ms,
    }


def render_pgbouncer_ini(
    *,
    listen_addr: str,
    listen_port: int,
    db_host: str,
    db_port: int,
    db_name: str,
    auth_type: str,
    auth_file: str,
    stats_users: Sequence[str],
    budget: ConnectionBudget,
    settings: Settings,
    extra: Mapping[str, str] | None = None,
) -> str:
    """pgbouncer.ini in transaction mode, sized by `budget`.

    Transaction pooling hands a server connection to a client for one transaction,
    so the app must keep no session state (it keeps none: no SET, LISTEN, temp
    tables or session advisory locks outside migrations, which go direct). psycopg2
    sends the statement and lock timeouts as a startup `options` parameter (asyncpg as
    startup settings), which PgBouncer cannot forward; they are ignored there and set
    on every server connection instead (connect_query), from the same settings.
    """
    connect_query = "; ".join(f"SET {k} = {v}" for k, v in session_settings(settings).items())
    database = (
        f"{db_name} = host={db_host} port={db_port} dbname={db_name} "
        f"connect_query='{connect_query}'"
    )
    options = {
        "listen_addr": listen_addr,
        "listen_port": str(listen_port),
        "auth_type": auth_type,
        "auth_file": auth_file,
        "pool_mode": "transaction",
        "max_client_conn": str(budget.max_client_connections(settings)),
        "default_pool_size": str(budget.pool),
        "min_pool_size": "10",
        "reserve_pool_size": str(budget.reserve),
        "reserve_pool_timeout": str(budget.reserve_timeout_seconds),
        "max_db_connections": str(budget.pooler),
        "ignore_startup_parameters": ",".join(
            ["extra_float_digits", "options", *session_settings(settings)]
        ),
        # A client waiting longer than the app's own pool timeout has given up.
        "query_wait_timeout": str(int(settings.db_pool_timeout_seconds) + 5),
        "server_idle_timeout": "600",
        "server_lifetime": "3600",
        "stats_users": ",".join(stats_users),
        "log_connections": "0",
        "log_disconnections": "0",
        "log_pooler_errors": "1",
        **(extra or {}),
    }
    lines = [
        "; Rendered by tooling.haconfig (see docs/scaling.md); edit that module, not this file.",
        "[databases]",
        database,
        "",
        "[pgbouncer]",
        *(f"{k} = {v}" for k, v in options.items()),
    ]
    return "\n".join(lines) + "\n"


# --- HAProxy -----------------------------------------------------------------------------

LB_HEALTH_PATH = "/lb-health"


# What the load balancer lets through to the alert bridges: the links notifications carry.
BRIDGE_PUBLIC_PATHS = ("/n/", "/runbook")


def render_haproxy_cfg(
    *,
    bind: str,
    servers: Mapping[str, str],
    stats_bind: str | None = None,
    docker_dns: bool = False,
    bridges: Mapping[str, str] | None = None,
    bridge_bind: str | None = None,
) -> str:
    """HAProxy in front of the app replicas: least-connections balancing, /readyz checks
    every 2 s (out after 2 failures, back after 2 successes), and a request whose
    connection to a dead replica fails is retried on another one, so killing a replica
    costs clients only the requests it was running.

    servers: name -> "host:port". stats_bind: where HAProxy's own Prometheus metrics
    are served (/metrics). docker_dns: resolve server names through Docker's DNS, so
    the proxy starts before the replicas and follows their new addresses.
    bridges, bridge_bind: the alert bridges (name -> "host:port") behind a frontend of
    their own, for what a paged engineer opens from a phone: the notification pages
    (/n/...) and the runbook (/runbook). Anything else (the webhook intake,
    /notifications, /metrics) is 404 there. Any bridge serves any page (they share
    the outbox), so each one that answers /healthz takes its share.
    """
    resolvers = [
        "resolvers docker",
        "    nameserver dns 127.0.0.11:53",
        "    hold valid 5s",
        "",
    ]
    dns = " resolvers docker init-addr last,libc,none" if docker_dns else ""
    lines = [
        "# Rendered by tooling.haconfig (see docs/scaling.md); edit that module, not this file.",
        "global",
        "    maxconn 8192",
        "",
        *(resolvers if docker_dns else []),
        "defaults",
        "    mode http",
        "    timeout connect 3s",
        # Longer than the app's slowest answer (statement timeout 15 s plus work).
        "    timeout server 30s",
        "    timeout client 80s",
        # Shorter than the app's keep-alive (75 s): the proxy closes idle ones first.
        "    timeout http-keep-alive 60s",
        "    timeout queue 10s",
        "    option redispatch 1",
        "    retries 3",
        # Only failures where the request never reached a replica: a write is never
        # sent twice by the proxy.
        "    retry-on conn-failure",
        "    http-reuse safe",
        "",
        "frontend app",
        f"    bind {bind}",
        f"    monitor-uri {LB_HEALTH_PATH}",
        "    option forwardfor",
        "    default_backend app",
        "",
        "backend app",
        "    balance leastconn",
        "    option httpchk GET /readyz",
        "    http-check expect status 200",
        "    default-server inter 2s fall 2 rise 2",
        *(f"    server {name} {address} check{dns}" for name, address in servers.items()),
    ]
    if bridges and bridge_bind:
        lines += [
            "",
            "frontend oncall",
            f"    bind {bridge_bind}",
            "    option forwardfor",
            f"    acl phone_links path_beg {' '.join(BRIDGE_PUBLIC_PATHS)}",
            "    http-request deny deny_status 404 unless phone_links",
            "    default_backend bridges",
            "",
            "backend bridges",
            "    balance roundrobin",
            "    option httpchk GET /healthz",
            "    http-check expect status 200",
            "    default-server inter 2s fall 2 rise 2",
            *(f"    server {name} {address} check{dns}" for name, address in bridges.items()),
        ]
    if stats_bind:
        lines += [
            "",
            "frontend stats",
            f"    bind {stats_bind}",
            "    http-request use-service prometheus-exporter if { path /metrics }",
        ]
    return "\n".join(lines) + "\n"


# --- VictoriaMetrics ---------------------------------------------------------------------

# A year of history plus a month, so this month can be compared with the same one last year.
RETENTION = "13"  # months (-retentionPeriod without a suffix)


def victoriametrics_args(
    *, listen: str, data_path: str, scrape_interval: str, retention: str = RETENTION
) -> list[str]:
    """VictoriaMetrics single-node flags.

    -dedup.minScrapeInterval = the scrape interval keeps one sample per interval and
    series, so the two Prometheus servers of an HA pair (their replica label dropped on
    the way out) store and answer as one.
    """
    return [
        f"-httpListenAddr={listen}",
        f"-storageDataPath={data_path}",
        f"-retentionPeriod={retention}",
        f"-dedup.minScrapeInterval={scrape_interval}",
    ]
