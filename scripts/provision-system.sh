#!/usr/bin/env bash
# Installs redis-server and nginx from Debian packages when they are missing,
# rsyslog's Elasticsearch output, the log agent the shipper integration tests
# start, chromium, which the console's browser tests drive headless (with a
# font, so that its screenshots show text), and npm, which fetches Swagger UI
# (the gateway's /api/docs) and the Loki client from their lockfiles.
set -euo pipefail
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
compgen -G "/usr/lib/*/rsyslog/omelasticsearch.so" >/dev/null || missing+=(rsyslog-elasticsearch)
had_rsyslog=0; command -v rsyslogd >/dev/null || [ -x /usr/sbin/rsyslogd ] && had_rsyslog=1
command -v chromium >/dev/null || missing+=(chromium fonts-dejavu-core)
command -v npm >/dev/null || missing+=(nodejs npm)  # Swagger UI's files (/api/docs), the Loki client
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "provision-system: please install: ${missing[*]} (no apt-get here)." >&2
  echo "  Or set LOGSERVER_REDIS_URL to an existing Redis." >&2
  exit 1
fi
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "provision-system: installing ${missing[*]} with apt-get" >&2
$SUDO apt-get update -qq >&2 || { echo "provision-system: step 'apt-get update' failed" >&2; exit 1; }
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 \
  || { echo "provision-system: step 'apt-get install ${missing[*]}' failed" >&2; exit 1; }
# Debian starts the packaged services; ours run on their own ports, stop the system ones.
for svc in redis-server nginx; do $SUDO service "$svc" stop >/dev/null 2>&1 || true; done
# The tests run their own rsyslogd; stop the system one only if it came with this install.
[ "$had_rsyslog" -eq 1 ] || $SUDO service rsyslog stop >/dev/null 2>&1 || true
