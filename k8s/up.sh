#!/usr/bin/env bash
# Creates the kind cluster for video-mesh and installs its add-ons: Traefik
# (ingress on localhost:80/443), kube-prometheus-stack (Prometheus + Grafana)
# and Grafana Tempo (traces). Safe to run again: every step converges.
#
# Needs: docker, kind, kubectl, helm. Then: skaffold dev  (see docs/kubernetes.md)
# Pin chart versions with TRAEFIK_VERSION, KPS_VERSION, TEMPO_VERSION; pick the
# node image with KIND_NODE_IMAGE (e.g. kindest/node:v1.34.0).
set -euo pipefail

readonly cluster=${KIND_CLUSTER_NAME:-video-mesh}
readonly context="kind-$cluster"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly here

die() { echo "up.sh: $*" >&2; exit 1; }

require_tools() {
  local tool
  for tool in docker kind kubectl helm; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (see docs/kubernetes.md)"
  done
  docker info >/dev/null 2>&1 || die "the docker engine is not running"
}

cluster_exists() {
  # Captured first: with pipefail, grep -q closing the pipe early could fail kind.
  local clusters
  clusters=$(kind get clusters 2>/dev/null || true)
  grep -qx "$cluster" <<<"$clusters"
}

create_cluster() {
  if cluster_exists; then
    echo "up.sh: cluster $cluster exists"
    return
  fi
  local args=(create cluster --name "$cluster" --config "$here/kind-config.yaml" --wait 120s)
  if [[ -n "${KIND_NODE_IMAGE:-}" ]]; then args+=(--image "$KIND_NODE_IMAGE"); fi
  kind "${args[@]}"
}

# helm upgrade --install with an optional pinned version ($4, may be empty).
install_chart() {
  local release=$1 chart=$2 namespace=$3 version=$4 values=$5
  local args=(upgrade --install "$release" "$chart" --kube-context "$context"
    --namespace "$namespace" --create-namespace --values "$values" --wait --timeout 10m)
  if [[ -n "$version" ]]; then args+=(--version "$version"); fi
  echo "up.sh: installing $release ($chart) in $namespace"
  helm "${args[@]}"
}

add_repos() {
  helm repo add traefik https://traefik.github.io/charts --force-update >/dev/null
  helm repo add prometheus-community https://prometheus-community.github.io/helm-charts --force-update >/dev/null
  helm repo add grafana https://grafana.github.io/helm-charts --force-update >/dev/null
  helm repo update traefik prometheus-community grafana >/dev/null
}

main() {
  require_tools
  create_cluster
  kubectl config use-context "$context" >/dev/null
  add_repos
  install_chart traefik traefik/traefik traefik "${TRAEFIK_VERSION:-}" "$here/addons/traefik-values.yaml"
  install_chart kube-prometheus-stack prometheus-community/kube-prometheus-stack monitoring \
    "${KPS_VERSION:-}" "$here/addons/kube-prometheus-stack-values.yaml"
  install_chart tempo grafana/tempo monitoring "${TEMPO_VERSION:-}" "$here/addons/tempo-values.yaml"
  kubectl --context "$context" create namespace video-mesh --dry-run=client -o yaml |
    kubectl --context "$context" apply -f - >/dev/null
  cat <<MSG
up.sh: cluster $cluster is ready (context $context).
  skaffold dev                    # build, deploy, watch; then:
  curl -X POST http://localhost/play/asset/123/user/1
  skaffold dev -p observability   # plus metrics, alerts, dashboards, traces
  Grafana: http://localhost:3000 (admin / admin)
MSG
}

main "$@"
