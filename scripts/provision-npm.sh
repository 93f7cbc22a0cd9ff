#!/usr/bin/env bash
# Installs the npm packages pinned in scripts/<name>/package-lock.json into the
# tool cache with `npm ci --ignore-scripts` (the same versions every time, no
# install-time scripts) and prints the directory holding node_modules and the
# folder's own .js files. Idempotent; a changed lockfile gets a directory of its
# own. Used by provision-swagger-ui.sh and provision-loki-client.sh.
set -euo pipefail
NAME="$1"
SRC="$(cd "$(dirname "$0")/$NAME" && pwd)"
CACHE="${LOGSERVER_CACHE_DIR:-$HOME/.cache/logserver}"
fail() { echo "provision-$NAME: step '$1' failed." >&2; exit 1; }
command -v node >/dev/null || fail "find node on PATH (apt-get install nodejs npm)"
command -v npm >/dev/null || fail "find npm on PATH (apt-get install npm)"
LOCK_SUM="$(cat "$SRC/package.json" "$SRC/package-lock.json" | sha256sum | cut -c1-12)"
DIR="$CACHE/$NAME-$LOCK_SUM"
shopt -s nullglob
DRIVERS=("$SRC"/*.js)
if [ -f "$DIR/.complete" ]; then
  [ ${#DRIVERS[@]} -eq 0 ] || cp "${DRIVERS[@]}" "$DIR/"  # keep drivers current
  echo "$DIR"
  exit 0
fi
mkdir -p "$CACHE"
TMP="$(mktemp -d "$CACHE/$NAME.XXXXXX")"
cp "$SRC/package.json" "$SRC/package-lock.json" "${DRIVERS[@]}" "$TMP/"
echo "provision-$NAME: npm ci in $DIR (first time only)" >&2
(cd "$TMP" && npm ci --no-audit --no-fund --ignore-scripts >&2) || { rm -rf "$TMP"; fail "npm ci"; }
touch "$TMP/.complete"
rm -rf "$DIR"
mv "$TMP" "$DIR"  # whole or not at all: a parallel run sees a complete directory
echo "$DIR"
