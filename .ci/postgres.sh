#!/usr/bin/env bash
# Start a throw-away PostgreSQL cluster on a loopback port for the test run, installing
# PostgreSQL from Debian's packages when it is missing. Prints the admin URL on stdout;
# everything else goes to stderr. Stop it with: .ci/postgres.sh stop
#   PGPORT (default 55432), PGRUN (default /tmp/easel-ci-pg) can be set.
set -euo pipefail
port="${PGPORT:-55432}"
run="${PGRUN:-/tmp/easel-ci-pg}"

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true; }
as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# The postgres user cannot enter root's directories: work from a neutral one.
cd /

if [ "${1:-}" = stop ]; then
    bin="$(bindir)"
    [ -n "$bin" ] && [ -d "$run/data" ] && as_owner "$bin/pg_ctl" -D "$run/data" -m immediate stop >&2 || true
    exit 0
fi

if [ -z "$(bindir)" ]; then
    echo "PostgreSQL is not installed: installing Debian's postgresql package" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql >&2
fi
bin="$(bindir)"

# A cluster of our own, owned by the postgres user when we are root (PostgreSQL refuses root).
if [ -d "$run/data" ]; then as_owner "$bin/pg_ctl" -D "$run/data" -m immediate stop >/dev/null 2>&1 || true; fi
rm -rf "$run"
mkdir -p "$run"
[ "$(id -u)" = 0 ] && chown postgres: "$run"
as_owner "$bin/initdb" -D "$run/data" -U postgres --auth=trust --no-sync -E UTF8 >/dev/null
if ! as_owner "$bin/pg_ctl" -D "$run/data" -l "$run/log" -w -t 60 start -o \
    "-c listen_addresses=127.0.0.1 -p $port -k $run -c max_connections=400 -c fsync=off \
     -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=256MB" >&2; then
    echo "PostgreSQL did not start (is port $port taken? set PGPORT); its log:" >&2
    cat "$run/log" >&2 || true
    exit 1
fi
echo "postgres://postgres@127.0.0.1:$port/postgres"
