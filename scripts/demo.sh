#!/usr/bin/env bash
# A local demo mesh on loopback: two sample services, each with its weft
# sidecar. It sends traffic through the mesh, shows what happened and where
# to look (/metrics, /config), hot-reloads one sidecar, then stops it all.
#
#   client ──> sidecar A inbound 127.0.0.1:15006 ──> frontend app 127.0.0.1:18081
#                                                         │
#              sidecar A outbound 127.0.0.1:15001 <───────┘
#                   │  mTLS (SPIFFE IDs checked both ways)
#                   └──> sidecar B inbound 127.0.0.1:15106 ──> backend app 127.0.0.1:18082
#
#   the mesh CA and workload certificates come from weftctl cert (demo/.run/tls)
#
#   admin: sidecar A 127.0.0.1:15000, sidecar B 127.0.0.1:15100
#
# Usage: scripts/demo.sh [--keep] [--stop] [--requests N]
#   --keep        leave the mesh running afterwards (stop it with --stop)
#   --stop        stop a mesh left running by --keep, and exit
#   --requests N  how many requests to send (default 20)
#
# Runs scripts/setup-debian.sh and builds weft (build/) first. Logs and the
# live sidecar configs are in demo/.run/. Exits non-zero if traffic failed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN="$ROOT/demo/.run"
WEFT="$ROOT/build/core/weft"
WEFTCTL="$ROOT/build/ctl/weftctl"
KEEP=0
REQUESTS=20

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

stop_pids() {
  local pidfile="$RUN/pids" pid name left
  [ -f "$pidfile" ] || return 0
  # weft drains on SIGTERM; the apps just exit
  while read -r pid name; do
    kill -TERM "$pid" 2>/dev/null || true
  done <"$pidfile"
  for _ in $(seq 50); do
    left=0
    while read -r pid name; do
      kill -0 "$pid" 2>/dev/null && left=1
    done <"$pidfile"
    [ "$left" -eq 0 ] && break
    sleep 0.1
  done
  while read -r pid name; do
    if kill -0 "$pid" 2>/dev/null; then
      echo "demo: $name (pid $pid) did not stop on SIGTERM; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done <"$pidfile"
  rm -f "$pidfile"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --keep) KEEP=1 ;;
    --stop) stop_pids; echo "demo: stopped"; exit 0 ;;
    --requests) REQUESTS=${2:?--requests needs a number}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "demo: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

bold() { if [ -t 1 ]; then printf '\033[1m%s\033[0m\n' "$*"; else printf '%s\n' "$*"; fi; }
step() { echo; bold "== $*"; }
die() { echo "demo: $*" >&2; exit 1; }

# ---------------------------------------------------------------- setup, build
step "Setting up and building"
"$ROOT/scripts/setup-debian.sh"
cd "$ROOT"
if [ ! -f build/build.ninja ]; then
  meson setup build
fi
ninja -C build
[ -x "$WEFT" ] || die "$WEFT was not built"

# ---------------------------------------------------------------- start
stop_pids   # a mesh left over from an earlier --keep run
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in 14318 15000 15001 15006 15100 15106 15107 15108 18081 18082; do
  if port_busy "$port"; then
    die "127.0.0.1:$port is already in use by $(ss -ltnpH "sport = :$port" 2>/dev/null | sed 's/.*users://' || true); stop it first (bench/run.sh uses 18080-18083 by default; move it with PORT_BASE=...)"
  fi
done

rm -rf "$RUN"
mkdir -p "$RUN/logs"
# each sidecar gets its own config directory (weft watches it); logs live
# outside it
cp -r demo/sidecars/frontend "$RUN/sidecar-frontend"
cp -r demo/sidecars/backend "$RUN/sidecar-backend"
# the access logs live outside the watched config directories
echo "accesslog: {path: $RUN/logs/access-a.log}" >>"$RUN/sidecar-frontend/weft.yaml"
echo "accesslog: {path: $RUN/logs/access-b.log}" >>"$RUN/sidecar-backend/weft.yaml"

step "Issuing the mesh CA and workload certificates with weftctl cert"
TLS="$RUN/tls"
"$WEFTCTL" cert ca --trust-domain cluster.local --out-dir "$TLS" | sed 's/^/  /'
# one identity per workload; 'intruder' is signed by the same CA but is
# not allowed by sidecar B's policy
for sa in frontend backend intruder; do
  "$WEFTCTL" cert issue --namespace demo --service-account "$sa" --ca "$TLS/ca.pem" \
    --ca-key "$TLS/ca-key.pem" --out-dir "$TLS" | sed 's/^/  /'
done
"$WEFTCTL" cert inspect "$TLS/backend.pem" | sed -n '2,/^certificate 2/p' | grep -E 'issuer|not after|spiffe id' |
  sed 's/^ */  weftctl cert inspect backend.pem: /'
# as a Secret mount would provide them, outside the config directories
echo "tls: {cert: $TLS/frontend.pem, key: $TLS/frontend-key.pem, bundle: $TLS/ca.pem}" \
  >>"$RUN/sidecar-frontend/weft.yaml"
echo "tls: {cert: $TLS/backend.pem, key: $TLS/backend-key.pem, bundle: $TLS/ca.pem}" \
  >>"$RUN/sidecar-backend/weft.yaml"

cleanup() {
  local rc=$?
  if [ "$KEEP" -eq 1 ] && [ "$rc" -eq 0 ]; then
    return
  fi
  stop_pids
  [ "$rc" -ne 0 ] && echo "demo: failed; logs are in $RUN/logs/" >&2
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() {   # start NAME COMMAND...: in the background, logging to logs/NAME.log
  local name=$1; shift
  # setsid: a closed terminal (SIGHUP) does not take a --keep mesh down
  setsid "$@" >"$RUN/logs/$name.log" 2>&1 &
  echo "$! $name" >>"$RUN/pids"
  printf '  %-17s pid %-7s %s\n' "$name" "$!" "$*"
}

step "Starting the mesh"
start collector     python3 -u demo/services/collector.py --listen 127.0.0.1:14318 --out "$RUN/logs/spans.jsonl"
start backend-app   python3 -u demo/services/backend.py --listen 127.0.0.1:18082
start frontend-app  python3 -u demo/services/frontend.py --listen 127.0.0.1:18081 --outbound 127.0.0.1:15001
start sidecar-b     "$WEFT" --config "$RUN/sidecar-backend"
start sidecar-a     "$WEFT" --config "$RUN/sidecar-frontend"

wait_for() {   # wait_for WHAT CHECK-COMMAND...
  local what=$1; shift
  for _ in $(seq 100); do
    "$@" && return 0
    sleep 0.1
  done
  die "$what did not come up within 10 s; see $RUN/logs/"
}
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$1/ready")" = 200 ]; }
wait_for "collector"    port_busy 14318
wait_for "backend app"  port_busy 18082
wait_for "frontend app" port_busy 18081
wait_for "sidecar B (admin 127.0.0.1:15100)" ready 127.0.0.1:15100
wait_for "sidecar A (admin 127.0.0.1:15000)" ready 127.0.0.1:15000
echo "  both sidecars answer GET /ready with 200"

# ---------------------------------------------------------------- traffic
step "Sending $REQUESTS requests to sidecar A's inbound listener (127.0.0.1:15006)"
mkdir -p "$RUN/responses"
# the first request brings its own x-request-id; weft generates the others
for i in $(seq "$REQUESTS"); do
  hdr=()
  [ "$i" -eq 1 ] && hdr=(-H "x-request-id: demo-client-trace-0001")
  curl -s -m 10 -o "$RUN/responses/$i.json" -D "$RUN/responses/$i.head" \
       -w '%{http_code}\n' "${hdr[@]}" "http://127.0.0.1:15006/hello?n=$i" \
       >>"$RUN/responses/codes" || echo 000 >>"$RUN/responses/codes"
done

traffic_ok=0
python3 - "$RUN/responses" "$REQUESTS" <<'EOF' || traffic_ok=1
import collections, json, os, sys

d, n = sys.argv[1], int(sys.argv[2])
codes = [c.strip() for c in open(os.path.join(d, "codes"))]
print("  status codes:  " + ", ".join("%s x %d" % (c, k) for c, k in sorted(collections.Counter(codes).items())))

bodies = {}
for i in range(1, n + 1):
    try:
        bodies[i] = json.load(open(os.path.join(d, "%d.json" % i)))
    except (OSError, ValueError):
        bodies[i] = None

propagated, broken = 0, []
for i, b in bodies.items():
    be = b.get("backend") if isinstance(b, dict) else None
    if isinstance(be, dict) and b.get("x-request-id") and b["x-request-id"] == be.get("x-request-id"):
        propagated += 1
    else:
        broken.append(i)
print("  x-request-id:  the same id reached the backend in %d of %d requests" % (propagated, n))

b = bodies.get(1)
if isinstance(b, dict) and isinstance(b.get("backend"), dict):
    be = b["backend"]
    print()
    print("  request 1, hop by hop (sent with x-request-id: demo-client-trace-0001):")
    print("    curl -> sidecar A inbound  127.0.0.1:15006  (listener 'inbound', direction inbound)")
    print("         -> frontend app       127.0.0.1:18081  saw x-request-id=%s x-forwarded-for=%s"
          % (b.get("x-request-id"), b.get("x-forwarded-for")))
    print("         -> sidecar A outbound 127.0.0.1:15001  (listener 'outbound', direction outbound)")
    print("         -> sidecar B inbound  127.0.0.1:15106  (listener 'inbound', direction inbound)")
    print("         -> backend app        127.0.0.1:18082  saw x-request-id=%s x-forwarded-for=%s x-forwarded-proto=%s"
          % (be.get("x-request-id"), be.get("x-forwarded-for"), be.get("x-forwarded-proto")))
    print("    backend answered %s, frontend answered %s" % (b.get("backend_status"), codes[0]))
b2 = bodies.get(2)
if isinstance(b2, dict) and isinstance(b2.get("backend"), dict):
    print("  request 2 came without an id; sidecar A generated %s and it reached the backend as %s"
          % (b2.get("x-request-id"), b2["backend"].get("x-request-id")))

failed = [i for i, c in enumerate(codes, 1) if c != "200"]
if failed or broken:
    print()
    print("  FAILED: requests %s; e.g. response %d:" % (sorted(set(failed + broken)), (failed + broken)[0]))
    i = (failed + broken)[0]
    for name in ("%d.head" % i, "%d.json" % i):
        try:
            print("    " + open(os.path.join(d, name), errors="replace").read().strip().replace("\n", "\n    "))
        except OSError:
            pass
    sys.exit(1)
EOF

# ---------------------------------------------------------------- metrics
metrics() {   # metrics ADMIN: the request and connection counters that are not 0
  curl -s "http://$1/metrics" | grep -E '^weft_(requests|connections)_total' | grep -v ' 0$' \
    | sed 's/^/    /' || echo "    (all zero)"
}
generation() {
  curl -s "http://$1/config" | python3 -c 'import json,sys; print(json.load(sys.stdin)["generation"])'
}
generation_after() {   # generation_after ADMIN BEFORE: the generation once above BEFORE (5 s at most)
  local gen=$2
  for _ in $(seq 50); do
    sleep 0.1
    gen=$(generation "$1")
    [ "$gen" -gt "$2" ] && break
  done
  echo "$gen"
}

step "What each sidecar counted (/metrics, non-zero lines)"
echo "  sidecar A (frontend), admin 127.0.0.1:15000:"
metrics 127.0.0.1:15000
echo "  sidecar B (backend), admin 127.0.0.1:15100:"
metrics 127.0.0.1:15100
echo "  Sidecar A counts each request twice: on 'inbound' (curl -> frontend) and on"
echo "  'outbound' (frontend -> backend). Sidecar B counts it once, on 'inbound', over"
echo "  few connections: sidecar A keeps its upstream connections alive and reuses them."
echo "  config generation: sidecar A $(generation 127.0.0.1:15000), sidecar B $(generation 127.0.0.1:15100)"

# ---------------------------------------------------------------- observability
step "Observability: Istio metrics, one trace across both sidecars, access logs"
sleep 0.5   # the sidecars export spans every 200 ms
obs_ok=0
python3 - "$RUN" "$REQUESTS" <<'EOF' || obs_ok=1
import json, os, re, sys, urllib.request

run, n = sys.argv[1], int(sys.argv[2])
ok = True

def metrics(port):
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5).read().decode()
    out = []
    for line in text.splitlines():
        m = re.match(r'^(\w+)\{(.*)\} (\S+)$', line)
        if m:
            out.append((m.group(1), dict(re.findall(r'(\w+)="([^"]*)"', m.group(2))), float(m.group(3))))
    return out

def p99(samples, **want):
    """histogram_quantile(0.99) over the buckets, as Prometheus computes it"""
    buckets = {}
    for name, labels, v in samples:
        if name == "istio_request_duration_milliseconds_bucket" and all(labels.get(k) == x for k, x in want.items()):
            le = float(labels["le"])
            buckets[le] = buckets.get(le, 0) + v
    bs = sorted(buckets.items())
    if not bs or bs[-1][1] == 0:
        return None
    rank, prev_le, prev_c = 0.99 * bs[-1][1], 0.0, 0.0
    for le, c in bs:
        if c >= rank:
            return prev_le + (le - prev_le) * (rank - prev_c) / max(c - prev_c, 1e-9)
        prev_le, prev_c = le, c

print("  istio_requests_total (Istio's labels; the x-weft-peer exchange names both workloads):")
for port, who in ((15000, "A"), (15100, "B")):
    for name, l, v in metrics(port):
        if name == "istio_requests_total" and v > 0:
            print("    sidecar %s  reporter=%-11s %-12s -> %-12s service=%s code=%s flags=%s  %d"
                  % (who, l["reporter"], l["source_workload"], l["destination_workload"],
                     l["destination_service_name"], l["response_code"], l["response_flags"], v))
b = metrics(15100)
calls = sum(v for name, l, v in b if name == "istio_requests_total" and l["reporter"] == "destination"
            and l["source_workload"] == "frontend-v1" and l["destination_workload"] == "backend-v1")
if calls < n:
    print("  FAILED: sidecar B counted %d calls from frontend-v1, want %d" % (calls, n)); ok = False
mtls = [l for name, l, v in b if name == "istio_requests_total" and l["reporter"] == "destination"
        and l["source_workload"] == "frontend-v1" and v > 0]
for l in mtls:
    print("  sidecar B knows its caller from mTLS: source_principal=%s connection_security_policy=%s"
          % (l["source_principal"], l["connection_security_policy"]))
if not mtls or any(l["source_principal"] != "spiffe://cluster.local/ns/demo/sa/frontend"
                   or l["connection_security_policy"] != "mutual_tls" for l in mtls):
    print("  FAILED: sidecar B should see spiffe://cluster.local/ns/demo/sa/frontend over mutual_tls"); ok = False
q = p99(b, reporter="destination", destination_workload="backend-v1")
print("  p99 latency of backend-v1 as sidecar B saw it (histogram_quantile(0.99) on its buckets): %.2f ms" % q)

spans = [json.loads(l) for l in open(os.path.join(run, "logs", "spans.jsonl"))] if os.path.exists(
    os.path.join(run, "logs", "spans.jsonl")) else []
lines_a = [json.loads(l) for l in open(os.path.join(run, "logs", "access-a.log"))]
first = next((l for l in lines_a if l.get("request_id") == "demo-client-trace-0001" and l.get("listener") == "inbound"), None)
print()
if first is None:
    print("  FAILED: no access log line for request 1 in access-a.log"); sys.exit(1)
print("  sidecar A's access log line for request 1 (%s, %d lines in all):" % (os.path.join(run, "logs", "access-a.log"), len(lines_a)))
print("    " + json.dumps(first)[:400] + ("..." if len(json.dumps(first)) > 400 else ""))
trace = [s for s in spans if s["trace_id"] == first.get("trace_id")]
print()
print("  trace %s (%d spans exported to the demo collector, %d in this trace):" % (first.get("trace_id"), len(spans), len(trace)))
by_parent = {}
for s in trace:
    by_parent.setdefault(s["parent_id"], []).append(s)
def show(parent, depth):
    for s in sorted(by_parent.get(parent, []), key=lambda s: s["start"]):
        print("    %s%-8s %-6s %-22s %7.2f ms  span %s" % ("  " * depth, s["service"], {2: "SERVER", 3: "CLIENT"}.get(s["kind"], s["kind"]),
              s["name"], (s["end"] - s["start"]) / 1e6, s["span_id"]))
        show(s["span_id"], depth + 1)
show(None, 0)
kinds = sorted((s["service"], s["kind"]) for s in trace)
if len(trace) != 3 or len(by_parent.get(None, [])) != 1:
    print("  FAILED: want 3 spans under one root (A SERVER -> A CLIENT -> B SERVER), got %s" % kinds); ok = False
sys.exit(0 if ok else 1)
EOF

# ---------------------------------------------------------------- mTLS
step "mTLS: what sidecar B accepts and refuses, and a certificate rotation"
mtls_ok=0
code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' http://127.0.0.1:15106/plaintext || true)
echo "  plaintext GET straight to B's STRICT port 127.0.0.1:15106 -> ${code:-000} (refused, no HTTP answer)"
[ "${code:-000}" = 000 ] || mtls_ok=1
grep -m 1 'refused TLS' "$RUN/logs/sidecar-b.log" | sed 's/^/    B logged: /' || mtls_ok=1
curl -s http://127.0.0.1:15100/metrics | grep -E '^weft_tls_(handshakes|handshake_failures)_total|^weft_tls_certificate_expiry' |
  sed 's/^/    /'
serial() { "$WEFTCTL" cert inspect "$1" | awk '/serial:/ {print $2; exit}'; }
old_serial=$(serial "$TLS/backend.pem")
gen_before=$(generation 127.0.0.1:15100)
# a renewed certificate, swapped in by rename as a Secret update would be
mkdir -p "$TLS/renewed"
"$WEFTCTL" cert issue --namespace demo --service-account backend --ca "$TLS/ca.pem" \
  --ca-key "$TLS/ca-key.pem" --out-dir "$TLS/renewed" --days 2 >/dev/null
mv "$TLS/renewed/backend-key.pem" "$TLS/backend-key.pem"
mv "$TLS/renewed/backend.pem" "$TLS/backend.pem"
gen_after=$(generation_after 127.0.0.1:15100 "$gen_before")
echo "  renewed B's certificate (serial $old_serial -> $(serial "$TLS/backend.pem")): generation $gen_before -> $gen_after"
[ "$gen_after" -gt "$gen_before" ] || mtls_ok=1
# sidecar A's pooled connection keeps the old session; a new one sees the new certificate
code=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:15006/after-rotation)
echo "  GET http://127.0.0.1:15006/after-rotation (the whole mesh, over mTLS) -> $code"
[ "$code" = 200 ] || mtls_ok=1

# ---------------------------------------------------------------- hot reload
step "Hot reload: adding a listener to sidecar B by rewriting its config"
gen_before=$(generation 127.0.0.1:15100)
cat >"$RUN/weft.yaml.new" <<'EOF'
# Sidecar B, reloaded by scripts/demo.sh: a second inbound listener on
# 15107 and a shorter request timeout.
node:
  service: backend
  workload: backend-v1
  namespace: demo
  labels: {app: backend, version: v1}
admin:
  address: 127.0.0.1:15100
workers: 1
timeouts: {request: 5s}
listeners:
  - name: inbound
    address: 127.0.0.1:15106
    direction: inbound
    upstream: backend-app
    plugins: [metrics, tracing, accesslog]
    tls: {mode: STRICT}
  - name: inbound-alt
    address: 127.0.0.1:15107
    direction: inbound
    upstream: backend-app
  # the mission's policy: A may call B, only on GET /foo, at 10 requests/s;
  # A is whoever proves the frontend's SPIFFE ID over mTLS
  - name: inbound-policy
    address: 127.0.0.1:15108
    direction: inbound
    upstream: backend-app
    plugins: [ratelimit, acl]
    tls: {mode: STRICT}
upstreams:
  - name: backend-app
    endpoints: [127.0.0.1:18082]
ratelimit:
  limits:
    - name: a-to-b-foo
      rate: 10/s
      burst: 10
      match:
        from: [{source: {principals: [cluster.local/ns/demo/sa/frontend]}}]
        to: [{operation: {methods: [GET], paths: [/foo]}}]
acl:
  policies:
    - name: a-to-b
      action: ALLOW
      rules:
        - name: a-get-foo
          from: [{source: {principals: [cluster.local/ns/demo/sa/frontend]}}]
          to: [{operation: {methods: [GET], paths: [/foo]}}]
EOF
cat >>"$RUN/weft.yaml.new" <<EOF
tracing: {sampling: 100, endpoint: "http://127.0.0.1:14318/v1/traces", batch: {interval: 200ms}}
accesslog: {path: $RUN/logs/access-b.log}
tls: {cert: $TLS/backend.pem, key: $TLS/backend-key.pem, bundle: $TLS/ca.pem}
EOF
# rename into place, as a ConfigMap update would swap it in atomically
mv "$RUN/weft.yaml.new" "$RUN/sidecar-backend/weft.yaml"
echo "  wrote $RUN/sidecar-backend/weft.yaml (new listeners 'inbound-alt' on 127.0.0.1:15107 and"
echo "  'inbound-policy' on 127.0.0.1:15108, timeouts.request 5s)"
gen_after=$(generation_after 127.0.0.1:15100 "$gen_before")
reload_ok=0
if [ "$gen_after" -gt "$gen_before" ]; then
  pid_b=$(awk '$2 == "sidecar-b" {print $1}' "$RUN/pids")
  if kill -0 "$pid_b" 2>/dev/null; then same="no restart: pid $pid_b still serving"; else same="but sidecar B exited"; reload_ok=1; fi
  echo "  sidecar B generation: $gen_before -> $gen_after ($same)"
  curl -s http://127.0.0.1:15100/config | python3 -c '
import json, sys
c = json.load(sys.stdin)
for l in c["listeners"]:
    print("    listener %-12s %s -> %s" % (l["name"], l["address"], l["upstream"]))
r = c.get("last_reload")
if r:
    print("    last_reload: " + json.dumps(r))'
  code=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:15107/via-new-listener)
  echo "  GET http://127.0.0.1:15107/via-new-listener -> $code"
  [ "$code" = 200 ] || reload_ok=1
  code=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:15006/after-reload)
  echo "  GET http://127.0.0.1:15006/after-reload (the whole mesh again) -> $code"
  [ "$code" = 200 ] || reload_ok=1
else
  echo "  sidecar B generation stayed at $gen_before after 5 s; see $RUN/logs/sidecar-b.log"
  reload_ok=1
fi

# ---------------------------------------------------------------- policy
step "Policy: A may call B, only on GET /foo, at 10 requests/s (sidecar B, 127.0.0.1:15108)"
policy_ok=0
codes_of() {   # codes_of IDENTITY METHOD PATH N: N requests on one mTLS connection
  local urls=() i
  for i in $(seq "$4"); do urls+=(-o /dev/null "https://127.0.0.1:15108$3"); done
  # -k: the demo caller skips checking B's name (B's certificate names a
  # SPIFFE ID, not a host); B checks the caller's certificate in full
  curl -s -k --cert "$TLS/$1.pem" --key "$TLS/$1-key.pem" -X "$2" -w '%{http_code}\n' \
    "${urls[@]}" | sort | uniq -c |
    awk '{printf "%s%s x %s", (NR > 1 ? ", " : ""), $2, $1} END {print ""}'
}
t0=$(date +%s%N)
a_foo=$(codes_of frontend GET /foo 40)
ms=$((($(date +%s%N) - t0) / 1000000))
a_bar=$(codes_of frontend GET /bar 1)
a_post=$(codes_of frontend POST /foo 1)
c_foo=$(codes_of intruder GET /foo 1)
echo "  A (sa/frontend) GET /foo, 40 in $ms ms: $a_foo"
echo "      (a burst of 10 and one more every 100 ms pass; the rest get 429 rate_limited)"
echo "  A (sa/frontend) GET /bar:              $a_bar   (rbac-denied)"
echo "  A (sa/frontend) POST /foo:             $a_post"
echo "  C (sa/intruder) GET /foo:              $c_foo"
case "$a_foo" in *"200 x "*", 429 x "*) ;; *) policy_ok=1 ;; esac
[ "$a_bar" = "403 x 1" ] && [ "$a_post" = "403 x 1" ] && [ "$c_foo" = "403 x 1" ] || policy_ok=1
echo "  what sidecar B logged and counted:"
grep -m 2 'acl: denied' "$RUN/logs/sidecar-b.log" | sed 's/^/    /' || true
curl -s http://127.0.0.1:15100/metrics | grep -E '^weft_(ratelimit_requests|acl_[a-z_]+)_total' |
  grep -v ' 0$' | sed 's/^/    /' || true
echo "  the same policy as an Istio AuthorizationPolicy file: docs/policy-example.md"

# ---------------------------------------------------------------- pointers
step "Where to look"
cat <<EOF
  curl -s http://127.0.0.1:15000/metrics     # sidecar A counters (Prometheus text)
  curl -s http://127.0.0.1:15000/config      # sidecar A live config: generation, listeners, sources
  curl -s http://127.0.0.1:15100/metrics     # sidecar B
  curl -s http://127.0.0.1:15100/config
  curl -s http://127.0.0.1:15006/hello       # a request through the whole mesh
  logs:    $RUN/logs/{sidecar-a,sidecar-b,frontend-app,backend-app,collector}.log
  access:  $RUN/logs/access-{a,b}.log (one JSON line per request)
  traces:  $RUN/logs/spans.jsonl (what the demo collector received, one span per line)
  configs: $RUN/sidecar-frontend/, $RUN/sidecar-backend/ (edit a file there to hot-reload)
EOF

echo
# the first part that failed, in the order the demo ran them
for part in "traffic:$traffic_ok" "hot reload:$reload_ok" "policy:$policy_ok" \
            "observability:$obs_ok" "mTLS:$mtls_ok"; do
  if [ "${part##*:}" -ne 0 ]; then
    bold "demo: ${part%:*} FAILED"
    exit 1
  fi
done
if [ "$KEEP" -eq 1 ]; then
  bold "demo: OK; the mesh keeps running (stop it with: ./scripts/demo.sh --stop)"
else
  bold "demo: OK; stopping the mesh (run with --keep to leave it running)"
fi
