#!/usr/bin/env bash
# Installs the Debian packages the local stack and the tests run for real:
# Prometheus + promtool, Alertmanager + amtool, redis-server, Chromium for browser tests,
# openssl (the bridge tests make a throwaway TLS certificate), and the HA stack's engines:
# VictoriaMetrics (long-term storage), PgBouncer and HAProxy (app replicas).
# Quick when everything is already there; a no-op (with a note) when not root or not Debian/Ubuntu.
set -euo pipefail

declare -A wanted=(
  [prometheus]=prometheus
  [promtool]=prometheus
  [prometheus-alertmanager]=prometheus-alertmanager
  [amtool]=prometheus-alertmanager
  [redis-server]=redis-server
  [chromium]=chromium
  [openssl]=openssl
  [victoria-metrics]=victoria-metrics
  [pgbouncer]=pgbouncer
  [haproxy]=haproxy
  # The report tests read the PDF's text (pdftotext); README's picture comes from pdftoppm.
  [pdftotext]=poppler-utils
  [pdftoppm]=poppler-utils
)

missing=()
for bin in "${!wanted[@]}"; do
  # pgbouncer and haproxy live in /usr/sbin, not on every user's PATH.
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || missing+=("${wanted[$bin]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-system-deps: missing ${missing[*]}; install them with your package manager" >&2
  exit 0
fi
echo "install-system-deps: apt-get install ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts packaged daemons on install; our stack starts its own, on its own ports.
for svc in prometheus prometheus-alertmanager redis-server prometheus-node-exporter \
  victoria-metrics pgbouncer haproxy; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done
