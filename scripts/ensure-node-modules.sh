#!/usr/bin/env bash
# Runs `npm ci` when node_modules is missing or older than the lockfile, then builds.
set -euo pipefail
stamp=node_modules/.package-lock.json
if [[ ! -f "$stamp" || package-lock.json -nt "$stamp" ]]; then
  npm ci --no-audit --no-fund
fi
npm run --silent build
