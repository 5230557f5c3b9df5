#!/usr/bin/env bash
# Reproduces weft's resident memory growing with every burst of many
# concurrent connections (see "Problems found" in bench/README.md).
# Starts the bench backend (nginx) and weft (workers: 1), runs ROUNDS bursts
# of `wrk -c CONNS`, and prints weft's VmHWM/VmRSS/RssAnon after each.
# Needs what bench/run.sh installs and builds (run that once first).
# Usage: bench/rss-growth.sh [CONNS=1000] [ROUNDS=4]
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WEFT_BIN=${WEFT_BIN:-$BENCH_DIR/.build-release/core/weft}
CONNS=${1:-1000}
ROUNDS=${2:-4}
PORT_BACKEND=18180 PORT_WEFT=18183 PORT_ADMIN=18190
[[ -x $WEFT_BIN ]] || { echo "no $WEFT_BIN; run bench/run.sh first" >&2; exit 1; }

WORK=$(mktemp -d /tmp/weft-rss.XXXXXX)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/backend" "$WORK/weft"
cat >"$WORK/backend/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/backend/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $WORK/backend/tmp;
  server {
    listen 127.0.0.1:$PORT_BACKEND backlog=4096;
    location / { default_type text/plain; return 200 "hello from backend\n"; }
  }
}
EOF
cat >"$WORK/weft/weft.yaml" <<EOF
admin:
  address: 127.0.0.1:$PORT_ADMIN
workers: 1
listeners:
  - name: inbound
    address: 127.0.0.1:$PORT_WEFT
    upstream: backend
upstreams:
  - name: backend
    endpoints: [127.0.0.1:$PORT_BACKEND]
EOF

nginx -p "$WORK/backend" -e "$WORK/backend/error.log" -c "$WORK/backend/nginx.conf" >"$WORK/backend.log" 2>&1 &
PIDS+=($!)
"$WEFT_BIN" --config "$WORK/weft/weft.yaml" --log-level warning >"$WORK/weft.log" 2>&1 &
W=$!
PIDS+=("$W")
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT_ADMIN/ready" >/dev/null && break; sleep 0.1; done

mem() { printf '%-22s %s\n' "$1" "$(grep -E '^(VmHWM|VmRSS|RssAnon)' "/proc/$W/status" | tr -s ' \t\n' ' ')"; }
mem "idle"
for ((i = 1; i <= ROUNDS; i++)); do
  wrk -t2 -c"$CONNS" -d4s "http://127.0.0.1:$PORT_WEFT/" | grep -E 'requests in|Socket errors|Non-2xx' | sed 's/^ */  wrk: /'
  sleep 1
  mem "after burst $i (c$CONNS)"
done
