#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the PostgreSQL store's tests (not for data you keep).
#
#   scripts/pgTestCluster.sh start [DIR] [--durable]
#                                          initialise DIR (default: a new temp dir), start the
#                                          server on a free port over a Unix socket only, create
#                                          database `cantbook_test`, and print its URL on stdout
#                                          (use it as CANTBOOK_TEST_POSTGRES_URL)
#   scripts/pgTestCluster.sh restart DIR   stop that cluster (fast shutdown: sessions are cut)
#                                          and start it again on the same port and socket
#   scripts/pgTestCluster.sh stop DIR      stop that cluster and remove DIR
#
# By default fsync and synchronous_commit are off (fast and disposable, for tests); `--durable`
# keeps PostgreSQL's defaults (fsync, synchronous commit), as benchmarks comparing durable
# engines need. Authentication is `trust`: never for data you keep.
# initdb refuses to run as root, so when run as root the server runs as the `postgres` user.
set -euo pipefail

bindir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [[ -z "$dir" ]]; then
    echo "pgTestCluster: no PostgreSQL server found under /usr/lib/postgresql (apt-get install -y postgresql)" >&2
    exit 1
  fi
  echo "$dir"
}

as_owner() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();});'
}

cmd=${1:-}
case "$cmd" in
  start)
    bin=$(bindir)
    dir=""
    durable=0
    for arg in "${@:2}"; do
      if [[ "$arg" == "--durable" ]]; then durable=1; else dir=$arg; fi
    done
    dir=${dir:-$(mktemp -d /tmp/cantbook-pg-XXXXXX)}
    mkdir -p "$dir/data" "$dir/socket"
    if [[ $(id -u) -eq 0 ]]; then chown -R postgres:postgres "$dir"; fi
    port=$(free_port)
    as_owner "$bin/initdb" -D "$dir/data" -A trust -U postgres >"$dir/initdb.log" 2>&1
    options="-p $port -k $dir/socket -c listen_addresses='' -c max_connections=200"
    if [[ $durable -eq 0 ]]; then options="$options -c fsync=off -c synchronous_commit=off -c full_page_writes=off"; fi
    echo "$options" >"$dir/options"
    as_owner "$bin/pg_ctl" -D "$dir/data" -w -l "$dir/server.log" -o "$options" start >/dev/null
    echo "$port" >"$dir/port"
    as_owner "$bin/createdb" -h "$dir/socket" -p "$port" -U postgres cantbook_test
    echo "postgresql://postgres@/cantbook_test?host=$dir/socket&port=$port"
    ;;
  restart)
    dir=${2:?usage: pgTestCluster.sh restart DIR}
    bin=$(bindir)
    as_owner "$bin/pg_ctl" -D "$dir/data" -w -m fast stop >/dev/null
    as_owner "$bin/pg_ctl" -D "$dir/data" -w -l "$dir/server.log" -o "$(cat "$dir/options")" start >/dev/null
    ;;
  stop)
    dir=${2:?usage: pgTestCluster.sh stop DIR}
    bin=$(bindir)
    if [[ -d "$dir/data" ]]; then as_owner "$bin/pg_ctl" -D "$dir/data" -w -m fast stop >/dev/null || true; fi
    rm -rf "$dir"
    ;;
  *)
    echo "usage: pgTestCluster.sh start [DIR] [--durable] | restart DIR | stop DIR" >&2
    exit 2
    ;;
esac
