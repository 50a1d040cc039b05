#!/usr/bin/env bash
# The start command: runs memfleet locally in the foreground. It starts Redis and Postgres (unless
# REDIS_URL / DATABASE_URL point elsewhere) with their data in .memfleet/, migrates, then runs the
# API and WORKER_PROCESSES workers with their output prefixed by name. Ctrl-C stops the apps
# gracefully (workers finish in-flight work), then the servers this script started.
#
# Settings (environment): API_PORT (3000), READER_PORT (3001), WORKER_PROCESSES (2), MEMFLEET_REDIS_PORT (6379),
# MEMFLEET_PG_PORT (5432), REDIS_URL, DATABASE_URL, MEMFLEET_API_KEYS, MEMFLEET_ADMIN_KEY, and
# every app setting documented in the README. MEMFLEET_ZEP_EMULATOR=1 also runs the Zep v3
# emulator (port MEMFLEET_ZEP_EMULATOR_PORT, 8089; in memory) and points MEMORY_BACKEND=zep at it;
# MEMFLEET_MEM0_EMULATOR=1 does the same for mem0's platform API (MEMFLEET_MEM0_EMULATOR_PORT, 8890).
#
# Many functions below run only through traps or wait_until, which ShellCheck cannot see.
# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib/system-deps.sh"
cd "$MEMFLEET_ROOT"

STATE_DIR="$MEMFLEET_ROOT/.memfleet"
API_PORT="${API_PORT:-3000}"
READER_PORT="${READER_PORT:-3001}"
WORKER_PROCESSES="${WORKER_PROCESSES:-2}"
REDIS_PORT="${MEMFLEET_REDIS_PORT:-6379}"
PG_PORT="${MEMFLEET_PG_PORT:-5432}"
ZEP_EMULATOR="${MEMFLEET_ZEP_EMULATOR:-0}"
ZEP_EMULATOR_PORT="${MEMFLEET_ZEP_EMULATOR_PORT:-8089}"
MEM0_EMULATOR="${MEMFLEET_MEM0_EMULATOR:-0}"
MEM0_EMULATOR_PORT="${MEMFLEET_MEM0_EMULATOR_PORT:-8890}"
READY_TIMEOUT_S=60
# Workers drain in-flight jobs on SIGTERM (WORKER_SHUTDOWN_TIMEOUT_MS, 25 s by default); allow
# a bit more before SIGKILL.
APP_STOP_TIMEOUT_S="${MEMFLEET_APP_STOP_TIMEOUT_S:-40}"
export API_PORT READER_PORT

[[ $WORKER_PROCESSES =~ ^[0-9]+$ ]] || die "WORKER_PROCESSES must be a number, got '$WORKER_PROCESSES'"

redis_pid=""
emulator_pid=""
redis_started=0
pg_started=0
pg_owner=""
app_pids=()
app_names=()
shutting_down=0
force_stop=0

# Runs a command as the unprivileged owner of the Postgres data when we are root, since initdb
# and postgres refuse to run as root; as anyone else it runs the command directly.
as_pg_owner() {
  if [[ -n $pg_owner ]]; then
    runuser -u "$pg_owner" -- "$@"
  else
    "$@"
  fi
}

# True when something accepts TCP connections on 127.0.0.1:$1 (bash's /dev/tcp, no extra tools).
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Waits until a command succeeds, up to $1 seconds; fails otherwise.
wait_until() {
  local timeout_s=$1 deadline
  shift
  deadline=$((SECONDS + timeout_s))
  until "$@"; do
    if ((SECONDS >= deadline)); then return 1; fi
    sleep 0.2
  done
}

# Prefixes each line of stdin with "[name] ". It ignores SIGINT/SIGTERM so that Ctrl-C in the
# terminal does not cut the apps' output while they are still shutting down: it ends at EOF.
prefix_lines() {
  trap '' INT TERM HUP
  exec sed -u "s/^/[$1] /"
}

# Starts Redis as a child of this script (not daemonized), with AOF persistence in .memfleet/redis.
# setsid keeps the terminal's Ctrl-C from reaching it, so it outlives the apps' graceful shutdown
# and is stopped last, by us.
start_redis() {
  local dir="$STATE_DIR/redis"
  mkdir -p "$dir"
  if port_in_use "$REDIS_PORT"; then
    # A Redis left behind by an earlier run that was killed: take it over only if it is ours.
    local its_dir
    its_dir="$(redis-cli -p "$REDIS_PORT" config get dir 2>/dev/null | sed -n 2p || true)"
    if [[ $its_dir == "$dir" ]]; then
      log "==> stopping the Redis left running on port $REDIS_PORT by an earlier run"
      redis-cli -p "$REDIS_PORT" shutdown >/dev/null 2>&1 || true
      wait_until 15 bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$REDIS_PORT) 2>/dev/null" ||
        die "the old Redis on port $REDIS_PORT did not stop"
    else
      die "port $REDIS_PORT is in use by something else; set MEMFLEET_REDIS_PORT, or REDIS_URL to use that Redis"
    fi
  fi
  log "==> starting Redis on 127.0.0.1:$REDIS_PORT (data in .memfleet/redis)"
  setsid redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$dir" \
    --appendonly yes --appendfsync everysec --maxmemory-policy noeviction \
    --hash-max-listpack-value 8192 \
    --daemonize no --logfile "$dir/redis.log" &
  redis_pid=$!
  redis_started=1
  if ! wait_until 30 redis_ready; then
    tail -n 20 "$dir/redis.log" >&2 || true
    die "Redis did not start; see .memfleet/redis/redis.log"
  fi
  export REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
}

# Ready means our process is alive and answering (a loading AOF answers -LOADING, not PONG).
redis_ready() {
  kill -0 "$redis_pid" 2>/dev/null || die "redis-server exited during start-up"
  [[ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]
}

# Picks who owns the Postgres data when we are root: the `postgres` account if there is one
# (Debian's package creates it), else `nobody`.
choose_pg_owner() {
  if [[ $(id -u) -ne 0 ]]; then
    pg_owner=""
  elif id -u postgres >/dev/null 2>&1; then
    pg_owner=postgres
  else
    pg_owner=nobody
  fi
}

# Creates the cluster in .memfleet/pg once, then starts it with pg_ctl and creates the `memfleet`
# database if missing. Sockets go to .memfleet/run so no system directory is needed.
start_postgres() {
  local data="$STATE_DIR/pg" run="$STATE_DIR/run" log_file="$STATE_DIR/postgres.log"
  choose_pg_owner
  mkdir -p "$run"
  if ((${#run} > 90)); then
    # Unix socket paths are limited to ~107 bytes; a deep checkout would not fit.
    run="$(mktemp -d /tmp/memfleet-run.XXXXXX)"
  fi
  if [[ -n $pg_owner ]]; then
    chown "$pg_owner" "$run"
    touch "$log_file"
    chown "$pg_owner" "$log_file"
    if ! runuser -u "$pg_owner" -- test -x "$STATE_DIR"; then
      die "user $pg_owner cannot reach $STATE_DIR (a parent directory is not world-searchable); set DATABASE_URL to use another Postgres"
    fi
  fi
  if [[ ! -f $data/PG_VERSION ]]; then
    log "==> creating the Postgres cluster in .memfleet/pg"
    mkdir -p "$data"
    chmod 700 "$data"
    if [[ -n $pg_owner ]]; then chown "$pg_owner" "$data"; fi
    as_pg_owner "$PG_BIN/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C >/dev/null
  fi
  if as_pg_owner "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    log "==> stopping the Postgres left running by an earlier run"
    as_pg_owner "$PG_BIN/pg_ctl" -D "$data" stop -m fast -w >/dev/null
  fi
  if port_in_use "$PG_PORT"; then
    die "port $PG_PORT is in use by something else; set MEMFLEET_PG_PORT, or DATABASE_URL to use that Postgres"
  fi
  log "==> starting Postgres on 127.0.0.1:$PG_PORT (data in .memfleet/pg)"
  # setsid: the server must not get the terminal's Ctrl-C before the workers have drained.
  if ! as_pg_owner setsid "$PG_BIN/pg_ctl" -D "$data" -l "$log_file" -w -t 60 \
    -o "-p $PG_PORT -h 127.0.0.1 -k $run" start >/dev/null; then
    tail -n 20 "$log_file" >&2 || true
    die "Postgres did not start; see .memfleet/postgres.log"
  fi
  pg_started=1
  local psql=("$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1)
  if [[ "$("${psql[@]}" -tAc "select 1 from pg_database where datname = 'memfleet'")" != 1 ]]; then
    "${psql[@]}" -c 'create database memfleet' >/dev/null
  fi
  # The fleet reaches this Postgres over its Unix socket (libpq's URL form: the socket's directory
  # in `host`), which spares each query the kernel's TCP work on both ends of the loopback.
  local socket_dir
  socket_dir="$(node -e 'process.stdout.write(encodeURIComponent(process.argv[1]))' "$(cd "$run" && pwd)")"
  export DATABASE_URL="postgres:///memfleet?host=$socket_dir&port=$PG_PORT&user=postgres"
}

# Runs the Zep v3 emulator (in memory) for MEMORY_BACKEND=zep without a Zep account. Like Redis
# it is stopped only after the workers, which may still be writing to it.
start_zep_emulator() {
  if port_in_use "$ZEP_EMULATOR_PORT"; then
    die "port $ZEP_EMULATOR_PORT is in use; set MEMFLEET_ZEP_EMULATOR_PORT"
  fi
  local key="${ZEP_API_KEY:-zep-emulator-key}"
  log "==> starting the Zep v3 emulator on 127.0.0.1:$ZEP_EMULATOR_PORT (in memory)"
  ZEP_EMULATOR_PORT="$ZEP_EMULATOR_PORT" ZEP_EMULATOR_API_KEY="$key" \
    setsid node --import tsx packages/testing/src/zep-emulator-main.ts \
    > >(prefix_lines zep-emulator) 2>&1 &
  emulator_pid=$!
  if ! wait_until 30 zep_emulator_ready; then
    die "the Zep emulator did not start"
  fi
  export MEMORY_BACKEND=zep ZEP_API_KEY="$key" ZEP_API_URL="http://127.0.0.1:$ZEP_EMULATOR_PORT/api/v2"
}

zep_emulator_ready() {
  kill -0 "$emulator_pid" 2>/dev/null || die "the Zep emulator exited during start-up"
  port_in_use "$ZEP_EMULATOR_PORT"
}

# Runs the mem0 emulator (platform API, in memory; events end after MEM0_EMULATOR_EVENT_LAG_MS)
# for MEMORY_BACKEND=mem0 without a mem0 account.
start_mem0_emulator() {
  if port_in_use "$MEM0_EMULATOR_PORT"; then
    die "port $MEM0_EMULATOR_PORT is in use; set MEMFLEET_MEM0_EMULATOR_PORT"
  fi
  local key="${MEM0_API_KEY:-mem0-emulator-key}"
  log "==> starting the mem0 emulator on 127.0.0.1:$MEM0_EMULATOR_PORT (in memory)"
  MEM0_EMULATOR_PORT="$MEM0_EMULATOR_PORT" MEM0_EMULATOR_API_KEY="$key" \
    MEM0_EMULATOR_EVENT_LAG_MS="${MEM0_EMULATOR_EVENT_LAG_MS:-200}" \
    setsid node --import tsx packages/testing/src/mem0-emulator-main.ts \
    > >(prefix_lines mem0-emulator) 2>&1 &
  emulator_pid=$!
  if ! wait_until 30 mem0_emulator_ready; then
    die "the mem0 emulator did not start"
  fi
  export MEMORY_BACKEND=mem0 MEM0_API_KEY="$key" MEM0_API_STYLE=platform \
    MEM0_API_URL="http://127.0.0.1:$MEM0_EMULATOR_PORT"
}

mem0_emulator_ready() {
  kill -0 "$emulator_pid" 2>/dev/null || die "the mem0 emulator exited during start-up"
  port_in_use "$MEM0_EMULATOR_PORT"
}

# Random keys generated once and kept in .memfleet/dev-keys.env, so that the curl examples and any
# client configured with them keep working across restarts. Keys set in the environment win.
load_dev_keys() {
  local file="$STATE_DIR/dev-keys.env"
  if [[ -n ${MEMFLEET_API_KEYS:-} && -n ${MEMFLEET_ADMIN_KEY:-} ]]; then return 0; fi
  if [[ ! -f $file ]]; then
    log "==> generating dev keys into .memfleet/dev-keys.env"
    local tenant_key admin_key
    tenant_key="$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')"
    admin_key="$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')"
    (
      umask 077
      printf '# Dev keys made by scripts/start.sh; delete this file for new ones.\n' >"$file"
      printf 'MEMFLEET_API_KEYS=dev:%s\n' "$tenant_key" >>"$file"
      printf 'MEMFLEET_ADMIN_KEY=%s\n' "$admin_key" >>"$file"
    )
  fi
  local set_api="${MEMFLEET_API_KEYS:-}" set_admin="${MEMFLEET_ADMIN_KEY:-}"
  # shellcheck disable=SC1090 # generated at run time
  source "$file"
  MEMFLEET_API_KEYS="${set_api:-$MEMFLEET_API_KEYS}"
  MEMFLEET_ADMIN_KEY="${set_admin:-$MEMFLEET_ADMIN_KEY}"
  export MEMFLEET_API_KEYS MEMFLEET_ADMIN_KEY
}

# Starts one app in its own session (only this script signals it), its output prefixed by name.
start_app() {
  local name=$1
  shift
  setsid "$@" > >(prefix_lines "$name") 2>&1 &
  app_pids+=("$!")
  app_names+=("$name")
}

# Prints the HTTP status of a GET, or 000 when nothing answers.
http_status() {
  if command -v curl >/dev/null; then
    curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" || true
  else
    node -e 'fetch(process.argv[1], { signal: AbortSignal.timeout(2000) })
      .then((r) => console.log(r.status), () => console.log("000"))' "$1"
  fi
}

# Ready when the API's and the reader's /readyz answer 200; fails at once if an app has exited.
api_ready() {
  local i
  for i in "${!app_pids[@]}"; do
    kill -0 "${app_pids[$i]}" 2>/dev/null || die "${app_names[$i]} exited during start-up (see its output above)"
  done
  [[ "$(http_status "http://127.0.0.1:$API_PORT/readyz")" == 200 ]] &&
    [[ "$(http_status "http://127.0.0.1:$READER_PORT/readyz")" == 200 ]]
}

# True while any app is still running.
apps_running() {
  local pid
  for pid in "${app_pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then return 0; fi
  done
  return 1
}

# Stops everything this script started, in order: apps first (SIGTERM, then SIGKILL after
# APP_STOP_TIMEOUT_S or on a second Ctrl-C), then Postgres and Redis, which the workers need
# while they drain. Runs once, on exit, whatever the reason.
shutdown() {
  if [[ $shutting_down -eq 1 ]]; then return; fi
  shutting_down=1
  trap 'force_stop=1; log "==> forcing the apps to stop"' INT TERM HUP
  local pid deadline
  if [[ ${#app_pids[@]} -gt 0 ]] && apps_running; then
    log "==> stopping the apps (SIGTERM; Ctrl-C again to force)"
    for pid in "${app_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    deadline=$((SECONDS + APP_STOP_TIMEOUT_S))
    while apps_running && ((SECONDS < deadline)) && [[ $force_stop -eq 0 ]]; do sleep 0.2; done
    if apps_running; then
      log "==> apps still running; sending SIGKILL"
      for pid in "${app_pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    fi
    for pid in "${app_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  fi
  if [[ -n $emulator_pid ]] && kill -0 "$emulator_pid" 2>/dev/null; then
    log "==> stopping the emulator"
    kill -TERM "$emulator_pid" 2>/dev/null || true
    wait "$emulator_pid" 2>/dev/null || true
  fi
  if [[ $pg_started -eq 1 ]]; then
    log "==> stopping Postgres"
    as_pg_owner "$PG_BIN/pg_ctl" -D "$STATE_DIR/pg" stop -m fast -w >/dev/null 2>&1 ||
      log "warning: pg_ctl stop failed; see .memfleet/postgres.log"
  fi
  if [[ $redis_started -eq 1 ]] && kill -0 "$redis_pid" 2>/dev/null; then
    log "==> stopping Redis"
    redis-cli -p "$REDIS_PORT" shutdown >/dev/null 2>&1 || kill -TERM "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
  log "==> memfleet stopped"
}

# Whoever reads our output may go first (`... | tee log` and Ctrl-C): a write must then fail
# rather than kill this script before it has stopped what it started.
trap '' PIPE
trap shutdown EXIT
trap 'log ""; log "==> interrupted"; exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Prints where everything is and a request to try, once the API is ready.
print_banner() {
  local api="http://127.0.0.1:$API_PORT" key="${MEMFLEET_API_KEYS#*:}" i
  key="${key%%,*}"
  cat >&2 <<EOF

memfleet is running (Ctrl-C to stop)
  API:        $api
  reader:     http://127.0.0.1:$READER_PORT   (GET /v1/threads/{id}/context?user_id=…)
  dashboard:  $api/admin/queues   (log in with any user name, password = admin key)
EOF
  for ((i = 0; i < WORKER_PROCESSES; i++)); do
    printf '  metrics:    http://127.0.0.1:%s/metrics   (worker-%s)\n' "$((9464 + i))" "$i" >&2
  done
  cat >&2 <<EOF
  backend:    ${MEMORY_BACKEND:-postgres}${ZEP_API_URL:+ ($ZEP_API_URL)}
  Redis:      $REDIS_URL
  Postgres:   $DATABASE_URL
  API keys:   $MEMFLEET_API_KEYS
  admin key:  $MEMFLEET_ADMIN_KEY

Try it:
  curl -sS -X POST $api/v1/threads/t-1/messages \\
    -H 'Authorization: Bearer $key' -H 'Content-Type: application/json' \\
    -d '{"user_id":"u1","messages":[{"client_message_id":"m-1","role":"user","content":"hello"}]}'
  curl -sS $api/v1/messages/m-1 -H 'Authorization: Bearer $key'
  curl -sS 'http://127.0.0.1:$READER_PORT/v1/threads/t-1/context?user_id=u1' -H 'Authorization: Bearer $key'

EOF
}

main() {
  ensure_redis
  ensure_postgres
  ensure_node_deps
  mkdir -p "$STATE_DIR"

  if [[ -z ${REDIS_URL:-} ]]; then start_redis; fi
  if [[ -z ${DATABASE_URL:-} ]]; then start_postgres; fi
  load_dev_keys
  case "$ZEP_EMULATOR" in
    1 | true) start_zep_emulator ;;
    0 | false | "") ;;
    *) die "MEMFLEET_ZEP_EMULATOR must be 1 or 0, got '$ZEP_EMULATOR'" ;;
  esac
  case "$MEM0_EMULATOR" in
    1 | true)
      [[ $ZEP_EMULATOR != 1 && $ZEP_EMULATOR != true ]] ||
        die "MEMFLEET_ZEP_EMULATOR and MEMFLEET_MEM0_EMULATOR cannot both be on"
      start_mem0_emulator
      ;;
    0 | false | "") ;;
    *) die "MEMFLEET_MEM0_EMULATOR must be 1 or 0, got '$MEM0_EMULATOR'" ;;
  esac

  log "==> running migrations"
  node --import tsx packages/db/src/migrate-cli.ts

  if port_in_use "$API_PORT"; then die "API_PORT $API_PORT is in use; set API_PORT"; fi
  if port_in_use "$READER_PORT"; then die "READER_PORT $READER_PORT is in use; set READER_PORT"; fi
  log "==> starting the API, the reader and $WORKER_PROCESSES worker(s)"
  # 32 MB semi-spaces (V8's default is 16): half as many scavenges of each request's and drain's
  # short-lived objects. docker/entrypoint.sh and the tests' harness start the services alike.
  local node_args=(--max-semi-space-size=32 --import tsx)
  start_app api node "${node_args[@]}" apps/api/src/main.ts
  start_app reader node "${node_args[@]}" apps/reader/src/main.ts
  local i
  for ((i = 0; i < WORKER_PROCESSES; i++)); do
    WORKER_METRICS_PORT=$((9464 + i)) start_app "worker-$i" node "${node_args[@]}" apps/worker/src/main.ts
  done

  if ! wait_until "$READY_TIMEOUT_S" api_ready; then
    die "the API or the reader did not answer 200 on /readyz within ${READY_TIMEOUT_S} s"
  fi
  print_banner

  # Runs until Ctrl-C (the trap exits) or until an app exits on its own, which stops the rest.
  local status=0
  wait -n "${app_pids[@]}" || status=$?
  for i in "${!app_pids[@]}"; do
    if ! kill -0 "${app_pids[$i]}" 2>/dev/null; then
      log "==> ${app_names[$i]} exited (status $status); stopping everything"
    fi
  done
  exit 1
}

main "$@"
