#!/usr/bin/env bash
# Prints the path of the Node.js binary the project runs on: the machine's own
# when it is Node 22 or later (the oldest line our dependencies support),
# otherwise the release the image runs (the Dockerfile's RUNTIME_IMAGE),
# fetched once from the npm registry's node-linux-<arch> package into .cache/.
#   node-lts.sh [x86_64|arm64]   with an architecture (as uname -m names it):
#                                always the image's release for it (the arm64
#                                stand-in base of test/image)
set -euo pipefail
cd "$(dirname "$0")/.."
want_arch=${1:-}
own=$(command -v node || true)
if [[ -z "$want_arch" && -n "$own" ]] && (($("$own" -p 'process.versions.node.split(".")[0]') >= 22)); then
  echo "$own"
  exit 0
fi
version=$(sed -n 's/^ARG RUNTIME_IMAGE=node:\([0-9][0-9.]*\)-.*/\1/p' Dockerfile)
[[ -n "$version" ]] || { echo "node-lts: no node version in the Dockerfile's RUNTIME_IMAGE" >&2; exit 1; }
case "${want_arch:-$(uname -m)}" in
  x86_64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "node-lts: no Node.js package for ${want_arch:-$(uname -m)}" >&2; exit 1 ;;
esac
dir=".cache/node-$version-$arch"
if [[ ! -x "$dir/bin/node" ]]; then
  echo "node-lts: fetching Node.js $version ($arch) from the npm registry (the machine's is ${own:+$("$own" --version)}${own:-missing})" >&2
  # The exact release where the registry has it for this architecture, else the newest of its major line.
  spec="node-linux-$arch@$version"
  npm view "$spec" version >/dev/null 2>&1 || spec="node-linux-$arch@${version%%.*}"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$spec" >/dev/null 2>&1) || { echo "node-lts: npm pack $spec failed" >&2; exit 1; }
  mkdir -p "$dir"
  tar -xzf "$tmp"/*.tgz -C "$dir" --strip-components=1
fi
echo "$PWD/$dir/bin/node"
