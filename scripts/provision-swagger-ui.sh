#!/usr/bin/env bash
# Installs Swagger UI (swagger-ui-dist, for the API reference at /api/docs) from
# scripts/swagger-ui/package-lock.json into the tool cache, with `npm ci
# --ignore-scripts` (no install-time analytics): the same version every time.
# Prints the directory holding its files. Idempotent; a changed lockfile gets a
# directory of its own.
set -euo pipefail
SRC="$(cd "$(dirname "$0")/swagger-ui" && pwd)"
CACHE="${LOGSERVER_CACHE_DIR:-$HOME/.cache/logserver}"
fail() { echo "provision-swagger-ui: step '$1' failed." >&2; exit 1; }
command -v node >/dev/null || fail "find node on PATH (apt-get install nodejs npm)"
command -v npm >/dev/null || fail "find npm on PATH (apt-get install npm)"
LOCK_SUM="$(cat "$SRC/package.json" "$SRC/package-lock.json" | sha256sum | cut -c1-12)"
DIR="$CACHE/swagger-ui-$LOCK_SUM"
if [ -f "$DIR/.complete" ]; then echo "$DIR/node_modules/swagger-ui-dist"; exit 0; fi
TMP="$(mktemp -d "$CACHE/swagger-ui.XXXXXX")"
cp "$SRC/package.json" "$SRC/package-lock.json" "$TMP/"
echo "provision-swagger-ui: npm ci in $DIR (first time only)" >&2
(cd "$TMP" && npm ci --no-audit --no-fund --ignore-scripts >&2) || { rm -rf "$TMP"; fail "npm ci"; }
touch "$TMP/.complete"
rm -rf "$DIR"
mv "$TMP" "$DIR"  # whole or not at all: a parallel run sees a complete directory
echo "$DIR/node_modules/swagger-ui-dist"
