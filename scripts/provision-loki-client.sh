#!/usr/bin/env bash
# Installs the Loki client the integration tests drive (winston-loki, which sends
# snappy protobuf or JSON) from scripts/loki-client/package-lock.json into the tool
# cache; prints the directory holding push.js and node_modules.
set -euo pipefail
exec bash "$(dirname "$0")/provision-npm.sh" loki-client
