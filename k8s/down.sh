#!/usr/bin/env bash
# Deletes the kind cluster made by k8s/up.sh (and everything in it).
set -euo pipefail

readonly cluster=${KIND_CLUSTER_NAME:-video-mesh}

if ! command -v kind >/dev/null 2>&1; then
  echo "down.sh: kind is not installed" >&2
  exit 1
fi
# Captured first: with pipefail, grep -q closing the pipe early could fail kind.
clusters=$(kind get clusters 2>/dev/null || true)
if grep -qx "$cluster" <<<"$clusters"; then
  kind delete cluster --name "$cluster"
else
  echo "down.sh: no cluster named $cluster"
fi
