#!/usr/bin/env bash
# Runs `npm ci` when node_modules is missing or older than the lockfile, then builds from clean.
set -euo pipefail
stamp=node_modules/.package-lock.json
if [[ ! -f "$stamp" || package-lock.json -nt "$stamp" ]]; then
  npm ci --no-audit --no-fund
fi
# A clean build: compiled files of deleted sources would otherwise still run as tests.
rm -rf dist
npm run --silent build
