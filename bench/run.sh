#!/usr/bin/env bash
# weft benchmark: weft vs nginx vs HAProxy as keep-alive reverse proxies in
# front of the same backend. See bench/README.md for what is measured and how.
#
# Usage: bench/run.sh            (run as root, or with sudo available, if
#                                 packages are missing)
# Knobs (environment): DURATION=10 WARMUP=1 RUNS=3 PORT_BASE=18080
#                      BASELINE=1 (also load the backend directly, no proxy)
#                      ROUTER=1 (also weft with the router plugin and one rule)
#                      POLICY=1 (also weft with the ratelimit and acl plugins,
#                                3 limits and 3 ACL rules)
#                      OBS=1 (also weft with metrics + tracing at 1% sampling,
#                                and that plus the access log to a file)
#                      FULL=1 (also weft with the full chain: router, acl,
#                                ratelimit, metrics and tracing at 1%)
#                      ALLPLUGINS=1 (also idle memory of weft with every
#                                plugin and top-level tls: certificates)
#                      WORKERS=1 (proxy workers: weft workers, nginx
#                                worker_processes, HAProxy nbthread; 2 also
#                                makes wrk use 2 threads)
#                      BACKEND_WORKERS=1 (the backend nginx's workers)
#                      TARGETS="weft weftpolicy" (measure only these, in this
#                                rotation; default: weft nginx haproxy, then
#                                weftrouter, weftpolicy, weftobs, weftobslog,
#                                weftfull, weftall and backend as enabled)
#                      BUILD_DIR=bench/.build-release
#                      SKIP_BUILD=1 (use the binaries in BUILD_DIR as they
#                                are, for a tree that is being edited)
#                      SUMMARY_FILE, DETAIL_FILE (set by bench/all.sh: append
#                                the issue-7 target rows to SUMMARY_FILE and
#                                write the report to DETAIL_FILE instead of
#                                bench/results/<stamp>.md)
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$BENCH_DIR/.build-release}
DURATION=${DURATION:-10}   # seconds per measured wrk run
WARMUP=${WARMUP:-1}        # seconds of unmeasured load before each measurement
RUNS=${RUNS:-3}            # every reported number is the median over RUNS runs
BASELINE=${BASELINE:-1}
ROUTER=${ROUTER:-1}
POLICY=${POLICY:-1}
OBS=${OBS:-1}
FULL=${FULL:-1}
ALLPLUGINS=${ALLPLUGINS:-1}
WORKERS=${WORKERS:-1}
BACKEND_WORKERS=${BACKEND_WORKERS:-1}
SKIP_BUILD=${SKIP_BUILD:-0}
WRK_THREADS=${WRK_THREADS:-$WORKERS}   # wrk threads (never more than connections)
PORT_BASE=${PORT_BASE:-18080}
TARGETS=${TARGETS:-}
SUMMARY_FILE=${SUMMARY_FILE:-}
DETAIL_FILE=${DETAIL_FILE:-}

PORT_BACKEND=$PORT_BASE
PORT_NGINX=$((PORT_BASE + 1))
PORT_HAPROXY=$((PORT_BASE + 2))
PORT_WEFT=$((PORT_BASE + 3))
PORT_WEFT_ADMIN=$((PORT_BASE + 20))
PORT_WEFTROUTER=$((PORT_BASE + 4))
PORT_WEFTROUTER_ADMIN=$((PORT_BASE + 21))
PORT_WEFTPOLICY=$((PORT_BASE + 5))
PORT_WEFTPOLICY_ADMIN=$((PORT_BASE + 22))
PORT_WEFTOBS=$((PORT_BASE + 6))
PORT_WEFTOBS_ADMIN=$((PORT_BASE + 23))
PORT_WEFTOBSLOG=$((PORT_BASE + 7))
PORT_WEFTOBSLOG_ADMIN=$((PORT_BASE + 24))
PORT_OTLP=$((PORT_BASE + 25))   # a sink that takes the span exports
PORT_WEFTFULL=$((PORT_BASE + 8))
PORT_WEFTFULL_ADMIN=$((PORT_BASE + 26))
PORT_WEFTALL=$((PORT_BASE + 9))
PORT_WEFTALL_ADMIN=$((PORT_BASE + 27))
OBS_SAMPLING=1                  # tracing sampling, percent
# every plugin in plugins/ (weftall loads them all; the report says if
# plugins/ has one that is not in this list)
ALL_PLUGINS=(router acl ratelimit metrics tracing accesslog)
POLICY_RULES=3   # limits in the ratelimit settings, and rules in the acl settings, below

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- packages
ensure_packages() {
  local missing=() p
  for p in haproxy wrk meson ninja-build pkg-config curl libglib2.0-dev libsoup-3.0-dev \
           libgnutls28-dev libjson-glib-dev libyaml-dev libnghttp2-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  # either nginx flavour will do; nginx-light is the smaller one
  if ! dpkg-query -W -f='${Status}' nginx-light 2>/dev/null | grep -q 'install ok installed' &&
     ! dpkg-query -W -f='${Status}' nginx 2>/dev/null | grep -q 'install ok installed'; then
    missing+=(nginx-light)
  fi
  if ((${#missing[@]})); then
    log "installing missing packages: ${missing[*]}"
    local sudo=()
    ((EUID == 0)) || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
  command -v nginx >/dev/null || PATH=$PATH:/usr/sbin
  command -v nginx >/dev/null && command -v haproxy >/dev/null && command -v wrk >/dev/null ||
    die "nginx, haproxy or wrk not found after install"
}

# ---------------------------------------------------------------- processes
STARTED=()   # every pid this script started; the EXIT trap stops them all
WORK=""

is_alive() {  # alive and not a zombie
  [[ -r /proc/$1/stat ]] || return 1
  local st; st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [[ -n $st && $st != Z ]]
}

children_of() { ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' ' || true; }

stop_pid() {
  local pid=$1 i kids
  is_alive "$pid" || { wait "$pid" 2>/dev/null || true; return 0; }
  kids=$(children_of "$pid")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do is_alive "$pid" || break; sleep 0.1; done
  if is_alive "$pid"; then
    log "pid $pid did not stop on SIGTERM within 10 s; sending SIGKILL"
    for k in $kids; do kill -KILL "$k" 2>/dev/null || true; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  # workers of a master that died first would be orphans: stop them too
  for k in $kids; do is_alive "$k" && kill -KILL "$k" 2>/dev/null || true; done
}

cleanup() {
  local rc=$? pid
  for pid in "${STARTED[@]}"; do stop_pid "$pid"; done
  [[ -n $WORK && -d $WORK && ${KEEP_WORK:-0} != 1 ]] && rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start <logfile> <cmd...>: runs cmd in the background, sets START_PID
start() {
  local logf=$1; shift
  "$@" >"$logf" 2>&1 &
  START_PID=$!
  STARTED+=("$START_PID")
}

wait_http_200() {  # url, pid to watch
  local i
  for ((i = 0; i < 100; i++)); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$1" 2>/dev/null) == 200 ]] && return 0
    is_alive "$2" || return 1
    sleep 0.1
  done
  return 1
}

port_free() { [[ -z $(ss -ltnH "sport = :$1" 2>/dev/null) ]]; }

# ---------------------------------------------------------------- /proc sampling
# all processes of a proxy: its main pid and its direct children (nginx and
# haproxy workers); weft is one process (a main thread and worker threads)
proc_pids() { echo "$1"; children_of "$1"; }

cpu_ticks() {  # utime+stime of every process (all its threads) in ticks
  local total=0 p f
  for p in $(proc_pids "$1"); do
    f=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null) || continue
    # after "pid (comm) " field 1 is state; utime/stime are fields 12/13
    total=$((total + $(cut -d' ' -f12 <<<"$f") + $(cut -d' ' -f13 <<<"$f")))
  done
  echo "$total"
}

mem_kb() {  # sum of VmRSS, RssAnon (from status) and Pss (smaps_rollup), kB
  local rss=0 anon=0 pss=0 p v
  for p in $(proc_pids "$1"); do
    v=$(awk '/^VmRSS:/{print $2}' "/proc/$p/status" 2>/dev/null) && rss=$((rss + ${v:-0}))
    v=$(awk '/^RssAnon:/{print $2}' "/proc/$p/status" 2>/dev/null) && anon=$((anon + ${v:-0}))
    v=$(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup" 2>/dev/null) && pss=$((pss + ${v:-0}))
  done
  echo "$rss $anon $pss"
}

nprocs() { proc_pids "$1" | grep -c .; }

# The machine may be shared. To show how much that disturbed a run, sample
# the whole machine's busy (user+nice+system+steal) and total CPU ticks
# (/proc/stat) and subtract what the benchmark itself used (target, backend,
# and wrk via `times`). irq/softirq time is left out of "busy": loopback
# networking runs there and is not charged to any process.
machine_ticks() { awk '/^cpu /{print $2+$3+$4+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
own_children_ticks() {  # CPU of this shell's reaped children (wrk, curl), ticks
  times >"$WORK/times"
  awk -v hz="$HZ" 'function s(x, a) { sub(/s$/, "", x); split(x, a, "m"); return a[1] * 60 + a[2] }
                   NR == 2 { printf "%d\n", (s($1) + s($2)) * hz }' "$WORK/times"
}
snap() {  # snap <target pid> -> "busy total target backend children"
  local tp=0
  [[ $1 != "$BACKEND_PID" ]] && tp=$(cpu_ticks "$1")
  echo "$(machine_ticks) $tp $(cpu_ticks "$BACKEND_PID") $(own_children_ticks)"
}
backend_pct() {  # backend_pct "<snap before>" "<snap after>" <duration us> -> backend CPU, % of one core
  awk -v a="$1" -v b="$2" -v d="$3" -v hz="$HZ" 'BEGIN{ split(a, x, " "); split(b, y, " ")
    printf "%.0f", 100 * (y[4]-x[4]) / hz / (d / 1e6) }'
}
foreign_pct() {  # foreign_pct "<snap before>" "<snap after>" -> % of all cores used by others
  awk -v a="$1" -v b="$2" 'BEGIN{ split(a, x, " "); split(b, y, " ")
    other = (y[1]-x[1]) - (y[3]-x[3]) - (y[4]-x[4]) - (y[5]-x[5]); if (other < 0) other = 0
    printf "%.0f", 100 * other / (y[2]-x[2]) }'
}

# ---------------------------------------------------------------- configs
# the ratelimit and acl settings of weftpolicy, weftfull and weftall: the
# rates are so high that nothing is refused and the foo-only limit never
# matches; every benchmark request (GET / from 127.0.0.1) passes the DENY
# policy and is allowed by the loopback-get rule, so every request gets 200
policy_settings() {
  cat <<EOF
ratelimit:
  limits:
    - name: per-source
      rate: 100000000/s
      key: source_ip
    - name: total
      rate: 100000000/s
    - name: foo-only
      rate: 10/s
      match:
        to: [{operation: {paths: [/never-requested]}}]
acl:
  policies:
    - name: deny-admin
      action: DENY
      rules:
        - to: [{operation: {paths: [/admin, "/admin/*"]}}]
    - name: allow-callers
      action: ALLOW
      rules:
        - name: loopback-get
          from: [{source: {ipBlocks: [127.0.0.0/8]}}]
          to: [{operation: {methods: [GET, HEAD]}}]
        - name: other
          from: [{source: {ipBlocks: [10.0.0.0/8]}}]
EOF
}

# virtual_service: a VirtualService for every host, its http: rules from stdin
virtual_service() {
  cat <<EOF
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: backend}
spec:
  hosts: ["*"]
  http:
EOF
  cat
}

# the router rules of weftfull and weftall: a few rules, and only the last,
# the catch-all, matches the benchmark's GET /; the others are tried first
full_routes() {
  virtual_service <<EOF
    - name: api
      match: [{uri: {prefix: /api/}}]
      route: [{destination: {host: canary}}]
    - name: canary-header
      match: [{headers: {x-canary: {exact: "1"}}}]
      route: [{destination: {host: canary}}]
    - name: health
      match: [{uri: {exact: /healthz}, method: {exact: GET}}]
      route: [{destination: {host: canary}}]
    - name: default
      route: [{destination: {host: backend}}]
EOF
}

# full_config <admin port> <port> <plugins> <listener tls line> <extra
# settings>: the weft.yaml of the full chain, on stdout: router (full_routes),
# acl and ratelimit (policy_settings), tracing at OBS_SAMPLING% to the OTLP
# sink, and whatever else <plugins> and <extra settings> add
full_config() {
  cat <<EOF
admin:
  address: 127.0.0.1:$1
workers: $WORKERS
plugin_dirs: [$BUILD_DIR/plugins]
node: {workload: bench-v1, namespace: bench, service: bench, labels: {app: bench, version: v1}}
listeners:
  - name: inbound
    address: 127.0.0.1:$2
    plugins: [$3]
EOF
  [[ -n $4 ]] && echo "$4"
  cat <<EOF
upstreams:
  - name: backend
    endpoints: [127.0.0.1:$PORT_BACKEND]
  - name: canary
    endpoints: [127.0.0.1:$PORT_BACKEND]
tracing:
  sampling: $OBS_SAMPLING
  endpoint: http://127.0.0.1:$PORT_OTLP/v1/traces
$(policy_settings)
$5
$(full_routes)
EOF
}

# weftfull: the full chain of issue 7 in one listener; weftall: every plugin
# in plugins/ plus the workload's tls: certificates and a PERMISSIVE listener
# (plaintext is still served), for its idle memory
write_full_configs() {
  full_config "$PORT_WEFTFULL_ADMIN" "$PORT_WEFTFULL" "router, acl, ratelimit, metrics, tracing" "" "" \
    >"$WORK/weftfull/weft.yaml"
  full_config "$PORT_WEFTALL_ADMIN" "$PORT_WEFTALL" "$(IFS=,; sed 's/,/, /g' <<<"${ALL_PLUGINS[*]}")" \
    "    tls: {mode: PERMISSIVE}" \
    "$(printf 'tls:\n  cert: %s\n  key: %s\n  bundle: %s\naccesslog: {path: %s}' \
      "$WORK/weftall/certs/bench.pem" "$WORK/weftall/certs/bench-key.pem" \
      "$WORK/weftall/certs/ca.pem" "$WORK/weftall/access.log")" >"$WORK/weftall/weft.yaml"
}

# weftall's certificates: a mesh CA and one workload certificate, from weftctl
make_weftall_certs() {
  local ctl=$BUILD_DIR/ctl/weftctl d=$WORK/weftall/certs
  mkdir -p "$d"
  "$ctl" cert ca --trust-domain cluster.local --out-dir "$d" >/dev/null
  "$ctl" cert issue --namespace bench --service-account bench --ca "$d/ca.pem" --ca-key "$d/ca-key.pem" --out-dir "$d" >/dev/null
}

# nginx_head <dir> <workers> <error_log level>: the start of every
# nginx.conf here: pid and error log in <dir>, 4096 connections, and in
# http {}: no access log, unlimited keep-alive requests, 75 s idle timeout
nginx_head() {
  cat <<EOF
worker_processes $2;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log $3;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
EOF
}

# nginx_proxy_head <dir> <workers> <error_log level>: nginx_head, the temp
# paths in <dir> and the keep-alive pool "backend" to the backend
nginx_proxy_head() {
  nginx_head "$@"
  cat <<EOF
  client_body_temp_path $1/tmp-body;
  proxy_temp_path $1/tmp-proxy;
  upstream backend {
    server 127.0.0.1:$PORT_BACKEND;
    keepalive 128;
    keepalive_requests 1000000;
  }
EOF
}

write_configs() {
  mkdir -p "$WORK"/{backend,nginx,haproxy,weft,weftrouter,weftpolicy,weftobs,weftobslog,weftfull,weftall,otlp}
  # backend: nginx, $BACKEND_WORKERS worker(s), fixed 19-byte body, no logging, unlimited keep-alive
  {
    nginx_head "$WORK/backend" "$BACKEND_WORKERS" warn
    cat <<EOF
  client_body_temp_path $WORK/backend/tmp;
  server {
    listen 127.0.0.1:$PORT_BACKEND backlog=4096;
    location = /nginx_status { stub_status; }
    location / { default_type text/plain; return 200 "hello from backend\n"; }
  }
}
EOF
  } >"$WORK/backend/nginx.conf"
  # nginx as a reverse proxy: $WORKERS worker(s), keep-alive pool to the backend
  {
    nginx_proxy_head "$WORK/nginx" "$WORKERS" warn
    cat <<EOF
  server {
    listen 127.0.0.1:$PORT_NGINX backlog=4096;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
  } >"$WORK/nginx/nginx.conf"
  # HAProxy: master-worker mode (as the Debian unit runs it), $WORKERS thread(s),
  # HTTP mode with keep-alive on both sides (the default)
  cat >"$WORK/haproxy/haproxy.cfg" <<EOF
global
  nbthread $WORKERS
  maxconn 4096
defaults
  mode http
  option http-keep-alive
  timeout connect 5s
  timeout client 75s
  timeout server 75s
  timeout http-keep-alive 75s
frontend fe
  bind 127.0.0.1:$PORT_HAPROXY
  default_backend be
backend be
  server backend 127.0.0.1:$PORT_BACKEND
EOF
  # weft: its config alone in its own directory (weft watches the directory)
  cat >"$WORK/weft/weft.yaml" <<EOF
admin:
  address: 127.0.0.1:$PORT_WEFT_ADMIN
workers: $WORKERS
listeners:
  - name: inbound
    address: 127.0.0.1:$PORT_WEFT
    upstream: backend
upstreams:
  - name: backend
    endpoints: [127.0.0.1:$PORT_BACKEND]
EOF
  # the same with the router plugin and one rule: what routing costs
  {
    cat <<EOF
admin:
  address: 127.0.0.1:$PORT_WEFTROUTER_ADMIN
workers: $WORKERS
plugin_dirs: [$BUILD_DIR/plugins]
listeners:
  - name: inbound
    address: 127.0.0.1:$PORT_WEFTROUTER
    plugins: [router]
upstreams:
  - name: backend
    endpoints: [127.0.0.1:$PORT_BACKEND]
EOF
    echo "    - route: [{destination: {host: backend}}]" | virtual_service
  } >"$WORK/weftrouter/weft.yaml"
  # the same with the ratelimit and acl plugins, 3 limits and 3 ACL rules
  # (policy_settings): what evaluating them costs
  cat >"$WORK/weftpolicy/weft.yaml" <<EOF
admin:
  address: 127.0.0.1:$PORT_WEFTPOLICY_ADMIN
workers: $WORKERS
plugin_dirs: [$BUILD_DIR/plugins]
listeners:
  - name: inbound
    address: 127.0.0.1:$PORT_WEFTPOLICY
    upstream: backend
    plugins: [ratelimit, acl]
upstreams:
  - name: backend
    endpoints: [127.0.0.1:$PORT_BACKEND]
$(policy_settings)
EOF
  # weft with the observability plugins: Istio metrics, and tracing at
  # $OBS_SAMPLING% exporting OTLP/HTTP to a local sink; weftobslog adds the
  # JSON access log, written to a file
  local obs
  for obs in weftobs weftobslog; do
    local port=$PORT_WEFTOBS admin=$PORT_WEFTOBS_ADMIN plugins="metrics, tracing" extra=""
    if [[ $obs == weftobslog ]]; then
      port=$PORT_WEFTOBSLOG admin=$PORT_WEFTOBSLOG_ADMIN plugins="metrics, tracing, accesslog"
      extra="accesslog: {path: $WORK/weftobslog/access.log}"
    fi
    cat >"$WORK/$obs/weft.yaml" <<EOF
admin:
  address: 127.0.0.1:$admin
workers: $WORKERS
plugin_dirs: [$BUILD_DIR/plugins]
node: {workload: bench-v1, namespace: bench, service: bench, labels: {app: bench, version: v1}}
listeners:
  - name: inbound
    address: 127.0.0.1:$port
    upstream: backend
    plugins: [$plugins]
upstreams:
  - name: backend
    endpoints: [127.0.0.1:$PORT_BACKEND]
tracing:
  sampling: $OBS_SAMPLING
  endpoint: http://127.0.0.1:$PORT_OTLP/v1/traces
$extra
EOF
  done
  write_full_configs
}

# a collector stand-in: answers every export with 200 and counts the bytes
start_otlp_sink() {
  cat >"$WORK/otlp/sink.py" <<'EOF'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("content-length", 0))
        self.rfile.read(n)
        with open(sys.argv[2], "a") as fh:
            fh.write(f"{n}\n")
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
  start "$WORK/otlp/out.log" python3 "$WORK/otlp/sink.py" "$PORT_OTLP" "$WORK/otlp/posts"
  OTLP_PID=$START_PID
}

WEFT_BIN=""
TARGET_LIST=()
has() { [[ " ${TARGET_LIST[*]} " == *" $1 "* ]]; }   # is <target> measured in this run?
start_target() {  # name -> START_PID, TARGET_PORT
  case $1 in
    nginx)
      start "$WORK/nginx/out.log" nginx -p "$WORK/nginx" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf"
      TARGET_PORT=$PORT_NGINX ;;
    haproxy)
      start "$WORK/haproxy/out.log" haproxy -W -db -f "$WORK/haproxy/haproxy.cfg"
      TARGET_PORT=$PORT_HAPROXY ;;
    weftrouter)
      start "$WORK/weftrouter/out.log" "$WEFT_BIN" --config "$WORK/weftrouter/weft.yaml" --log-level warning
      TARGET_PORT=$PORT_WEFTROUTER
      wait_http_200 "http://127.0.0.1:$PORT_WEFTROUTER_ADMIN/ready" "$START_PID" ||
        die "weft with the router did not become ready; log: $(cat "$WORK/weftrouter/out.log")" ;;
    weftpolicy)
      start "$WORK/weftpolicy/out.log" "$WEFT_BIN" --config "$WORK/weftpolicy/weft.yaml" --log-level warning
      TARGET_PORT=$PORT_WEFTPOLICY
      wait_http_200 "http://127.0.0.1:$PORT_WEFTPOLICY_ADMIN/ready" "$START_PID" ||
        die "weft with the policy plugins did not become ready; log: $(cat "$WORK/weftpolicy/out.log")"
      # the benchmark path must be proxied: a 403 or 429 would make every
      # measured request a cheap refusal
      local code
      code=$(curl -s -o "$WORK/weftpolicy/check.body" -w '%{http_code}' --max-time 2 "http://127.0.0.1:$PORT_WEFTPOLICY/" || true)
      [[ $code == 200 ]] ||
        die "weft with the policy plugins answers ${code:-nothing}, not 200, to GET /: $(cat "$WORK/weftpolicy/check.body" 2>/dev/null); log: $(cat "$WORK/weftpolicy/out.log")" ;;
    weftfull|weftall)
      local port=$PORT_WEFTFULL admin=$PORT_WEFTFULL_ADMIN code
      [[ $1 == weftall ]] && port=$PORT_WEFTALL admin=$PORT_WEFTALL_ADMIN
      start "$WORK/$1/out.log" "$WEFT_BIN" --config "$WORK/$1/weft.yaml" --log-level warning
      TARGET_PORT=$port
      wait_http_200 "http://127.0.0.1:$admin/ready" "$START_PID" ||
        die "$1 did not become ready; log: $(cat "$WORK/$1/out.log")"
      # the benchmark path must be proxied (not a cheap 403, 404 or 429), and
      # the chain must be live: the acl refuses /admin
      code=$(curl -s -o "$WORK/$1/check.body" -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/" || true)
      [[ $code == 200 ]] ||
        die "$1 answers ${code:-nothing}, not 200, to GET /: $(cat "$WORK/$1/check.body" 2>/dev/null); log: $(cat "$WORK/$1/out.log")"
      code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/admin" || true)
      [[ $code == 403 ]] || die "$1 answers ${code:-nothing}, not the acl's 403, to GET /admin: is the chain loaded?" ;;
    weftobs|weftobslog)
      local port=$PORT_WEFTOBS admin=$PORT_WEFTOBS_ADMIN
      [[ $1 == weftobslog ]] && port=$PORT_WEFTOBSLOG admin=$PORT_WEFTOBSLOG_ADMIN
      start "$WORK/$1/out.log" "$WEFT_BIN" --config "$WORK/$1/weft.yaml" --log-level warning
      TARGET_PORT=$port
      wait_http_200 "http://127.0.0.1:$admin/ready" "$START_PID" ||
        die "$1 did not become ready; log: $(cat "$WORK/$1/out.log")" ;;
    weft)
      start "$WORK/weft/out.log" "$WEFT_BIN" --config "$WORK/weft/weft.yaml" --log-level warning
      TARGET_PORT=$PORT_WEFT
      wait_http_200 "http://127.0.0.1:$PORT_WEFT_ADMIN/ready" "$START_PID" ||
        die "weft did not become ready; log: $(cat "$WORK/weft/out.log")" ;;
  esac
  wait_http_200 "http://127.0.0.1:$TARGET_PORT/" "$START_PID" ||
    die "$1 does not answer 200 on port $TARGET_PORT; log: $(cat "$WORK/$1/out.log" 2>/dev/null)"
}

backend_accepts() {
  curl -s --max-time 2 "http://127.0.0.1:$PORT_BACKEND/nginx_status" | awk 'NR==3{print $1}'
}

# wrk_parse <BENCH line of report.lua>: sets W_<key> for each key=value,
# and W_errors, the sum of wrk's error counts
wrk_parse() {
  local kv
  for kv in ${1#BENCH }; do printf -v "W_${kv%%=*}" '%s' "${kv#*=}"; done
  W_errors=$((W_connect + W_read + W_write + W_status + W_timeout))
}

# run_wrk <conns> <port> <seconds> -> sets W_* from the report.lua line;
# wrk uses WRK_THREADS threads (1 unless WORKERS=2), at most one per connection
run_wrk() {
  local out line
  local threads=$WRK_THREADS
  (( threads > $1 )) && threads=$1   # wrk needs at least one connection per thread
  out=$(wrk -t"$threads" -c"$1" -d"$3"s --latency -s "$BENCH_DIR/report.lua" "http://127.0.0.1:$2/" 2>&1) ||
    die "wrk failed: $out"
  printf '%s\n' "$out" >>"$WORK/wrk.log"
  line=$(grep '^BENCH ' <<<"$out") || die "no BENCH line in wrk output: $out"
  wrk_parse "$line"
}

declare -A R   # R[target:metric] = space-separated values, one per run
add() { R[$1:$2]="${R[$1:$2]:-}${R[$1:$2]:+ }$3"; }

median() {
  tr ' ' '\n' <<<"$1" | awk NF | sort -g |
    awk '{a[NR]=$1} END{ if (NR == 0) print "nan"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'
}

# measure_one <target> <run#>
measure_one() {
  local t=$1 run=$2 pid port cpu0 cpu1 acc0 acc1 rss anon pss errs64 s0 s1
  if [[ $t == backend ]]; then
    pid=$BACKEND_PID; port=$PORT_BACKEND
  else
    start_target "$t"; pid=$START_PID; port=$TARGET_PORT
    sleep 1
    read -r rss anon pss <<<"$(mem_kb "$pid")"
    add "$t" rss_idle "$rss"; add "$t" anon_idle "$anon"; add "$t" pss_idle "$pss"
    add "$t" nprocs "$(nprocs "$pid")"
    add "$t" threads "$(awk '/^Threads:/{print $2}' "/proc/$pid/status")"
  fi
  if [[ $t == weftall ]]; then
    # idle memory only: every plugin loaded, nothing measured under load
    is_alive "$pid" || die "$t died while idle; log: $(cat "$WORK/$t/out.log")"
    stop_pid "$pid"
    log "run $run $t: idle VmRSS $rss kB, RssAnon $anon kB, PSS $pss kB"
    return 0
  fi

  # throughput at 64 connections; CPU of all the target's processes over it
  run_wrk 64 "$port" "$WARMUP" >/dev/null
  acc0=$(backend_accepts); s0=$(snap "$pid"); cpu0=$(cpu_ticks "$pid")
  run_wrk 64 "$port" "$DURATION"
  cpu1=$(cpu_ticks "$pid"); s1=$(snap "$pid"); acc1=$(backend_accepts)
  add "$t" foreign64 "$(foreign_pct "$s0" "$s1")"
  add "$t" backend_cpu64 "$(backend_pct "$s0" "$s1" "$W_duration_us")"
  local rps cpu_us upc
  rps=$(awk -v r="$W_requests" -v d="$W_duration_us" 'BEGIN{printf "%.0f", r / (d / 1e6)}')
  cpu_us=$(awk -v c=$((cpu1 - cpu0)) -v hz="$HZ" -v r="$W_requests" 'BEGIN{printf "%.3f", c * 1e6 / hz / r}')
  upc=$((acc1 - acc0))
  # wrk's "status" errors are responses >= 400: for the policy and full
  # chain targets that means the acl or ratelimit plugin refused requests,
  # and the CPU figure would measure refusals, not proxied requests
  [[ $t =~ ^(weftpolicy|weftfull)$ && $W_status != 0 ]] &&
    die "$t: $W_status of $W_requests requests got a 4xx/5xx status at 64 connections; see $WORK/wrk.log"
  add "$t" rps "$rps"; add "$t" cpu_us "$cpu_us"; add "$t" errors64 "$W_errors"; add "$t" upconns "$upc"
  errs64=$W_errors

  # latency at 1 connection (the 64-connection run above was its warm-up)
  s0=$(snap "$pid"); cpu0=$(cpu_ticks "$pid")
  run_wrk 1 "$port" "$DURATION"
  cpu1=$(cpu_ticks "$pid"); s1=$(snap "$pid")
  add "$t" foreign1 "$(foreign_pct "$s0" "$s1")"
  [[ $t =~ ^(weftpolicy|weftfull)$ && $W_status != 0 ]] &&
    die "$t: $W_status of $W_requests requests got a 4xx/5xx status at 1 connection; see $WORK/wrk.log"
  add "$t" p50 "$W_p50_us"; add "$t" p99 "$W_p99_us"; add "$t" errors1 "$W_errors"
  add "$t" cpu_us_c1 "$(awk -v c=$((cpu1 - cpu0)) -v hz="$HZ" -v r="$W_requests" 'BEGIN{printf "%.3f", c * 1e6 / hz / r}')"

  if [[ $t != backend ]]; then
    sleep 1
    read -r rss anon pss <<<"$(mem_kb "$pid")"
    add "$t" rss_load "$rss"; add "$t" anon_load "$anon"
    is_alive "$pid" || die "$t died during the run; log: $(cat "$WORK/$t/out.log")"
    stop_pid "$pid"
  fi
  log "run $run $t: $rps req/s @64, cpu $cpu_us us/req, backend conns opened $upc, backend busy ${R[$t:backend_cpu64]##* }% of a core; p50 $W_p50_us us, p99 $W_p99_us us @1; wrk errors $errs64 + $W_errors; other load ${R[$t:foreign64]##* }% / ${R[$t:foreign1]##* }%"
}

# ---------------------------------------------------------------- main
main() {
  ensure_packages
  HZ=$(getconf CLK_TCK)

  local t
  targets_from_env weft nginx haproxy weftrouter weftpolicy weftobs weftobslog weftfull weftall backend
  if [[ -z $TARGETS ]]; then
    TARGET_LIST=(weft nginx haproxy)
    ((ROUTER)) && TARGET_LIST+=(weftrouter)
    ((POLICY)) && TARGET_LIST+=(weftpolicy)
    ((OBS)) && TARGET_LIST+=(weftobs weftobslog)
    ((FULL)) && TARGET_LIST+=(weftfull)
    ((ALLPLUGINS)) && TARGET_LIST+=(weftall)
    ((BASELINE)) && TARGET_LIST+=(backend)
  fi
  local ninja_targets=(core/weft)
  has weftrouter && ninja_targets+=(plugins/router/router.so)
  has weftpolicy && ninja_targets+=(plugins/ratelimit/ratelimit.so plugins/acl/acl.so)
  { has weftobs || has weftobslog; } &&
    ninja_targets+=(plugins/metrics/metrics.so plugins/tracing/tracing.so plugins/accesslog/accesslog.so)
  has weftfull &&
    ninja_targets+=(plugins/router/router.so plugins/acl/acl.so plugins/ratelimit/ratelimit.so
                    plugins/metrics/metrics.so plugins/tracing/tracing.so)
  # weftall: every plugin, and weftctl for its certificates
  local pl
  if has weftall; then
    ninja_targets+=(ctl/weftctl)
    for pl in "${ALL_PLUGINS[@]}"; do ninja_targets+=("plugins/$pl/$pl.so"); done
  fi
  build_weft weft "${ninja_targets[@]}"

  for p in "$PORT_BACKEND" "$PORT_NGINX" "$PORT_HAPROXY" "$PORT_WEFT" "$PORT_WEFT_ADMIN" \
           "$PORT_WEFTROUTER" "$PORT_WEFTROUTER_ADMIN" "$PORT_WEFTPOLICY" "$PORT_WEFTPOLICY_ADMIN" \
           "$PORT_WEFTOBS" "$PORT_WEFTOBS_ADMIN" "$PORT_WEFTOBSLOG" "$PORT_WEFTOBSLOG_ADMIN" "$PORT_OTLP" \
           "$PORT_WEFTFULL" "$PORT_WEFTFULL_ADMIN" "$PORT_WEFTALL" "$PORT_WEFTALL_ADMIN"; do
    port_free "$p" || die "port $p is in use; set PORT_BASE to another base"
  done

  WORK=$(mktemp -d /tmp/weft-bench.XXXXXX)
  write_configs
  if has weftall; then make_weftall_certs; fi
  local load_before; load_before=$(cut -d' ' -f1-3 /proc/loadavg)
  local t0=$SECONDS

  start_backend
  if has weftobs || has weftobslog || has weftfull || has weftall; then start_otlp_sink; fi

  rotate_runs measure_one
  local load_after; load_after=$(cut -d' ' -f1-3 /proc/loadavg)

  report "$load_before" "$load_after" $((SECONDS - t0))
}

# ---------------------------------------------------------------- report
# pairwise <awk statement> <R key a> <R key b>: the statement run on each
# run's pair of values (x from a, y from b), the results in run order
pairwise() {
  local a b i out=""
  read -r -a a <<<"${R[$2]:-}"
  read -r -a b <<<"${R[$3]:-}"
  for ((i = 0; i < ${#a[@]} && i < ${#b[@]}; i++)); do
    out="$out $(awk -v x="${a[i]}" -v y="${b[i]}" "BEGIN{ $1 }")"
  done
  echo "${out# }"
}

# paired_ratio <target> <base> <metric>: the median over runs of
# target/base, each run's two values measured minutes apart in the same
# rotation, so slow drift of the machine cancels out of each ratio
paired_ratio() { median "$(pairwise 'printf "%.4f", x / y' "$1:$3" "$2:$3")"; }

fmt_mib() { awk -v k="$1" 'BEGIN{ if (k == "nan") print "–"; else printf "%.2f", k / 1024 }'; }
fmt_mb() { awk -v k="$1" 'BEGIN{ if (k == "nan") print "–"; else printf "%.2f", k * 1024 / 1e6 }'; }  # /proc kB -> MB (10^6 bytes)
fmt2() { awk -v x="$1" 'BEGIN{ if (x == "nan") print "–"; else printf "%.2f", x }'; }
fmt0() { awk -v x="$1" 'BEGIN{ if (x == "nan") print "–"; else printf "%.0f", x }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a == "nan" || b == "nan" || b == 0) print "n/a"; else printf "%.2fx", a / b }'; }
rdiv() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a == "nan" || b == "nan" || b == 0) print "nan"; else printf "%.2f", a / b }'; }
sumv() { tr ' ' '\n' <<<"$1" | awk '{s+=$1} END{print s+0}'; }

# paired_diff <target> <base> <metric>: the median over runs of target -
# base (the added latency of a proxy over the backend direct)
paired_diff() { median "$(pairwise 'print x - y' "$1:$3" "$2:$3")"; }
# per_run_ratios <target> <base> <metric>: each run's target/base, in run order
per_run_ratios() {
  pairwise 'if (x == "nan" || y == "nan" || y == 0) print "nan"; else printf "%.2f", x / y' "$1:$3" "$2:$3"
}

# results_path <suffix>: the markdown file a bench part writes: $DETAIL_FILE
# when bench/all.sh set it, else bench/results/<date>-<time><suffix>.md
results_path() {
  if [[ -n $DETAIL_FILE ]]; then echo "$DETAIL_FILE"; return 0; fi
  mkdir -p "$BENCH_DIR/results"
  echo "$BENCH_DIR/results/$(date +%Y-%m-%d-%H%M%S)$1.md"
}

# tree_state [<path>...]: COMMIT, the short hash of HEAD, and DIRTY, for a
# report's "weft $COMMIT$DIRTY": a note when the paths weft is built from
# (by default core include plugins meson.build) have uncommitted changes
tree_state() {
  local paths=("$@") p dirs=()
  ((${#paths[@]})) || paths=(core include plugins meson.build)
  COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
  DIRTY=""
  [[ -n $(git -C "$REPO" status --porcelain -- "${paths[@]}" 2>/dev/null) ]] || return 0
  for p in "${paths[@]}"; do [[ $p == meson.build ]] || dirs+=("$p/"); done
  p=${dirs[-1]}
  ((${#dirs[@]} > 1)) && p="$(IFS=,; sed 's/,/, /g' <<<"${dirs[*]:0:${#dirs[@]}-1}") or $p"
  DIRTY=" (working tree with uncommitted changes under $p)"
}

# report_head <title>: a report's title line with the date, and its
# machine line
report_head() {
  echo "# $1, $(date '+%Y-%m-%d %H:%M %Z')"
  echo
  echo "- machine: $(nproc) cores ($(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)), kernel $(uname -r)"
}

nginx_version() { nginx -v 2>&1 | sed 's/.*: //'; }
haproxy_version() { haproxy -v | head -1 | awk '{print "HAProxy " $3}'; }
wrk_version() { wrk -v 2>&1 | head -1 | awk '{print $2}'; }

# foreign_text <metric>...: "median X%, max Y%" of the foreign_pct values
# recorded as these metrics for every target in TARGET_LIST
foreign_text() {
  local t m all=""
  for t in "${TARGET_LIST[@]}"; do for m in "$@"; do all="$all ${R[$t:$m]:-}"; done; done
  echo "median $(median "$all")%, max $(tr ' ' '\n' <<<"$all" | awk NF | sort -g | tail -1)%"
}

# per_run_details <key width> [<summary>]: every R value, in a collapsed
# block at the end of a report
per_run_details() {
  local k
  echo "<details><summary>${2:-Per-run values}</summary>"
  echo
  echo '```'
  for k in $(printf '%s\n' "${!R[@]}" | sort); do printf "%-${1}s %s\n" "$k" "${R[$k]}"; done
  echo '```'
  echo
  echo "</details>"
}

# build_weft <what> <ninja target...>: builds the targets (release) in
# BUILD_DIR; with SKIP_BUILD=1 only checks they are there. Sets WEFT_BIN
build_weft() {
  local what=$1 t out errs; shift
  if ((SKIP_BUILD)); then
    log "SKIP_BUILD=1: using the binaries in $BUILD_DIR as they are"
    for t in "$@"; do
      [[ -x $BUILD_DIR/$t || -f $BUILD_DIR/$t ]] || die "SKIP_BUILD=1 but $BUILD_DIR/$t does not exist"
    done
  else
    log "building $what (release) in $BUILD_DIR"
    if [[ ! -f $BUILD_DIR/build.ninja ]]; then
      meson setup "$BUILD_DIR" "$REPO" --buildtype=release -Dtests=false >/dev/null
    else
      meson configure "$BUILD_DIR" -Dbuildtype=release -Dtests=false >/dev/null
    fi
    if ! out=$(ninja -C "$BUILD_DIR" "$@" 2>&1); then
      errs=$(grep -E 'error:|^FAILED:' <<<"$out" | head -20 || true)
      die "the build failed (SKIP_BUILD=1 uses the binaries as they are):"$'\n'"${errs:-$(tail -20 <<<"$out")}"
    fi
  fi
  WEFT_BIN=$BUILD_DIR/core/weft
}

# targets_from_env <known target...>: TARGET_LIST from TARGETS (each must be
# one of the known ones), else every known one
targets_from_env() {
  local t
  if [[ -z $TARGETS ]]; then TARGET_LIST=("$@"); return 0; fi
  read -r -a TARGET_LIST <<<"$TARGETS"
  for t in "${TARGET_LIST[@]}"; do
    [[ " $* " == *" $t "* ]] || die "unknown target '$t' in TARGETS ($*)"
  done
}

# start_backend: the backend nginx of write_configs; sets BACKEND_PID
start_backend() {
  start "$WORK/backend/out.log" nginx -p "$WORK/backend" -e "$WORK/backend/error.log" -c "$WORK/backend/nginx.conf"
  BACKEND_PID=$START_PID
  wait_http_200 "http://127.0.0.1:$PORT_BACKEND/" "$BACKEND_PID" || die "backend did not start: $(cat "$WORK/backend/out.log")"
}

# rotate_runs <command>: RUNS runs of "<command> <target> <run#>" over
# TARGET_LIST; the order rotates every run so slow drift of the machine
# does not favour one target
rotate_runs() {
  local run i t n=${#TARGET_LIST[@]} order
  for ((run = 1; run <= RUNS; run++)); do
    order=()
    for ((i = 0; i < n; i++)); do order+=("${TARGET_LIST[(i + run - 1) % n]}"); done
    for t in "${order[@]}"; do "$1" "$t" "$run"; done
  done
}

# summary_row <target> <weft> <nginx> <haproxy> <ratio> <goal> <verdict>:
# one row of bench/all.sh's summary table, appended to $SUMMARY_FILE when
# bench/all.sh set it; "–" for a cell that does not apply
summary_row() {
  [[ -n $SUMMARY_FILE ]] || return 0
  printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$@" >>"$SUMMARY_FILE"
}

# verdict <value> <op> <goal>, op ">=" or "<=": "met", or how far off in %
# of the goal; "no data" for a value of nan or nothing
verdict() {
  awk -v v="$1" -v op="$2" -v g="$3" 'BEGIN{
    if (v == "nan" || v == "") { print "no data"; exit }
    ok = (op == ">=") ? v + 0 >= g + 0 : v + 0 <= g + 0
    if (ok) print "met"; else if (op == ">=") printf "MISSED by %.0f%%\n", (1 - v / g) * 100
    else printf "MISSED by %.0f%%\n", (v / g - 1) * 100 }'
}

workers_txt() { if (($1 == 1)); then echo "1 worker"; else echo "$1 workers"; fi; }

# cell <target> <formatted value>: the value, or "–" when <target> was not measured
cell() { if has "$1"; then echo "$2"; else echo "–"; fi; }

# issue7_rows: the issue-7 targets this run has the numbers for, one
# summary row each ("<section>. <what>" first); uses report's M
issue7_rows() {
  local r w n h t m key lbl lim
  irow() { printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$@"; }
  if ((WORKERS == 1)) && has weft && has nginx; then
    r=$(rdiv "${M[weft:cpu_us]}" "${M[nginx:cpu_us]}")
    irow "1. CPU µs/req @64 conns, weft plain proxy" "$(fmt2 "${M[weft:cpu_us]}")" "$(fmt2 "${M[nginx:cpu_us]}")" \
      "$(cell haproxy "$(fmt2 "${M[haproxy:cpu_us]}")")" "${r}x nginx" "≤ 0.85x nginx" "$(verdict "$r" "<=" 0.85)"
  fi
  if ((WORKERS == 1)) && has weftfull && has nginx; then
    r=$(rdiv "${M[weftfull:cpu_us]}" "${M[nginx:cpu_us]}")
    irow "1. CPU µs/req @64 conns, weft full chain vs nginx" "$(fmt2 "${M[weftfull:cpu_us]}")" "$(fmt2 "${M[nginx:cpu_us]}")" \
      "$(cell haproxy "$(fmt2 "${M[haproxy:cpu_us]}")")" "${r}x nginx" "≤ 1.0x nginx" "$(verdict "$r" "<=" 1.0)"
  fi
  if ((WORKERS == 1)) && has weftfull && has haproxy; then
    r=$(rdiv "${M[weftfull:cpu_us]}" "${M[haproxy:cpu_us]}")
    irow "1. CPU µs/req @64 conns, weft full chain vs HAProxy" "$(fmt2 "${M[weftfull:cpu_us]}")" \
      "$(cell nginx "$(fmt2 "${M[nginx:cpu_us]}")")" "$(fmt2 "${M[haproxy:cpu_us]}")" "${r}x HAProxy" "≤ 0.9x HAProxy" "$(verdict "$r" "<=" 0.9)"
  fi
  if has weft && has nginx; then
    r=$(rdiv "${M[weft:rps]}" "${M[nginx:rps]}")
    local what="2. req/s @64 conns, $(workers_txt "$WORKERS"), wrk -t$WRK_THREADS" goal="report" v="–"
    ((WORKERS == 2)) && goal="≥ 1.0x nginx" v=$(verdict "$r" ">=" 1.0)
    irow "$what" "$(fmt0 "${M[weft:rps]}")" "$(fmt0 "${M[nginx:rps]}")" "$(cell haproxy "$(fmt0 "${M[haproxy:rps]}")")" "${r}x nginx" "$goal" "$v"
    if ((WORKERS != 1)); then
      r=$(rdiv "${M[weft:cpu_us]}" "${M[nginx:cpu_us]}")
      irow "2. CPU µs/req @64 conns, $(workers_txt "$WORKERS")" "$(fmt2 "${M[weft:cpu_us]}")" "$(fmt2 "${M[nginx:cpu_us]}")" \
        "$(cell haproxy "$(fmt2 "${M[haproxy:cpu_us]}")")" "${r}x nginx" "report" "–"
    fi
  fi
  if ((WORKERS == 1)) && has backend && has nginx; then
    local p lbl
    for t in weft weftfull; do
      has "$t" || continue
      lbl="weft plain proxy"; [[ $t == weftfull ]] && lbl="weft full chain"
      for p in p50 p99; do
        w=$(paired_diff "$t" backend "$p"); n=$(paired_diff nginx backend "$p"); h=nan
        has haproxy && h=$(paired_diff haproxy backend "$p")
        # a ratio of two small differences means little: show the difference too
        irow "3. added $p @1 conn over backend direct (µs), $lbl" "$(fmt0 "$w")" "$(fmt0 "$n")" "$(cell haproxy "$(fmt0 "$h")")" \
          "$(awk -v w="$w" -v n="$n" 'BEGIN{ if (w == "nan" || n == "nan") print "n/a";
              else if (n > 0) printf "%.2fx nginx (%+d µs)\n", w / n, w - n; else printf "%+d µs vs nginx\n", w - n }')" "≤ nginx's" \
          "$(awk -v w="$w" -v n="$n" 'BEGIN{ if (w == "nan" || n == "nan") print "no data"; else if (w <= n) print "met"; else printf "MISSED by %.0f µs\n", w - n }')"
      done
    done
  fi
  if has weftall; then
    local kb
    for m in rss_idle:"VmRSS":10 anon_idle:"RssAnon":3; do
      IFS=: read -r key lbl lim <<<"$m"
      kb=${M[weftall:$key]}
      w=$(awk -v k="$kb" 'BEGIN{ if (k == "nan") print "nan"; else printf "%.2f", k * 1024 / 1e6 }')
      irow "5. idle $lbl (MB), weft with every plugin + tls:" "$w" "$(cell nginx "$(fmt_mb "${M[nginx:$key]}")")" \
        "$(cell haproxy "$(fmt_mb "${M[haproxy:$key]}")")" "$(has nginx && echo "$(rdiv "$kb" "${M[nginx:$key]}")x nginx" || echo –)" \
        "≤ $lim MB" "$(verdict "$w" "<=" "$lim")"
    done
  fi
}

# one row of the main table: <target> <label>
target_row() {
  local t=$1 desc np
  np=$(median "${R[$t:nprocs]:-}")
  if [[ $t == backend ]]; then
    echo "| *backend direct, no proxy* | – | ${M[backend:rps]} | ${M[backend:p50]} | ${M[backend:p99]} | – | – | – | – | – | – | – | $(( $(sumv "${R[backend:errors64]:-}") + $(sumv "${R[backend:errors1]:-}") )) | ${M[backend:backend_cpu64]} |"
    return 0
  fi
  desc="1 ($(median "${R[$t:threads]:-}") threads)"
  [[ $t == nginx || $t == haproxy ]] && desc="$np (master+workers, summed)"
  echo "| $2 | $desc | ${M[$t:rps]} | ${M[$t:p50]} | ${M[$t:p99]} | ${M[$t:cpu_us]} | ${M[$t:cpu_us_c1]} | $(fmt_mib "${M[$t:rss_idle]}") | $(fmt_mib "${M[$t:anon_idle]}") | $(fmt_mib "${M[$t:pss_idle]}") | $(fmt_mib "${M[$t:rss_load]}") | $(fmt_mib "${M[$t:anon_load]}") | $(( $(sumv "${R[$t:errors64]:-}") + $(sumv "${R[$t:errors1]:-}") )) | ${M[$t:backend_cpu64]} |"
}

report() {
  local load_before=$1 load_after=$2 elapsed=$3 out t m
  tree_state
  local cpu_model; cpu_model=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
  local suffix=""
  ((WORKERS != 1)) && suffix="-workers$WORKERS"
  out=$(results_path "$suffix")

  declare -A M
  for t in weft nginx haproxy backend weftrouter weftpolicy weftobs weftobslog weftfull weftall; do
    for m in rps p50 p99 cpu_us cpu_us_c1 rss_idle anon_idle pss_idle rss_load anon_load upconns backend_cpu64; do
      M[$t:$m]=$(median "${R[$t:$m]:-}")
    done
  done
  local rows; rows=$(issue7_rows)
  if [[ -n $SUMMARY_FILE && -n $rows ]]; then printf '%s\n' "$rows" >>"$SUMMARY_FILE"; fi

  declare -A LABEL=([weft]=weft [nginx]=nginx [haproxy]=haproxy
    [weftrouter]="weft + router, 1 rule" [weftpolicy]="weft + ratelimit + acl, $POLICY_RULES rules each"
    [weftobs]="weft + metrics + tracing at $OBS_SAMPLING%" [weftobslog]="weft + metrics + tracing at $OBS_SAMPLING% + access log to a file"
    [weftfull]="weft full chain: router (4 rules), acl, ratelimit, metrics, tracing at $OBS_SAMPLING%" [backend]=backend)
  {
    echo "# weft benchmark, $(date '+%Y-%m-%d %H:%M %Z')"
    echo
    echo "- machine: $(nproc) cores ($cpu_model), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, kernel $(uname -r)"
    local built="built with \`meson setup --buildtype=release\`"
    ((SKIP_BUILD)) && built="SKIP_BUILD=1: the binaries already in $BUILD_DIR, which may be older than the tree ($(date -r "$WEFT_BIN" '+%Y-%m-%d %H:%M'))"
    echo "- weft $COMMIT$DIRTY, $built; $(nginx_version); $(haproxy_version); wrk $(wrk_version)"
    echo "- $(workers_txt "$WORKERS") each (weft \`workers: $WORKERS\`, nginx \`worker_processes $WORKERS\`, HAProxy \`nbthread $WORKERS\`); backend: nginx, $(workers_txt "$BACKEND_WORKERS"), fixed 19-byte 200 response; wrk -t$WRK_THREADS (-t1 at 1 connection), ${DURATION} s per measured run after ${WARMUP} s warm-up"
    if [[ -n $TARGETS ]]; then echo "- only these targets were measured (TARGETS): ${TARGET_LIST[*]}"; fi
    echo "- every number is the median of $RUNS runs (each run starts the proxy afresh); load average before/after: $load_before / $load_after; took ${elapsed} s"
    echo "- CPU used by processes outside the benchmark during the measured runs, as % of all cores: $(foreign_text foreign64 foreign1) (0 on a quiet machine)"
    if [[ -n $rows ]]; then
      echo
      echo "## Issue 7 targets"
      echo
      echo "Ratios are of the medians; MB is 10^6 bytes (/proc's kB is 1024 bytes); added latency is the median over runs of (proxy − backend direct), each run's pair measured in the same rotation."
      echo
      echo "| # | target | weft | nginx | HAProxy | ratio | goal | verdict |"
      echo "|---|---|---|---|---|---|---|---|"
      sed -E 's/^\| ([0-9]+)\. /| \1 | /' <<<"$rows"
      echo
      echo "Per-run ratios (run order), to show the spread:"
      echo
      if has weft && has nginx; then echo "- CPU µs/req @64, weft / nginx: $(per_run_ratios weft nginx cpu_us)"; fi
      if has weftfull && has nginx; then echo "- CPU µs/req @64, weft full chain / nginx: $(per_run_ratios weftfull nginx cpu_us)"; fi
      if has weftfull && has haproxy; then echo "- CPU µs/req @64, weft full chain / HAProxy: $(per_run_ratios weftfull haproxy cpu_us)"; fi
      if has weft && has nginx; then echo "- req/s @64, weft / nginx: $(per_run_ratios weft nginx rps)"; fi
    fi
    echo
    echo "## All targets"
    echo
    echo "| proxy | processes | req/s @64 conns | p50 @1 conn (µs) | p99 @1 conn (µs) | CPU µs/req @64 | CPU µs/req @1 | RSS idle (MiB) | RssAnon idle (MiB) | PSS idle (MiB) | RSS after load (MiB) | RssAnon after load (MiB) | wrk errors | backend CPU @64 (% of a core) |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    for t in weft nginx haproxy weftrouter weftpolicy weftobs weftobslog weftfull backend; do
      if has "$t"; then target_row "$t" "${LABEL[$t]}"; fi
    done
    if has backend; then
      echo
      echo "The backend CPU column is the backend nginx's utime+stime over the 64-connection run, as % of one core: near 100 × $BACKEND_WORKERS the backend, not the proxy, would be the bottleneck."
    fi
    if has weft && has nginx && has haproxy; then
      echo
      echo "Ratios (weft / other; for req/s higher is better, for everything else lower is better):"
      echo
      local hdr="| metric | weft/nginx | weft/haproxy |" sep="|---|---|---|"
      has weftfull && hdr="$hdr full chain/nginx | full chain/haproxy |" sep="$sep---|---|"
      echo "$hdr"; echo "$sep"
      for m in rps:req/s p50:p50 p99:p99 cpu_us:"CPU µs/req @64" cpu_us_c1:"CPU µs/req @1" rss_idle:"RSS idle" anon_idle:"RssAnon idle" pss_idle:"PSS idle" rss_load:"RSS after load" anon_load:"RssAnon after load"; do
        local line="| ${m#*:} | $(ratio "${M[weft:${m%%:*}]}" "${M[nginx:${m%%:*}]}") | $(ratio "${M[weft:${m%%:*}]}" "${M[haproxy:${m%%:*}]}") |"
        has weftfull && line="$line $(ratio "${M[weftfull:${m%%:*}]}" "${M[nginx:${m%%:*}]}") | $(ratio "${M[weftfull:${m%%:*}]}" "${M[haproxy:${m%%:*}]}") |"
        echo "$line"
      done
    fi
    if has backend; then
      echo
      echo "Added latency at 1 connection over the backend direct (µs; median over runs of proxy − backend, each pair from the same rotation):"
      echo
      echo "| proxy | added p50 | added p99 |"
      echo "|---|---|---|"
      for t in weft nginx haproxy weftrouter weftpolicy weftobs weftobslog weftfull; do
        if has "$t"; then echo "| ${LABEL[$t]} | $(paired_diff "$t" backend p50) | $(paired_diff "$t" backend p99) |"; fi
      done
    fi
    if has weftall; then
      echo
      echo "## Idle memory with every plugin loaded"
      echo
      echo "\`weftall\`: one listener with \`plugins: [$(IFS=,; sed 's/,/, /g' <<<"${ALL_PLUGINS[*]}")]\` and \`tls: {mode: PERMISSIVE}\`, top-level \`tls:\` with a workload certificate from \`weftctl cert issue\` (ECDSA P-256) and its CA, the settings of weftfull plus the access log to a file. Read 1 s after its first answer (no load). MiB = 1024 kB, MB = 10^6 bytes."
      echo
      echo "| | VmRSS (MiB) | VmRSS (MB) | RssAnon (MiB) | RssAnon (MB) | PSS (MiB) | per run VmRSS / RssAnon (kB) |"
      echo "|---|---|---|---|---|---|---|"
      echo "| weft, every plugin + tls | $(fmt_mib "${M[weftall:rss_idle]}") | $(fmt_mb "${M[weftall:rss_idle]}") | $(fmt_mib "${M[weftall:anon_idle]}") | $(fmt_mb "${M[weftall:anon_idle]}") | $(fmt_mib "${M[weftall:pss_idle]}") | ${R[weftall:rss_idle]:-} / ${R[weftall:anon_idle]:-} |"
      for t in weft weftfull; do
        if has "$t"; then echo "| ${LABEL[$t]} | $(fmt_mib "${M[$t:rss_idle]}") | $(fmt_mb "${M[$t:rss_idle]}") | $(fmt_mib "${M[$t:anon_idle]}") | $(fmt_mb "${M[$t:anon_idle]}") | $(fmt_mib "${M[$t:pss_idle]}") | ${R[$t:rss_idle]:-} / ${R[$t:anon_idle]:-} |"; fi
      done
      local extra_plugins="" d
      for d in "$REPO"/plugins/*/; do
        d=$(basename "$d")
        [[ $d == common || ! -f $REPO/plugins/$d/meson.build || " ${ALL_PLUGINS[*]} " == *" $d "* ]] || extra_plugins="$extra_plugins $d"
      done
      if [[ -n $extra_plugins ]]; then echo; echo "**Not loaded** (in plugins/ but not in run.sh's ALL_PLUGINS):$extra_plugins"; fi
    fi
    echo
    echo "## Other targets"
    echo
    echo "(1 MiB = 1024 kB as /proc reports it)"
    echo
    if ((WORKERS == 1)) && has weft; then
      awk -v k="${M[weft:rss_idle]}" 'BEGIN{m=k/1024; printf "- plain weft idle RSS: %.2f MiB\n", m}'
      awk -v k="${M[weft:anon_idle]}" 'BEGIN{m=k/1024; printf "- plain weft idle RssAnon: %.2f MiB\n", m}'
    fi
    if has weft && has weftrouter; then
      awk -v r="${M[weftrouter:cpu_us]}" -v w="${M[weft:cpu_us]}" 'BEGIN{x=r/w; printf "- router on, 1 rule: CPU per request <= 1.03x plain weft: %.3fx -> %s\n", x, (x <= 1.03 ? "met" : sprintf("MISSED by %.1f%%", (x - 1) * 100))}'
      awk -v r="${M[weftrouter:cpu_us_c1]}" -v w="${M[weft:cpu_us_c1]}" 'BEGIN{printf "- router on, 1 rule, at 1 connection: %.3fx plain weft CPU per request\n", r/w}'
    fi
    if has weft && has weftpolicy; then
      # "MISSED by" is how far the ratio is above the 1.05x target
      awk -v r="${M[weftpolicy:cpu_us]}" -v w="${M[weft:cpu_us]}" -v n="$POLICY_RULES" 'BEGIN{x=r/w; printf "- ACL + rate limiter on (%d rules each): CPU per request <= 1.05x plain weft: %.3fx -> %s\n", n, x, (x <= 1.05 ? "met" : sprintf("MISSED by %.1f%%", (x / 1.05 - 1) * 100))}'
      awk -v r="${M[weftpolicy:cpu_us_c1]}" -v w="${M[weft:cpu_us_c1]}" -v n="$POLICY_RULES" 'BEGIN{printf "- ACL + rate limiter on (%d rules each), at 1 connection: %.3fx plain weft CPU per request\n", n, r/w}'
    fi
    if has weft && has weftobs; then
      # judged on the median of per-run ratios; the ratio of medians is shown too
      awk -v x="$(paired_ratio weftobs weft cpu_us)" -v r="${M[weftobs:cpu_us]}" -v w="${M[weft:cpu_us]}" -v s="$OBS_SAMPLING" 'BEGIN{printf "- metrics + tracing at %s%% sampling: CPU per request <= 1.08x plain weft: %.3fx (median of per-run ratios; ratio of medians %.3fx) -> %s\n", s, x, r/w, (x <= 1.08 ? "met" : sprintf("MISSED by %.1f%%", (x / 1.08 - 1) * 100))}'
      awk -v x="$(paired_ratio weftobs weft cpu_us_c1)" 'BEGIN{printf "- metrics + tracing, at 1 connection: %.3fx plain weft CPU per request (median of per-run ratios)\n", x}'
    fi
    if has weftobs && has weftobslog; then
      awk -v x="$(paired_ratio weftobslog weftobs cpu_us)" -v r="${M[weftobslog:cpu_us]}" -v w="${M[weftobs:cpu_us]}" 'BEGIN{printf "- access log to a file on top: CPU per request <= 1.10x metrics + tracing: %.3fx (median of per-run ratios; ratio of medians %.3fx) -> %s\n", x, r/w, (x <= 1.10 ? "met" : sprintf("MISSED by %.1f%%", (x / 1.10 - 1) * 100))}'
      awk -v x="$(paired_ratio weftobslog weftobs cpu_us_c1)" 'BEGIN{printf "- access log on top, at 1 connection: %.3fx metrics + tracing CPU per request (median of per-run ratios)\n", x}'
    fi
    echo
    echo "Backend connections opened during each measured 64-connection run (keep-alive check: a number far below the request count means the proxy reuses its backend connections; HAProxy's default \`http-reuse safe\` gives each new client connection its own backend connection, hence 65):"
    for t in weft nginx haproxy weftrouter weftpolicy weftobs weftobslog weftfull; do
      if has "$t"; then echo "- $t: ${R[$t:upconns]}"; fi
    done
    echo
    per_run_details 22
  } >"$out"

  echo
  cat "$out"
  echo
  log "results written to ${out#"$REPO"/}"
}

# bench/mtls.sh sources this file for its helpers (processes, /proc, wrk)
# and runs its own main
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi
