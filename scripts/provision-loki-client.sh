#!/usr/bin/env bash
# Installs the Loki client the integration tests drive (winston-loki, which sends
# snappy protobuf or JSON) from scripts/loki-client/package-lock.json into the tool
# cache, with `npm ci`: the same versions every time. Prints the directory holding
# push.js and node_modules. Idempotent; a changed lockfile gets a directory of its own.
set -euo pipefail
SRC="$(cd "$(dirname "$0")/loki-client" && pwd)"
CACHE="${LOGSERVER_CACHE_DIR:-$HOME/.cache/logserver}"
fail() { echo "provision-loki-client: step '$1' failed." >&2; exit 1; }
command -v node >/dev/null || fail "find node on PATH (apt-get install nodejs npm)"
command -v npm >/dev/null || fail "find npm on PATH (apt-get install npm)"
LOCK_SUM="$(cat "$SRC/package.json" "$SRC/package-lock.json" | sha256sum | cut -c1-12)"
DIR="$CACHE/loki-client-$LOCK_SUM"
cp "$SRC/push.js" "$DIR/push.js" 2>/dev/null || true  # keep the driver current
if [ -f "$DIR/.complete" ]; then echo "$DIR"; exit 0; fi
TMP="$(mktemp -d "$CACHE/loki-client.XXXXXX")"
cp "$SRC/package.json" "$SRC/package-lock.json" "$SRC/push.js" "$TMP/"
echo "provision-loki-client: npm ci in $DIR (first time only)" >&2
(cd "$TMP" && npm ci --no-audit --no-fund --ignore-scripts >&2) || { rm -rf "$TMP"; fail "npm ci"; }
touch "$TMP/.complete"
rm -rf "$DIR"
mv "$TMP" "$DIR"  # whole or not at all: a parallel run sees a complete directory
echo "$DIR"
