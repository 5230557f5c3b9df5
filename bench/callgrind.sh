#!/usr/bin/env bash
# Instructions per proxied request, counted by callgrind: deterministic where
# the CPU time bench/run.sh measures is noisy. Each configuration runs weft
# (release build) under callgrind, warms it up, zeroes the counters, sends a
# fixed load with wrk, dumps, and divides the instructions by the requests.
#
# Usage: bench/callgrind.sh [CONFIG...]   (default: plain metrics obs obslog)
# Knobs: SECONDS_PER_RUN=20 PORT_BASE=18180 BUILD_DIR=bench/.build-release
# It counts user-space instructions only: syscalls and the kernel's share
# (about 80% of weft's CPU per request) are not in these numbers.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$BENCH_DIR/.build-release}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-20}
PORT_BASE=${PORT_BASE:-18180}
PORT_BACKEND=$PORT_BASE
PORT_WEFT=$((PORT_BASE + 1))
PORT_ADMIN=$((PORT_BASE + 2))
PORT_OTLP=$((PORT_BASE + 3))
CONFIGS=("$@")
((${#CONFIGS[@]})) || CONFIGS=(plain metrics obs obslog)

log() { printf '[callgrind %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

WORK=$(mktemp -d /tmp/weft-callgrind.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

wait_200() {
  for _ in $(seq 600); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "$1" || true) == 200 ]] && return 0
    sleep 0.1
  done
  return 1
}

if [[ ! -f $BUILD_DIR/build.ninja ]]; then
  meson setup "$BUILD_DIR" "$REPO" --buildtype=release -Dtests=false >/dev/null
fi
ninja -C "$BUILD_DIR" core/weft plugins/metrics/metrics.so plugins/tracing/tracing.so \
  plugins/accesslog/accesslog.so >/dev/null

# the backend: nginx with a fixed 19-byte answer, as in bench/run.sh
mkdir -p "$WORK/backend/tmp"
cat >"$WORK/backend/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/backend/nginx.pid;
error_log $WORK/backend/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $WORK/backend/tmp;
  server { listen 127.0.0.1:$PORT_BACKEND; location / { return 200 "hello from backend\n"; } }
}
EOF
nginx -p "$WORK/backend" -c "$WORK/backend/nginx.conf" &
PIDS+=($!)
python3 -c '
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200); self.send_header("content-length", "0"); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()' "$PORT_OTLP" &
PIDS+=($!)
wait_200 "http://127.0.0.1:$PORT_BACKEND/" || die "backend did not start"

config() {  # config NAME -> weft.yaml on stdout
  local plugins="" extra=""
  case $1 in
    plain) ;;
    metrics) plugins="metrics" ;;
    obs) plugins="metrics, tracing" ;;
    obslog) plugins="metrics, tracing, accesslog"
            extra="accesslog: {path: $WORK/access.log}" ;;
    *) die "unknown config $1 (plain metrics obs obslog)" ;;
  esac
  cat <<EOF
admin: {address: 127.0.0.1:$PORT_ADMIN}
workers: 1
plugin_dirs: [$BUILD_DIR/plugins]
node: {workload: bench-v1, namespace: bench, service: bench, labels: {app: bench, version: v1}}
listeners:
  - name: inbound
    address: 127.0.0.1:$PORT_WEFT
    upstream: backend
    plugins: [$plugins]
upstreams:
  - {name: backend, endpoints: [127.0.0.1:$PORT_BACKEND]}
tracing: {sampling: 1, endpoint: http://127.0.0.1:$PORT_OTLP/v1/traces}
$extra
EOF
}

declare -A IPR
for c in "${CONFIGS[@]}"; do
  mkdir -p "$WORK/$c"
  config "$c" >"$WORK/$c/weft.yaml"
  valgrind --tool=callgrind --callgrind-out-file="$WORK/$c/out.%p" \
    "$BUILD_DIR/core/weft" --config "$WORK/$c/weft.yaml" --log-level warning \
    >"$WORK/$c/log" 2>&1 &
  pid=$!
  PIDS+=($pid)
  wait_200 "http://127.0.0.1:$PORT_ADMIN/ready" || die "$c: weft did not start: $(cat "$WORK/$c/log")"
  wrk -t1 -c8 -d3s "http://127.0.0.1:$PORT_WEFT/" >/dev/null
  callgrind_control -z "$pid" >/dev/null
  out=$(wrk -t1 -c8 -d"${SECONDS_PER_RUN}"s "http://127.0.0.1:$PORT_WEFT/")
  callgrind_control -d "$pid" >/dev/null
  reqs=$(awk '/requests in/{print $1}' <<<"$out")
  non2xx=$(awk '/Non-2xx/{print $NF}' <<<"$out")
  [[ -z $non2xx ]] || die "$c: $non2xx non-2xx answers"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  # the dump after -z holds the measured part; sum its totals over threads
  ir=0
  for f in "$WORK/$c"/out.*.*; do
    n=$(awk '/^(summary|totals):/{print $2; exit}' "$f")
    ir=$((ir + ${n:-0}))
  done
  IPR[$c]=$((ir / reqs))
  log "$c: $reqs requests, $ir instructions in the measured dumps, ${IPR[$c]} per request"
done

echo
echo "| configuration | instructions per request | vs plain |"
echo "|---|---|---|"
for c in "${CONFIGS[@]}"; do
  if [[ -n ${IPR[plain]:-} ]]; then
    r=$(awk -v a="${IPR[$c]}" -v b="${IPR[plain]}" 'BEGIN{printf "%+d (%.3fx)", a - b, a / b}')
  else
    r="n/a"
  fi
  echo "| $c | ${IPR[$c]} | $r |"
done
