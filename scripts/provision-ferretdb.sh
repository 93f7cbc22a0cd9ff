#!/usr/bin/env bash
# Builds FerretDB v1 (a MongoDB wire-protocol server on SQLite) into the tool cache.
# Prints the binary path. Idempotent: a cached binary is reused.
#
# A plain `go install .../cmd/ferretdb@v1.24.2` builds a binary that panics at start
# ("Invalid build/version/version.txt file content"): the module zip lacks the
# generated version file. So: download the module, add the file, build.
set -euo pipefail
VERSION="${FERRETDB_VERSION:-v1.24.2}"
CACHE="${LOGSERVER_CACHE_DIR:-$HOME/.cache/logserver}"
BIN="$CACHE/bin/ferretdb-$VERSION"
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi

fail() {
  echo "provision-ferretdb: step '$1' failed." >&2
  echo "  Instead, point logserver at an existing MongoDB-wire server:" >&2
  echo "  export LOGSERVER_MONGODB_URL=mongodb://host:27017  (or put mongod on PATH)" >&2
  exit 1
}
command -v go >/dev/null || fail "find go on PATH (install Go >= 1.24)"
mkdir -p "$CACHE/bin" "$CACHE/src"
echo "provision-ferretdb: building FerretDB $VERSION (first time only, ~1-2 min)" >&2
json=$(go mod download -json "github.com/FerretDB/FerretDB@$VERSION") || fail "go mod download"
dir=$(printf '%s' "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])') \
  || fail "read module dir"
src="$CACHE/src/ferretdb-$VERSION"
rm -rf "$src"
cp -r "$dir" "$src" && chmod -R u+w "$src" || fail "copy module source"
echo "$VERSION" > "$src/build/version/version.txt"
(cd "$src" && CGO_ENABLED=0 go build -buildvcs=false -o "$BIN.tmp" ./cmd/ferretdb) \
  || fail "go build ./cmd/ferretdb"
mv "$BIN.tmp" "$BIN"
rm -rf "$src"
echo "$BIN"
