#!/usr/bin/env bash
# Installs Swagger UI (swagger-ui-dist, for the API reference at /api/docs) from
# scripts/swagger-ui/package-lock.json into the tool cache; prints the directory
# holding its files.
set -euo pipefail
DIR="$(bash "$(dirname "$0")/provision-npm.sh" swagger-ui)"
echo "$DIR/node_modules/swagger-ui-dist"
