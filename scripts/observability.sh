#!/usr/bin/env bash
# Watch the mesh locally: a Prometheus scraping the five services on their
# default ports with the chart's alert and SLO rules, an Alertmanager whose
# receiver (scripts/alert-log.ts) prints every alert here, and Grafana with
# the chart's dashboards when it is installed. Ctrl-C stops them all.
# See docs/observability.md.
#
#   scripts/observability.sh           start Prometheus, Alertmanager (and Grafana)
#   scripts/observability.sh --check   only validate the configuration, rules and rule tests
#
# Environment: PROMETHEUS_PORT (9090), GRAFANA_PORT (3000),
# TEMPO_URL (http://127.0.0.1:3200, the Tempo Grafana opens exemplars' traces in),
# OBSERVABILITY_DATA (.cache/observability, where they keep their data).
# Alertmanager listens on 9093 and its log receiver on 9095, the ports the
# configs name.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
config="$root/observability/local/prometheus.yml"
am_config="$root/observability/local/alertmanager.yml"
rules_tests="$root/charts/video-mesh/rules/video-mesh.rules.test.yml"
prometheus_port="${PROMETHEUS_PORT:-9090}"
grafana_port="${GRAFANA_PORT:-3000}"
tempo_url="${TEMPO_URL:-http://127.0.0.1:3200}"
data="${OBSERVABILITY_DATA:-$root/.cache/observability}"

say() { printf 'observability: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

need_prometheus() {
  command -v prometheus >/dev/null && command -v promtool >/dev/null && return
  die "prometheus and promtool are needed: sudo apt-get install prometheus
  (the Debian package also starts a system Prometheus on :9090; stop it with
  'sudo systemctl disable --now prometheus' or run this script with PROMETHEUS_PORT=9091)"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Debian calls it prometheus-alertmanager, upstream's tarball alertmanager.
alertmanager_binary() {
  command -v prometheus-alertmanager || command -v alertmanager
}

need_alertmanager() {
  alertmanager_binary >/dev/null && command -v amtool >/dev/null && return
  die "Alertmanager and amtool are needed: scripts/install-deps.sh test (or sudo apt-get install prometheus-alertmanager;
  the Debian package also starts a system Alertmanager on :9093: 'sudo systemctl disable --now prometheus-alertmanager')"
}

check() {
  promtool check config "$config"
  promtool test rules "$rules_tests"
  amtool check-config "$am_config"
}

grafana_binary() {
  # Grafana 10+ ships `grafana server`; older packages `grafana-server`.
  if command -v grafana >/dev/null; then echo "grafana server"; return; fi
  if command -v grafana-server >/dev/null; then echo "grafana-server"; return; fi
  return 1
}

grafana_home() {
  for dir in "${GRAFANA_HOME:-}" /usr/share/grafana /opt/grafana /usr/local/share/grafana; do
    [[ -n "$dir" && -d "$dir/conf" ]] && { echo "$dir"; return; }
  done
  return 1
}

print_grafana_help() {
  cat >&2 <<EOF
observability: Grafana is not installed, so it does not run (Prometheus and Alertmanager do).
  Install it from Grafana's apt repository:
    sudo mkdir -p /etc/apt/keyrings
    wget -q -O - https://apt.grafana.com/gpg.key | gpg --dearmor | sudo tee /etc/apt/keyrings/grafana.gpg >/dev/null
    echo "deb [signed-by=/etc/apt/keyrings/grafana.gpg] https://apt.grafana.com stable main" | sudo tee /etc/apt/sources.list.d/grafana.list
    sudo apt-get update && sudo apt-get install grafana
  then run this script again. Or run it in Docker (host network, so it reaches Prometheus on 127.0.0.1):
    docker run --rm --network host \\
      -e GF_SERVER_HTTP_PORT=$grafana_port -e GF_AUTH_ANONYMOUS_ENABLED=true \\
      -e VIDEO_MESH_PROMETHEUS_URL=http://127.0.0.1:$prometheus_port \\
      -e VIDEO_MESH_TEMPO_URL=$tempo_url \\
      -e VIDEO_MESH_DASHBOARDS=/var/lib/video-mesh/dashboards \\
      -v "$root/observability/local/grafana/provisioning:/etc/grafana/provisioning:ro" \\
      -v "$root/charts/video-mesh/dashboards:/var/lib/video-mesh/dashboards:ro" \\
      grafana/grafana
EOF
}

pids=()
stop_all() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}

main() {
  need_prometheus
  need_alertmanager
  if [[ "${1:-}" == "--check" ]]; then check; return; fi
  [[ $# -eq 0 ]] || die "unknown argument $1 (use --check or nothing)"
  check >/dev/null || { check; die "fix the configuration above first"; }
  port_in_use "$prometheus_port" && die "port $prometheus_port is taken (a system Prometheus?); run with PROMETHEUS_PORT=9091"

  mkdir -p "$data/prometheus"
  trap stop_all EXIT
  trap 'stop_all; exit 0' INT TERM
  prometheus \
    --config.file="$config" \
    --storage.tsdb.path="$data/prometheus" \
    --web.listen-address="127.0.0.1:$prometheus_port" \
    --web.enable-lifecycle \
    --enable-feature=exemplar-storage \
    --log.level=warn &
  pids+=("$!")
  say "Prometheus on http://127.0.0.1:$prometheus_port (targets: /targets, alerts: /alerts)"

  port_in_use 9093 && die "port 9093 is taken (a system Alertmanager? sudo systemctl disable --now prometheus-alertmanager)"
  mkdir -p "$data/alertmanager"
  [[ -f "$root/dist/scripts/alert-log.js" ]] || die "build first: npm run build (the alert log receiver is dist/scripts/alert-log.js)"
  "$root/scripts/with-node" node "$root/dist/scripts/alert-log.js" --port 9095 &
  pids+=("$!")
  "$(alertmanager_binary)" \
    --config.file="$am_config" \
    --storage.path="$data/alertmanager" \
    --web.listen-address="127.0.0.1:9093" \
    --cluster.listen-address="" \
    --log.level=warn &
  pids+=("$!")
  say "Alertmanager on http://127.0.0.1:9093; its receiver prints every alert below"

  local grafana home
  if grafana="$(grafana_binary)" && home="$(grafana_home)"; then
    port_in_use "$grafana_port" && die "port $grafana_port is taken (a system Grafana?); run with GRAFANA_PORT=3001"
    mkdir -p "$data/grafana"
    # Anonymous viewers only, on loopback: the dashboards are provisioned
    # read-only anyway; sign in as admin/admin to explore.
    VIDEO_MESH_PROMETHEUS_URL="http://127.0.0.1:$prometheus_port" \
    VIDEO_MESH_TEMPO_URL="$tempo_url" \
    VIDEO_MESH_DASHBOARDS="$root/charts/video-mesh/dashboards" \
    GF_PATHS_PROVISIONING="$root/observability/local/grafana/provisioning" \
    GF_PATHS_DATA="$data/grafana" \
    GF_PATHS_LOGS="$data/grafana/log" \
    GF_PATHS_PLUGINS="$data/grafana/plugins" \
    GF_SERVER_HTTP_ADDR=127.0.0.1 \
    GF_SERVER_HTTP_PORT="$grafana_port" \
    GF_AUTH_ANONYMOUS_ENABLED=true \
    GF_AUTH_ANONYMOUS_ORG_ROLE=Viewer \
    GF_LOG_LEVEL=warn \
      $grafana --homepath="$home" &
    pids+=("$!")
    say "Grafana on http://127.0.0.1:$grafana_port/d/video-mesh-overview (per service: /d/video-mesh-service)"
  else
    print_grafana_help
  fi
  say "start the mesh on its default ports and 'npm run traffic' to see data; Ctrl-C stops"
  # Return when either process ends, so a crash is not hidden.
  wait -n "${pids[@]}"
}

main "$@"
