#!/usr/bin/env bash
# Creates the kind cluster for video-mesh and installs its add-ons: the
# Gateway API CRDs and Traefik (ingress on localhost:80/443),
# kube-prometheus-stack (Prometheus + Grafana) and Grafana Tempo (traces), each
# at a pinned chart version. Safe to run again: every step converges.
#
# Needs: kind >= 0.24.0 with a container engine it can use (Docker, or Podman
# with KIND_EXPERIMENTAL_PROVIDER=podman), kubectl, and helm >= 3.17.0 (or
# >= 4.1.0); it names the command that installs any that is missing. The
# inner loop afterwards (skaffold dev, docs/kubernetes.md) also needs
# skaffold >= 2.19.0, which up.sh only checks and reports on.
# Chart versions: TRAEFIK_VERSION, KPS_VERSION, TEMPO_VERSION; Gateway API CRDs:
# GATEWAY_API_VERSION; node image: KIND_NODE_IMAGE (e.g. kindest/node:v1.34.0).
set -euo pipefail

readonly cluster=${KIND_CLUSTER_NAME:-video-mesh}
readonly context="kind-$cluster"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly here

# The versions the tests render with our values (test/chart/addons.test.ts,
# from ADDON_CHARTS_DIR or npm run charts:fetch); docs/kubernetes.md lists them. Another version
# may need other values: render it first (docs/kubernetes.md).
readonly traefik_version=${TRAEFIK_VERSION:-41.3.0}
readonly kps_version=${KPS_VERSION:-88.5.3}
readonly tempo_version=${TEMPO_VERSION:-2.2.4}
# The Gateway API release the Traefik chart above asks for (its README).
readonly gateway_api_version=${GATEWAY_API_VERSION:-v1.5.1}

# Oldest versions the inner loop works with, and why:
#   kind 0.24.0: its kindnet enforces NetworkPolicies (the chart's are real).
#   helm 3.17.0 / 4.1.0: the oldest of each major the tests render with.
#   skaffold 2.19.0: the first to read skaffold/v4beta14 (skaffold.yaml), and
#     the first whose Helm 4 support works with Helm 4.1.4 and later.
readonly min_kind=0.24.0
readonly min_helm3=3.17.0
readonly min_helm4=4.1.0
readonly min_skaffold=2.19.0

die() { echo "up.sh: $*" >&2; exit 1; }

# The first x.y.z in a tool's version output ("kind v0.24.0 go1.22 ...").
semver_of() {
  local text=$1
  [[ $text =~ ([0-9]+)\.([0-9]+)\.([0-9]+) ]] || return 1
  echo "${BASH_REMATCH[1]}.${BASH_REMATCH[2]}.${BASH_REMATCH[3]}"
}

# True when version $1 >= $2 (both x.y.z), compared number by number.
version_at_least() {
  local -a have want
  IFS=. read -r -a have <<<"$1"
  IFS=. read -r -a want <<<"$2"
  local i
  for i in 0 1 2; do
    if ((10#${have[i]} > 10#${want[i]})); then return 0; fi
    if ((10#${have[i]} < 10#${want[i]})); then return 1; fi
  done
  return 0
}

# require_version <tool> <its version output> <minimum> [hint]
require_version() {
  local tool=$1 output=$2 minimum=$3 hint=${4:-}
  local found
  found=$(semver_of "$output") || die "cannot read the version of $tool from: $output"
  version_at_least "$found" "$minimum" ||
    die "$tool $found is too old: the inner loop needs $tool $minimum or newer${hint:+ ($hint)} (see docs/kubernetes.md)"
}

# The release names of this machine's OS and CPU in download URLs.
os=$(uname -s | tr '[:upper:]' '[:lower:]')
case "$(uname -m)" in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) arch=$(uname -m) ;;
esac
readonly os arch

# The command that installs one tool, from its project's own instructions.
install_hint() {
  case $1 in
    kind) echo "curl -Lo kind https://kind.sigs.k8s.io/dl/v$min_kind/kind-$os-$arch && chmod +x kind && sudo mv kind /usr/local/bin/ (or: brew install kind)" ;;
    kubectl) echo "curl -LO \"https://dl.k8s.io/release/\$(curl -Ls https://dl.k8s.io/release/stable.txt)/bin/$os/$arch/kubectl\" && sudo install kubectl /usr/local/bin/ (or: brew install kubectl)" ;;
    helm) echo "curl -fsSL https://raw.githubusercontent.com/helm/helm/main/scripts/get-helm-3 | bash (or: brew install helm)" ;;
    skaffold) echo "curl -Lo skaffold https://storage.googleapis.com/skaffold/releases/latest/skaffold-$os-$arch && sudo install skaffold /usr/local/bin/ (or: brew install skaffold)" ;;
  esac
}

# Only what creating the cluster and installing the add-ons runs: kind,
# kubectl, helm. skaffold is the dev loop's, checked apart (check_skaffold).
require_tools() {
  local tool
  for tool in kind kubectl helm; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed; install it with: $(install_hint "$tool")"
  done
  require_version kind "$(kind version)" "$min_kind" "kindnet enforces NetworkPolicies from 0.24.0"
  local helm_version
  helm_version=$(semver_of "$(helm version --short)") || die "cannot read the version of helm"
  case $helm_version in
    3.*) require_version helm "$helm_version" "$min_helm3" "or Helm $min_helm4" ;;
    4.*) require_version helm "$helm_version" "$min_helm4" ;;
    *) die "helm $helm_version is not supported: use Helm 3 ($min_helm3 or newer) or Helm 4 ($min_helm4 or newer)" ;;
  esac
  # kind runs its node in a container: Docker's by default, Podman's when asked.
  if [[ ${KIND_EXPERIMENTAL_PROVIDER:-docker} == podman ]]; then
    podman info >/dev/null 2>&1 || die "kind is told to use podman (KIND_EXPERIMENTAL_PROVIDER=podman), but podman info fails: install Podman (https://podman.io/docs/installation) or start its machine"
  else
    command -v docker >/dev/null 2>&1 || die "kind needs a container engine: install Docker (https://docs.docker.com/engine/install/), or use Podman with KIND_EXPERIMENTAL_PROVIDER=podman"
    docker info >/dev/null 2>&1 || die "the docker engine is not running: start it (or use Podman with KIND_EXPERIMENTAL_PROVIDER=podman)"
  fi
}

# The dev loop's tool: reported, never required to create the cluster.
check_skaffold() {
  if ! command -v skaffold >/dev/null 2>&1; then
    echo "up.sh: skaffold is not installed; skaffold dev needs $min_skaffold or newer: $(install_hint skaffold)"
    return
  fi
  local found
  found=$(semver_of "$(skaffold version)") || return 0
  if ! version_at_least "$found" "$min_skaffold"; then
    echo "up.sh: skaffold $found is too old for skaffold dev: it needs skaffold $min_skaffold or newer (skaffold.yaml is skaffold/v4beta14, and Helm 4 needs it): $(install_hint skaffold)"
  fi
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

add_repos() {
  helm repo add traefik https://traefik.github.io/charts --force-update >/dev/null
  helm repo add prometheus-community https://prometheus-community.github.io/helm-charts --force-update >/dev/null
  # Tempo's single-binary chart moved here from grafana/helm-charts (deprecated there at 1.24.4).
  helm repo add grafana-community https://grafana-community.github.io/helm-charts --force-update >/dev/null
  helm repo update traefik prometheus-community grafana-community >/dev/null
}

# helm upgrade does not touch the CRDs a chart ships in crds/: apply the pinned
# version's CRDs first (server-side: some are too large for a client-side apply).
apply_chart_crds() {
  local chart=$1 version=$2
  echo "up.sh: applying the CRDs of $chart $version"
  helm show crds "$chart" --version "$version" |
    kubectl --context "$context" apply --server-side --force-conflicts -f - >/dev/null
}

apply_gateway_api() {
  echo "up.sh: applying the Gateway API $gateway_api_version CRDs (standard channel)"
  kubectl --context "$context" apply --server-side --force-conflicts \
    -f "https://github.com/kubernetes-sigs/gateway-api/releases/download/$gateway_api_version/standard-install.yaml" >/dev/null
}

install_chart() {
  local release=$1 chart=$2 namespace=$3 version=$4 values=$5
  echo "up.sh: installing $release ($chart $version) in $namespace"
  helm upgrade --install "$release" "$chart" --version "$version" --kube-context "$context" \
    --namespace "$namespace" --create-namespace --values "$values" --wait --timeout 10m
}

main() {
  require_tools
  create_cluster
  kubectl config use-context "$context" >/dev/null
  add_repos
  apply_gateway_api
  apply_chart_crds traefik/traefik "$traefik_version"
  install_chart traefik traefik/traefik traefik "$traefik_version" "$here/addons/traefik-values.yaml"
  apply_chart_crds prometheus-community/kube-prometheus-stack "$kps_version"
  install_chart kube-prometheus-stack prometheus-community/kube-prometheus-stack monitoring \
    "$kps_version" "$here/addons/kube-prometheus-stack-values.yaml"
  install_chart tempo grafana-community/tempo monitoring "$tempo_version" "$here/addons/tempo-values.yaml"
  kubectl --context "$context" create namespace video-mesh --dry-run=client -o yaml |
    kubectl --context "$context" apply -f - >/dev/null
  check_skaffold
  cat <<MSG
up.sh: cluster $cluster is ready (context $context): Traefik $traefik_version,
  kube-prometheus-stack $kps_version, Tempo $tempo_version, Gateway API $gateway_api_version.
  skaffold dev                    # build, deploy, watch; then:
  curl -X POST http://localhost/play/asset/123/user/1
  skaffold dev -p observability   # plus metrics, alerts, dashboards, traces
  Grafana: http://localhost:3000 (admin / admin)
MSG
}

main "$@"
