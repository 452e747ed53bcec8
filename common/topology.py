"""Where the stack's parts listen by default and the scrape job each is known by.

Settings take their port defaults from here; the rendered Prometheus and Alertmanager
configurations, the deploy configs and the help strings use the same numbers, and
tests check that the shipped prometheus.yml and alertmanager.yml echo them.
"""

from __future__ import annotations

APP_PORT = 8000
EXPORTER_PORT = 9817
BRIDGE_PORT = 9818
PROMETHEUS_PORT = 9090
ALERTMANAGER_PORT = 9093
GRAFANA_PORT = 3000
REDIS_PORT = 6379

# Scrape job names: the `job` label every rule, panel and report selects on.
APP_JOB = "tracetrack-app"
EXPORTER_JOB = "tracetrack-exporter"
BRIDGE_JOB = "tracetrack-bridge"
ALERTMANAGER_JOB = "alertmanager"
PROMETHEUS_JOB = "prometheus"
JOBS = (APP_JOB, EXPORTER_JOB, BRIDGE_JOB, ALERTMANAGER_JOB, PROMETHEUS_JOB)
