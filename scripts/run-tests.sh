#!/usr/bin/env bash
# Run the whole suite on PostgreSQL. The database is, in order: $DATABASE_URL if set; the local
# server on 127.0.0.1:5432 if it answers; else a throwaway cluster started from the local
# PostgreSQL binaries (and removed afterwards). Redis is used when $REDIS_URL is set or a local
# one answers on 127.0.0.1:6379. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python=".venv/bin/python"

answers() { # host port -> 0 if a TCP connection opens
    "$python" - "$1" "$2" <<'PY'
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
except OSError:
    sys.exit(1)
PY
}

cleanup=()
trap 'for c in "${cleanup[@]}"; do eval "$c"; done' EXIT

if [ -z "${DATABASE_URL:-}" ]; then
    if answers 127.0.0.1 5432; then
        export DATABASE_URL="postgres://postgres@127.0.0.1:5432/sfpserver"
        echo "Using the local PostgreSQL on 127.0.0.1:5432"
    else
        bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
        if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
            echo "error: no PostgreSQL for the tests: set DATABASE_URL, start a server on 127.0.0.1:5432," >&2
            echo "or install PostgreSQL's server binaries (Debian: apt-get install postgresql)." >&2
            exit 1
        fi
        port=55432
        dir="$(mktemp -d /tmp/sfp-pg.XXXXXX)"
        run_as=()
        if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; run_as=(su postgres -c); fi
        echo "Starting a throwaway PostgreSQL cluster in $dir on port $port"
        init="'$bindir/initdb' -D '$dir/data' -U postgres -A trust >/dev/null"
        start="'$bindir/pg_ctl' -D '$dir/data' -l '$dir/log' -w -o \"-p $port -k $dir -c listen_addresses=127.0.0.1\" start >/dev/null"
        stop="'$bindir/pg_ctl' -D '$dir/data' -m fast stop >/dev/null"
        if [ ${#run_as[@]} -gt 0 ]; then
            "${run_as[@]}" "$init" && "${run_as[@]}" "$start"
            cleanup+=("su postgres -c \"$stop\"; rm -rf '$dir'")
        else
            eval "$init" && eval "$start"
            cleanup+=("$stop; rm -rf '$dir'")
        fi
        export DATABASE_URL="postgres://postgres@127.0.0.1:$port/sfpserver"
    fi
fi

if [ -z "${REDIS_URL:-}" ] && answers 127.0.0.1 6379; then
    export REDIS_URL="redis://127.0.0.1:6379/0"
fi

export DJANGO_SETTINGS_MODULE=sfpserver.settings.test
"$python" -m pytest "$@"
