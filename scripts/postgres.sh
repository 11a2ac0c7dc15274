#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for the tests (used by .ci/run).
#
#   bash scripts/postgres.sh start    # prints `export WORKFLOW_TEST_POSTGRES_URL=...` as its last stdout line
#   bash scripts/postgres.sh url      # the URL of the running cluster
#   bash scripts/postgres.sh restart  # a server crash + recovery (immediate stop, else SIGKILL), same port
#   bash scripts/postgres.sh stop     # stop it and delete its directory (idempotent)
#
# The cluster lives in a fresh `mktemp -d` directory, listens on 127.0.0.1 only, on the first free port
# from 55432 up, with trust auth for user `postgres`, and has a database `workflow_test`. Its directory
# and port are kept in a state file ($WORKFLOW_PG_STATE, default target/postgres-ci/state of this
# checkout), so `stop`/`restart`/`url` work from any working directory. `start` while the recorded
# cluster is up reuses it. Only the export line goes to stdout; all chatter goes to stderr.
# $WORKFLOW_PG_BIN overrides the server binaries directory (default /usr/lib/postgresql/15/bin).
set -euo pipefail

BIN=${WORKFLOW_PG_BIN:-/usr/lib/postgresql/15/bin}
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE=${WORKFLOW_PG_STATE:-$ROOT/target/postgres-ci/state}
DB=workflow_test

log() { echo "postgres.sh: $*" >&2; }

# Run a server program. PostgreSQL refuses to run as root, so as root use the `postgres` system user.
as_pg() {
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

url() { echo "postgres://postgres@127.0.0.1:$PORT/$DB"; }

# Loads DIR and PORT from the state file; fails if there is none.
load_state() { [ -f "$STATE" ] && . "$STATE" && [ -n "${DIR:-}" ] && [ -n "${PORT:-}" ]; }

running() { load_state && "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -t 2; }

install_server() {
  [ -x "$BIN/initdb" ] && return
  log "installing PostgreSQL 15 ($BIN/initdb is missing)"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -q >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql-15 >&2
}

start() {
  if running; then
    log "reusing the running cluster in $DIR"
    echo "export WORKFLOW_TEST_POSTGRES_URL=$(url)"
    return
  fi
  stop # a stale state file from a cluster that died: clean it up
  install_server

  # As root the directory must be reachable by `postgres`, so use /tmp whatever $TMPDIR says.
  local base=${TMPDIR:-/tmp}
  [ "$(id -u)" = 0 ] && base=/tmp
  DIR=$(mktemp -d "$base/workflow-pg.XXXXXX")
  # If anything below fails, take the half-made cluster down again.
  trap '[ -n "${STARTED:-}" ] || { as_pg "$BIN/pg_ctl" stop -D "$DIR/data" -m immediate >/dev/null 2>&1 || true; rm -rf "$DIR"; }' EXIT
  mkdir "$DIR/sock"
  [ "$(id -u)" = 0 ] && chown -R postgres: "$DIR"

  log "initdb in $DIR/data"
  as_pg "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust --encoding=UTF8 --locale=C \
    >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log" >&2; exit 1; }
  # initdb 15 has no -c/--set (that came in 16), so the settings go into postgresql.conf.
  cat >>"$DIR/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR/sock'
max_connections = 200
shared_buffers = 128MB
fsync = on
EOF

  # First port from 55432 up that nobody answers on and that the server manages to bind. The port is
  # a command-line option, which pg_ctl records in postmaster.opts and reuses on `restart`.
  for PORT in $(seq 55432 55531); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && continue
    if as_pg "$BIN/pg_ctl" start -D "$DIR/data" -l "$DIR/server.log" -o "-p $PORT" -w -t 60 >&2; then
      break
    fi
    tail -n 5 "$DIR/server.log" >&2 || true
    PORT=""
  done
  [ -n "$PORT" ] || { log "could not start the server on any port 55432..55531"; exit 1; }

  for _ in $(seq 60); do
    "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" && break
    sleep 0.5
  done
  "$BIN/pg_isready" -h 127.0.0.1 -p "$PORT" >&2
  "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres "$DB"

  mkdir -p "$(dirname "$STATE")"
  printf 'DIR=%q\nPORT=%q\n' "$DIR" "$PORT" >"$STATE"
  STARTED=1
  log "PostgreSQL $("$BIN/postgres" --version | awk '{print $3}') up in $DIR on 127.0.0.1:$PORT"
  echo "export WORKFLOW_TEST_POSTGRES_URL=$(url)"
}

stop() {
  load_state || { rm -f "$STATE"; return 0; }
  if [ -f "$DIR/data/postmaster.pid" ]; then
    log "stopping the cluster in $DIR"
    as_pg "$BIN/pg_ctl" stop -D "$DIR/data" -m fast -w -t 20 >&2 || kill_cluster
  fi
  rm -rf "$DIR" "$STATE"
}

# SIGKILL the postmaster postmaster.pid names and every child of it, for a server that does not
# stop when asked; shows what they were doing first, and waits until they are gone.
kill_cluster() {
  local pid children
  pid=$(head -n 1 "$DIR/data/postmaster.pid" 2>/dev/null) || return 0
  children=$(pgrep -P "$pid" | tr '\n' ' ') || true
  log "killing the cluster's processes ($pid $children); they were:"
  ps -o pid,stat,wchan:24,etime,args -p "$pid" ${children:+--ppid "$pid"} >&2 || true
  tail -n 20 "$DIR/server.log" >&2 || true
  kill -9 "$pid" $children 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$pid" $children 2>/dev/null || break
    sleep 0.2
  done
  rm -f "$DIR/data/postmaster.pid"
}

# A server crash and its recovery on the same port: an immediate shutdown (no checkpoint, as a
# crash), or, if that does not finish within 20 s (a loaded CI machine once kept one from
# finishing in 60 s), SIGKILL of every server process; then a start, which replays the WAL.
restart() {
  # Not `running`: a server that does not answer is one to restart.
  load_state && [ -f "$DIR/data/postmaster.pid" ] || { log "no cluster (state file $STATE)"; exit 1; }
  as_pg "$BIN/pg_ctl" stop -D "$DIR/data" -m immediate -w -t 20 >&2 || kill_cluster
  as_pg "$BIN/pg_ctl" start -D "$DIR/data" -l "$DIR/server.log" -o "-p $PORT" -w -t 60 >&2
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) restart ;;
  url) running || { log "no running cluster (state file $STATE)"; exit 1; }; url ;;
  *) echo "usage: $0 start|stop|restart|url" >&2; exit 2 ;;
esac
