#!/bin/sh
# Entrypoint of the memfleet image: the first argument names the process, the rest are passed on.
# node replaces this shell (exec), so SIGTERM from the container runtime reaches it directly and
# the process shuts down gracefully (a worker drains its in-flight jobs first).
set -eu
cd "$(dirname "$0")/.."

usage() {
  echo "usage: <api|worker|reader|migrate [up|down]|memfleet <command>>" >&2
  echo "  api       the HTTP API (API_PORT, 3000)" >&2
  echo "  worker    a drain worker (metrics, /healthz, /readyz on WORKER_METRICS_PORT, 9464)" >&2
  echo "  reader    the read service (READER_PORT, 3001)" >&2
  echo "  migrate   apply the Postgres migrations (DATABASE_URL) and exit" >&2
  echo "  memfleet  the operator CLI, e.g. memfleet dlq list --tenant acme" >&2
}

if [ "$#" -eq 0 ]; then
  usage
  exit 2
fi
process=$1
shift
case "$process" in
  # 32 MB semi-spaces (V8's default is 16): half as many scavenges of each request's and drain's
  # short-lived objects. scripts/start.sh and the tests' harness start the services the same way.
  api | worker | reader)
    exec node --max-semi-space-size=32 --import tsx "apps/$process/src/main.ts" "$@"
    ;;
  migrate) exec node --import tsx packages/db/src/migrate-cli.ts "$@" ;;
  memfleet) exec node --import tsx apps/cli/src/main.ts "$@" ;;
  *)
    echo "unknown process: $process" >&2
    usage
    exit 2
    ;;
esac
