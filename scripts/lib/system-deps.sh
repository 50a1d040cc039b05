#!/usr/bin/env bash
# Sourced by scripts/test.sh and scripts/start.sh. Makes sure what memfleet needs outside
# node_modules (redis-server, the PostgreSQL server binaries) and the node modules themselves are
# present, installing them on a fresh Debian machine, where only Node and npm come preinstalled.
#
# Defines: ensure_redis, ensure_postgres (exports PG_BIN), ensure_promtool, ensure_node_deps, pnpm
# (a function running the pinned pnpm through npx) and exports MEMFLEET_ROOT, PNPM_VERSION and PNPM.

MEMFLEET_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export MEMFLEET_ROOT

# Prints a message on stderr; every script shows its progress this way so stdout stays clean.
# Never fails: a closed stderr must not abort a cleanup under `set -e`.
log() {
  printf '%s\n' "$*" >&2 || true
}

# Prints an error and ends the script (or the subshell it runs in); EXIT traps still run.
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# pnpm is pinned by package.json "packageManager" and run through npx, because corepack is not
# usable on our machines and a globally installed pnpm may be another version.
_read_pnpm_version() {
  command -v node >/dev/null || die "node is not on PATH; memfleet needs Node.js 20"
  # shellcheck disable=SC2016 # JavaScript, not shell
  node -e '
    const pm = require(process.argv[1]).packageManager ?? "";
    const m = /^pnpm@([^+]+)/.exec(pm);
    if (!m) { console.error(`package.json packageManager is not pnpm@<version>: ${pm}`); process.exit(1); }
    console.log(m[1]);
  ' "$MEMFLEET_ROOT/package.json"
}
PNPM_VERSION="$(_read_pnpm_version)"
PNPM="npx -y pnpm@${PNPM_VERSION}"
export PNPM_VERSION PNPM

# Runs the pinned pnpm; defined as a function so the scripts read like the docs (`pnpm lint`).
pnpm() {
  npx -y "pnpm@${PNPM_VERSION}" "$@"
}

_apt_updated=0

# Installs Debian packages; leading arguments starting with `-` are apt-get options. apt-get
# update runs at most once per script run and only when something is missing, since it is slow.
# Services are kept from starting on install (Debian would otherwise start a system Redis on 6379,
# a Postgres on 5432, the ports start.sh wants, and a Prometheus server on 9090).
apt_install() {
  local -a opts=()
  while [[ $# -gt 0 && $1 == -* ]]; do
    opts+=("$1")
    shift
  done
  local cmd="apt-get install -y ${opts[*]:+${opts[*]} }$*"
  if [[ $(id -u) -ne 0 ]]; then
    die "$* is not installed and installing it needs root: sudo $cmd"
  fi
  command -v apt-get >/dev/null || die "$* is not installed and apt-get is not available"
  local policy=/usr/sbin/policy-rc.d added_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    added_policy=1
  fi
  local rc=0
  {
    if [[ $_apt_updated -eq 0 ]]; then
      log "==> apt-get update"
      DEBIAN_FRONTEND=noninteractive apt-get update -qq
      _apt_updated=1
    fi
    log "==> $cmd"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${opts[@]}" "$@" >/dev/null
  } || rc=$?
  if [[ $added_policy -eq 1 ]]; then rm -f "$policy"; fi
  return "$rc"
}

# redis-server backs the queue in tests (started per test run) and in start.sh.
ensure_redis() {
  if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
    return 0
  fi
  apt_install redis-server
  command -v redis-server >/dev/null || die "redis-server is still not on PATH after installing it"
}

# True when $1 holds the server binaries we run directly.
_has_pg_server_bins() {
  local dir=$1
  [[ -n $dir && -x $dir/initdb && -x $dir/postgres && -x $dir/pg_ctl ]]
}

# Prints the directory with initdb, postgres and pg_ctl. Same search order as
# packages/testing/src/postgres-bin-dir.ts: $PG_BIN, pg_config --bindir, the highest
# /usr/lib/postgresql/<version>/bin, then PATH (Debian only links some tools into PATH).
find_pg_bin() {
  local -a candidates=()
  local dir
  if [[ -n ${PG_BIN:-} ]]; then candidates+=("$PG_BIN"); fi
  if command -v pg_config >/dev/null; then
    candidates+=("$(pg_config --bindir 2>/dev/null || true)")
  fi
  while IFS= read -r dir; do
    candidates+=("$dir")
  done < <(for dir in /usr/lib/postgresql/*/bin; do
    if [[ -d $dir ]]; then printf '%s\n' "$dir"; fi
  done | sort -V -r)
  if command -v initdb >/dev/null; then
    candidates+=("$(dirname "$(readlink -f "$(command -v initdb)")")")
  fi
  for dir in "${candidates[@]}"; do
    if _has_pg_server_bins "$dir"; then
      printf '%s\n' "$dir"
      return 0
    fi
  done
  return 1
}

# PostgreSQL holds the ledger and the memory store, in tests and in start.sh. Exports PG_BIN.
ensure_postgres() {
  local dir
  if ! dir="$(find_pg_bin)"; then
    apt_install postgresql
    dir="$(find_pg_bin)" || die "PostgreSQL server binaries not found even after installing postgresql"
  fi
  PG_BIN=$dir
  export PG_BIN
}

# promtool (from Debian's prometheus package) checks the Prometheus config, the alert and
# recording rules and each process's /metrics in the test command. Only the tool is wanted: the
# package's Prometheus server is kept from starting and from starting at boot, and the node
# exporter it recommends is left out.
ensure_promtool() {
  if command -v promtool >/dev/null; then
    return 0
  fi
  apt_install --no-install-recommends prometheus
  if command -v systemctl >/dev/null; then
    systemctl disable prometheus.service >/dev/null 2>&1 || true
    if [[ -d /run/systemd/system ]]; then systemctl stop prometheus.service >/dev/null 2>&1 || true; fi
  fi
  command -v promtool >/dev/null || die "promtool is still not on PATH after installing prometheus"
}

# Installs node modules when they are missing or the lockfile changed since the last install
# (recorded in a stamp inside node_modules, so deleting node_modules resets it). CI always installs:
# it starts from a fresh clone, and --frozen-lockfile there catches a stale lockfile.
ensure_node_deps() {
  local stamp="$MEMFLEET_ROOT/node_modules/.memfleet-install-stamp" want
  want="pnpm@${PNPM_VERSION} $(cat "$MEMFLEET_ROOT/pnpm-lock.yaml" "$MEMFLEET_ROOT/pnpm-workspace.yaml" | sha256sum | cut -d' ' -f1)"
  local in_ci=0
  if [[ -n ${CI:-} && ${CI:-} != false && ${CI:-} != 0 ]]; then in_ci=1; fi
  if [[ $in_ci -eq 0 && -d $MEMFLEET_ROOT/node_modules && -f $stamp && "$(<"$stamp")" == "$want" ]]; then
    return 0
  fi
  log "==> pnpm install --frozen-lockfile"
  (cd "$MEMFLEET_ROOT" && pnpm install --frozen-lockfile)
  printf '%s\n' "$want" >"$stamp"
}
