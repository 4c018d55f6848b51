#!/usr/bin/env bash
# Installs OpenTelemetry JS (tests/otel/package.json, exact versions) into
# $1/node_modules for the interop test. Idempotent: does nothing when the
# installed package.json matches; npm's cache (~/.npm) is preferred, so a
# second build tree installs offline.
set -euo pipefail
dest=$1
src=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dest"
if cmp -s "$src/package.json" "$dest/package.json" && [ -d "$dest/node_modules/@opentelemetry/core" ]; then
  exit 0
fi
cp "$src/package.json" "$dest/package.json"
cd "$dest"
npm install --prefer-offline --no-audit --no-fund --no-package-lock --loglevel=error
