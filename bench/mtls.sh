#!/usr/bin/env bash
# weft mTLS benchmark (issue 6): keep-alive throughput with mTLS between
# sidecars against the same path in plaintext, and what a full and a
# resumed handshake cost. See bench/README.md, "mTLS (issue 6)".
#
# Usage: bench/mtls.sh
# Knobs (environment): RUNS=5 DURATION=10 WARMUP=1 HANDSHAKES=1000
#                      PORT_BASE=18280 BUILD_DIR=bench/.build-release
#                      TARGETS="s2s-plain s2s-mtls" (measure only these; the
#                        default is every shape below, rotated every run)
#
# Shapes (each started afresh for each run, measured while it is alone):
#   s2s-plain    wrk -> weft A (outbound) -> weft B (inbound) -> backend
#   s2s-mtls     the same, A -> B mTLS (A: ISTIO_MUTUAL, B: STRICT)
#   term-plain   wrk -> HAProxy -> weft B -> backend
#   term-mtls    the same, HAProxy -> B mTLS with a client certificate
#                (wrk cannot present one; HAProxy is the TLS client)
#   nginx-plain  wrk -> HAProxy -> nginx -> backend
#   nginx-mtls   the same, nginx terminating mTLS (ssl_verify_client on)
#   hs-weft      bench/tls-handshake against weft B STRICT: plaintext
#                baseline, full and resumed handshakes, B's CPU per connection
#   hs-nginx     the same against nginx with ssl_verify_client on
set -euo pipefail

RUNS=${RUNS:-5}
PORT_BASE=${PORT_BASE:-18280}
HANDSHAKES=${HANDSHAKES:-1000}
# run.sh's helpers: ensure_packages, start/stop_pid and the EXIT trap,
# cpu_ticks, run_wrk, median, add/R, paired_ratio, the backend's config
# shellcheck source=bench/run.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/run.sh"

PORT_B_PLAIN=$((PORT_BASE + 30))    # weft B, inbound, plaintext
PORT_B_MTLS=$((PORT_BASE + 31))     # weft B, inbound, STRICT
PORT_A=$((PORT_BASE + 32))          # weft A, outbound, plaintext in (wrk)
PORT_HAP=$((PORT_BASE + 33))        # HAProxy, the TLS client of the term-* shapes
PORT_NGX_PLAIN=$((PORT_BASE + 34))  # nginx as inbound terminator, plaintext
PORT_NGX_MTLS=$((PORT_BASE + 35))   # nginx as inbound terminator, mTLS
PORT_B_ADMIN=$((PORT_BASE + 40))
PORT_A_ADMIN=$((PORT_BASE + 41))
TRUST_DOMAIN=cluster.local
ID_A=spiffe://$TRUST_DOMAIN/ns/default/sa/a
ID_B=spiffe://$TRUST_DOMAIN/ns/default/sa/b
ALL_SHAPES=(s2s-plain s2s-mtls term-plain term-mtls nginx-plain nginx-mtls hs-weft hs-nginx)

# ---------------------------------------------------------------- configs
# B: inbound sidecar in front of the backend; A: outbound sidecar calling B.
# mode plain: no tls anywhere; mode mtls: the workload's credentials, B's
# listener STRICT, A's upstream ISTIO_MUTUAL with B's SPIFFE ID. B in mtls
# mode also keeps a plaintext listener: the baseline of the handshake runs.
mtls_write_weft_configs() {
  local mode
  for mode in plain mtls; do
    mkdir -p "$WORK/b-$mode" "$WORK/a-$mode"
    {
      echo "admin: {address: 127.0.0.1:$PORT_B_ADMIN}"
      echo "workers: 1"
      [[ $mode == mtls ]] && printf 'tls:\n  cert: %s\n  key: %s\n  bundle: %s\n' \
        "$WORK/certs/b.pem" "$WORK/certs/b-key.pem" "$WORK/certs/ca.pem"
      echo "listeners:"
      echo "  - name: inbound-plain"
      echo "    address: 127.0.0.1:$PORT_B_PLAIN"
      echo "    direction: inbound"
      echo "    upstream: backend"
      if [[ $mode == mtls ]]; then
        echo "  - name: inbound"
        echo "    address: 127.0.0.1:$PORT_B_MTLS"
        echo "    direction: inbound"
        echo "    upstream: backend"
        echo "    tls: {mode: STRICT}"
      fi
      echo "upstreams:"
      echo "  - name: backend"
      echo "    endpoints: [127.0.0.1:$PORT_BACKEND]"
    } >"$WORK/b-$mode/weft.yaml"
    {
      echo "admin: {address: 127.0.0.1:$PORT_A_ADMIN}"
      echo "workers: 1"
      [[ $mode == mtls ]] && printf 'tls:\n  cert: %s\n  key: %s\n  bundle: %s\n' \
        "$WORK/certs/a.pem" "$WORK/certs/a-key.pem" "$WORK/certs/ca.pem"
      echo "listeners:"
      echo "  - name: outbound"
      echo "    address: 127.0.0.1:$PORT_A"
      echo "    direction: outbound"
      echo "    upstream: b"
      echo "upstreams:"
      echo "  - name: b"
      if [[ $mode == mtls ]]; then
        echo "    endpoints: [127.0.0.1:$PORT_B_MTLS]"
        echo "    tls:"
        echo "      mode: ISTIO_MUTUAL"
        echo "      spiffe_ids: [$ID_B]"
      else
        echo "    endpoints: [127.0.0.1:$PORT_B_PLAIN]"
      fi
    } >"$WORK/a-$mode/weft.yaml"
  done
}

# HAProxy as the client of the term-* and nginx-* shapes: plaintext in from
# wrk, keep-alive out (http-reuse always: client connections share server
# connections, as weft A's pool does), with a client certificate when the
# server is an mTLS port
mtls_write_haproxy_config() {  # name server-port tls(0|1)
  local dir=$WORK/haproxy-$1 tls=""
  mkdir -p "$dir"
  ((${3})) && tls="ssl crt $WORK/certs/a-combined.pem ca-file $WORK/certs/ca.pem verify required alpn http/1.1"
  cat >"$dir/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 4096
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 75s
  timeout server 75s
  timeout http-keep-alive 75s
frontend fe
  bind 127.0.0.1:$PORT_HAP
  default_backend be
backend be
  server s 127.0.0.1:$2 $tls
EOF
}

# nginx as an inbound mTLS terminator: the same keep-alive pool to the
# backend as run.sh's nginx, one plaintext and one mTLS server; session
# tickets are on by default (OpenSSL sends two per TLS 1.3 handshake)
mtls_write_nginx_config() {
  mkdir -p "$WORK/nginx-term"
  {
    nginx_proxy_head "$WORK/nginx-term" 1 warn
    cat <<EOF
  server {
    listen 127.0.0.1:$PORT_NGX_PLAIN backlog=4096;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
  server {
    listen 127.0.0.1:$PORT_NGX_MTLS ssl backlog=4096;
    ssl_certificate $WORK/certs/b.pem;
    ssl_certificate_key $WORK/certs/b-key.pem;
    ssl_client_certificate $WORK/certs/ca.pem;
    ssl_verify_client on;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_tickets on;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
  } >"$WORK/nginx-term/nginx.conf"
}

mtls_make_certs() {
  local ctl=$BUILD_DIR/ctl/weftctl d=$WORK/certs
  "$ctl" cert ca --trust-domain "$TRUST_DOMAIN" --out-dir "$d" >/dev/null
  "$ctl" cert issue --namespace default --service-account a --ca "$d/ca.pem" --ca-key "$d/ca-key.pem" --out-dir "$d" >/dev/null
  "$ctl" cert issue --namespace default --service-account b --ca "$d/ca.pem" --ca-key "$d/ca-key.pem" --out-dir "$d" >/dev/null
  cat "$d/a.pem" "$d/a-key.pem" >"$d/a-combined.pem"   # HAProxy's crt: chain and key in one file
}

# ---------------------------------------------------------------- processes
mtls_start_weft() {  # name(b-plain|b-mtls|a-plain|a-mtls) admin-port -> START_PID
  start "$WORK/$1/out.log" "$WEFT_BIN" --config "$WORK/$1/weft.yaml" --log-level warning
  wait_http_200 "http://127.0.0.1:$2/ready" "$START_PID" ||
    die "weft $1 did not become ready; log: $(cat "$WORK/$1/out.log")"
}

# sums a metric family's samples whose labels contain every given
# label="value" pair; empty when the family does not exist
mtls_metric() {  # admin-port family [label="value"...]
  local port=$1 fam=$2; shift 2
  curl -s --max-time 2 "http://127.0.0.1:$port/metrics" 2>/dev/null |
    awk -v fam="$fam" -v want="$*" '
      $1 ~ "^" fam "([{]|$)" {
        n = split(want, w, " "); ok = 1
        for (i = 1; i <= n; i++) if (index($1, w[i]) == 0) ok = 0
        if (ok) { s += $NF; found = 1 }
      }
      END { if (found) printf "%d\n", s }'
}

mtls_cpu() {  # cpu ticks of several pids (each with its children)
  local p total=0
  for p in "$@"; do total=$((total + $(cpu_ticks "$p"))); done
  echo "$total"
}

per_req() { awk -v c="$1" -v hz="$HZ" -v r="$2" 'BEGIN{ if (r == 0) print "nan"; else printf "%.3f", c * 1e6 / hz / r }'; }

# the % of all cores used by processes outside the benchmark: machine busy
# ticks minus the measured pids, the backend and this shell's children (wrk)
mtls_snap() { echo "$(machine_ticks) $(mtls_cpu "$@" "$BACKEND_PID") $(own_children_ticks)"; }
mtls_foreign() {
  awk -v a="$1" -v b="$2" 'BEGIN{ split(a, x, " "); split(b, y, " ")
    other = (y[1]-x[1]) - (y[3]-x[3]) - (y[4]-x[4]); if (other < 0) other = 0
    printf "%.0f", 100 * other / (y[2]-x[2]) }'
}

# ---------------------------------------------------------------- throughput
# starts a shape's processes; sets SH_PIDS (the proxies whose CPU counts:
# the first one or two are weft A/B or the terminator), SH_CLIENT (HAProxy
# or empty), SH_B_ADMIN (weft B's admin port or empty), SH_A_ADMIN
mtls_start_shape() {
  SH_PIDS=(); SH_CLIENT=""; SH_B_ADMIN=""; SH_A_ADMIN=""
  local mode=${1##*-}
  case $1 in
    s2s-*)
      mtls_start_weft "b-$mode" "$PORT_B_ADMIN"; SH_PIDS+=("$START_PID")
      mtls_start_weft "a-$mode" "$PORT_A_ADMIN"; SH_PIDS=("$START_PID" "${SH_PIDS[@]}")
      SH_B_ADMIN=$PORT_B_ADMIN; SH_A_ADMIN=$PORT_A_ADMIN
      SH_PORT=$PORT_A ;;
    term-*)
      mtls_start_weft "b-$mode" "$PORT_B_ADMIN"; SH_PIDS+=("$START_PID"); SH_B_ADMIN=$PORT_B_ADMIN
      start "$WORK/haproxy-$1/out.log" haproxy -W -db -f "$WORK/haproxy-$1/haproxy.cfg"
      SH_CLIENT=$START_PID; SH_PORT=$PORT_HAP ;;
    nginx-*)
      start "$WORK/nginx-term/out.log" nginx -p "$WORK/nginx-term" -e "$WORK/nginx-term/error.log" -c "$WORK/nginx-term/nginx.conf"
      SH_PIDS+=("$START_PID")
      wait_http_200 "http://127.0.0.1:$PORT_NGX_PLAIN/" "$START_PID" || die "nginx terminator did not start: $(cat "$WORK/nginx-term/error.log")"
      start "$WORK/haproxy-$1/out.log" haproxy -W -db -f "$WORK/haproxy-$1/haproxy.cfg"
      SH_CLIENT=$START_PID; SH_PORT=$PORT_HAP ;;
  esac
  local pid_watch=${SH_CLIENT:-${SH_PIDS[0]}} code
  wait_http_200 "http://127.0.0.1:$SH_PORT/" "$pid_watch" ||
    die "$1: no 200 through port $SH_PORT: $(curl -s -m 2 -i "http://127.0.0.1:$SH_PORT/" 2>&1 | head -5); logs: $(cat "$WORK"/{a,b}-"$mode"/out.log "$WORK/haproxy-$1/out.log" 2>/dev/null)"
  # an mTLS shape must really be mTLS: plaintext to the STRICT port gets
  # no HTTP answer
  if [[ $1 == *-mtls ]]; then
    local strict=$PORT_B_MTLS; [[ $1 == nginx-* ]] && strict=$PORT_NGX_MTLS
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$strict/" 2>/dev/null || true)
    [[ $code == 200 ]] && die "$1: plaintext to the STRICT port $strict got 200"
    [[ $1 == nginx-* ]] || [[ $code == 000 ]] || die "$1: plaintext to weft's STRICT port $strict got HTTP $code, not a refused connection"
  fi
  return 0
}

mtls_stop_shape() {
  local p
  for p in "${SH_PIDS[@]}" $SH_CLIENT; do
    is_alive "$p" || die "a process of the shape died during the run (pid $p); logs in $WORK"
    stop_pid "$p"
  done
}

mtls_measure_shape() {  # shape run
  local t=$1 run=$2 c0 c1 a0 a1 b0 b1 h0 h1 hc0 hc1 s0 s1 x0 x1 rps
  mtls_start_shape "$t"
  sleep 1
  run_wrk 64 "$SH_PORT" "$WARMUP"
  [[ $W_status == 0 ]] || die "$t: $W_status of $W_requests warm-up requests got a 4xx/5xx; see $WORK/wrk.log"

  # the first pid is the front proxy (weft A or the terminator); with two,
  # the second is weft B
  local front=${SH_PIDS[0]} back=${SH_PIDS[1]:-}
  if [[ -n $SH_B_ADMIN ]]; then
    h0=$(mtls_metric "$SH_B_ADMIN" weft_tls_handshakes_total 'role="server"')
    c0=$(mtls_metric "$SH_B_ADMIN" weft_connections_total)
  fi
  [[ -n $SH_A_ADMIN ]] && hc0=$(mtls_metric "$SH_A_ADMIN" weft_tls_handshakes_total 'role="client"')
  s0=$(mtls_snap "${SH_PIDS[@]}" $SH_CLIENT)
  a0=$(cpu_ticks "$front"); b0=0; [[ -n $back ]] && b0=$(cpu_ticks "$back")
  x0=0; [[ -n $SH_CLIENT ]] && x0=$(cpu_ticks "$SH_CLIENT")
  run_wrk 64 "$SH_PORT" "$DURATION"
  a1=$(cpu_ticks "$front"); b1=0; [[ -n $back ]] && b1=$(cpu_ticks "$back")
  x1=0; [[ -n $SH_CLIENT ]] && x1=$(cpu_ticks "$SH_CLIENT")
  s1=$(mtls_snap "${SH_PIDS[@]}" $SH_CLIENT)
  [[ $W_status == 0 ]] || die "$t: $W_status of $W_requests requests got a 4xx/5xx at 64 connections; see $WORK/wrk.log"
  rps=$(awk -v r="$W_requests" -v d="$W_duration_us" 'BEGIN{printf "%.0f", r / (d / 1e6)}')
  add "$t" rps "$rps"
  add "$t" errors64 "$((W_errors))"
  add "$t" foreign64 "$(mtls_foreign "$s0" "$s1")"
  if [[ $t == s2s-* ]]; then
    add "$t" cpu_a "$(per_req $((a1 - a0)) "$W_requests")"
    add "$t" cpu_b "$(per_req $((b1 - b0)) "$W_requests")"
    add "$t" cpu_sum "$(per_req $((a1 - a0 + b1 - b0)) "$W_requests")"
  else
    add "$t" cpu_b "$(per_req $((a1 - a0)) "$W_requests")"   # the terminator
    add "$t" cpu_client "$(per_req $((x1 - x0)) "$W_requests")"
  fi
  if [[ -n $SH_B_ADMIN ]]; then
    h1=$(mtls_metric "$SH_B_ADMIN" weft_tls_handshakes_total 'role="server"')
    c1=$(mtls_metric "$SH_B_ADMIN" weft_connections_total)
    add "$t" conns_b $((c1 - c0))
    [[ -n $h0 && -n $h1 ]] && add "$t" hs_b $((h1 - h0))
  fi
  if [[ -n $SH_A_ADMIN ]]; then
    hc1=$(mtls_metric "$SH_A_ADMIN" weft_tls_handshakes_total 'role="client"')
    [[ -n $hc0 && -n $hc1 ]] && add "$t" hs_a $((hc1 - hc0))
  fi

  # latency at 1 connection (the run above was its warm-up)
  a0=$(mtls_cpu "${SH_PIDS[@]}")
  run_wrk 1 "$SH_PORT" "$DURATION"
  a1=$(mtls_cpu "${SH_PIDS[@]}")
  [[ $W_status == 0 ]] || die "$t: $W_status of $W_requests requests got a 4xx/5xx at 1 connection"
  add "$t" p50 "$W_p50_us"; add "$t" p99 "$W_p99_us"; add "$t" errors1 "$W_errors"
  add "$t" cpu_c1 "$(per_req $((a1 - a0)) "$W_requests")"
  mtls_stop_shape
  log "run $run $t: $rps req/s @64; CPU us/req A+B $(last "$t" cpu_sum), B or terminator $(last "$t" cpu_b); p50 $W_p50_us us @1; connections to B $(last "$t" conns_b), TLS handshakes at B $(last "$t" hs_b); other load $(last "$t" foreign64)%"
}

# ---------------------------------------------------------------- handshakes
# tls-handshake against an mTLS port: a plaintext baseline to the same
# server, then full and resumed handshakes, the server's CPU per connection
mtls_measure_handshakes() {  # hs-weft|hs-nginx run
  local t=$1 run=$2 pid cpu_pid plain_port mtls_port out line kv m r0 r1
  if [[ $t == hs-weft ]]; then
    mtls_start_weft b-mtls "$PORT_B_ADMIN"; pid=$START_PID; cpu_pid=$pid
    plain_port=$PORT_B_PLAIN; mtls_port=$PORT_B_MTLS
    r0=$(mtls_metric "$PORT_B_ADMIN" weft_tls_handshakes_total 'role="server"' 'resumed="true"')
  else
    start "$WORK/nginx-term/out.log" nginx -p "$WORK/nginx-term" -e "$WORK/nginx-term/error.log" -c "$WORK/nginx-term/nginx.conf"
    pid=$START_PID; plain_port=$PORT_NGX_PLAIN; mtls_port=$PORT_NGX_MTLS
    wait_http_200 "http://127.0.0.1:$plain_port/" "$pid" || die "nginx terminator did not start"
    cpu_pid=$(children_of "$pid" | head -1)   # the worker does the TLS
  fi
  sleep 1
  out=$("$BUILD_DIR/bench/tls-handshake" --cert "$WORK/certs/a.pem" --key "$WORK/certs/a-key.pem" \
          --ca "$WORK/certs/ca.pem" --spiffe-id "$ID_B" -n "$HANDSHAKES" --server-pid "$cpu_pid" \
          --plain "127.0.0.1:$plain_port" "127.0.0.1:$mtls_port" 2>&1) ||
    log "$t: tls-handshake reported failures or unresumed connections: $(grep -v '^BENCH' <<<"$out" | grep tls-handshake | head -5)"
  printf '%s\n' "$out" >>"$WORK/tls-handshake-$t.log"
  while read -r line; do
    [[ $line == BENCH\ * ]] || continue
    m=""
    for kv in ${line#BENCH }; do [[ $kv == mode=* ]] && m=${kv#mode=}; done
    for kv in ${line#BENCH }; do
      [[ $kv == mode=* ]] && continue
      add "$t" "$m.${kv%%=*}" "${kv#*=}"
    done
  done <<<"$out"
  [[ -n ${R[$t:full.n]:-} ]] || die "$t: no BENCH lines from tls-handshake: $out"
  if [[ $t == hs-weft ]]; then
    r1=$(mtls_metric "$PORT_B_ADMIN" weft_tls_handshakes_total 'role="server"' 'resumed="true"')
    # the series appears with the first resumed handshake
    [[ -n $r1 ]] && add "$t" server_resumed $((r1 - ${r0:-0}))
  fi
  is_alive "$pid" || die "$t: the server died during the handshake runs; log: $(cat "$WORK"/b-mtls/out.log "$WORK/nginx-term/error.log" 2>/dev/null)"
  stop_pid "$pid"
  log "run $run $t: full $(last "$t" full.hs_p50_us) us (server CPU $(last "$t" full.server_cpu_us) us/conn), resumed $(last "$t" resumed.hs_p50_us) us (server CPU $(last "$t" resumed.server_cpu_us) us/conn, $(last "$t" resumed.resumed)/$(last "$t" resumed.n) resumed), plain $(last "$t" plain.conn_p50_us) us ($(last "$t" plain.server_cpu_us) us/conn)"
}

mtls_measure() {  # target run
  case $1 in
    hs-*) mtls_measure_handshakes "$1" "$2" ;;
    *) mtls_measure_shape "$1" "$2" ;;
  esac
}

# ---------------------------------------------------------------- report
M() { median "${R[$1:$2]:-}"; }   # median over runs
pr() {  # median of per-run ratios, as 0.00x
  local x; x=$(paired_ratio "$1" "$2" "$3")
  if [[ -z $x || $x == nan ]]; then echo "n/a"; else awk -v x="$x" 'BEGIN{printf "%.2fx", x}'; fi
}
last() { local v=${R[$1:$2]:-–}; echo "${v##* }"; }   # this run's value
ratios() { pairwise 'printf "%.2f", x / y' "$1:$3" "$2:$3"; }  # the per-run ratios, "0.91 1.02 ..."
minus() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a == "nan" || b == "nan" || a == "" || b == "") print "n/a"; else printf "%.1f", a - b }'; }

mtls_report() {
  local elapsed=$1 out t
  tree_state core include meson.build
  out=$(results_path -mtls)
  {
    report_head "weft mTLS benchmark"
    echo "- weft $COMMIT$DIRTY, release build; GnuTLS $(pkg-config --modversion gnutls); $(nginx_version) ($(nginx -V 2>&1 | grep -o 'built with OpenSSL [^ ]*' | sed 's/built with //')); $(haproxy_version); wrk $(wrk_version)"
    echo "- every proxy 1 worker; backend: nginx, 1 worker, 19-byte 200 response; wrk -t1, ${WARMUP} s warm-up then ${DURATION} s at 64 connections, then ${DURATION} s at 1 connection"
    echo "- certificates from \`weftctl cert\` (ECDSA P-256), $ID_A calls $ID_B; tls-handshake: $HANDSHAKES connections per mode per run"
    echo "- every number is the median of $RUNS runs (each run starts every process afresh, shapes rotated); ratios are the median of the per-run ratios; took ${elapsed} s"
    echo "- CPU used by processes outside the benchmark during the 64-connection runs, % of all cores: $(foreign_text foreign64)"
    echo
    if has s2s-plain || has s2s-mtls; then
      echo "### Sidecar to sidecar: wrk → weft A (outbound) → weft B (inbound) → backend"
      echo
      echo "| A → B | req/s @64 | CPU µs/req A | CPU µs/req B | CPU µs/req A+B | CPU µs/req A+B @1 | p50 @1 (µs) | p99 @1 (µs) | A→B connections opened, per run | TLS handshakes at B, per run | wrk errors |"
      echo "|---|---|---|---|---|---|---|---|---|---|---|"
      for t in s2s-plain s2s-mtls; do
        has "$t" || continue
        echo "| ${t#s2s-} | $(M "$t" rps) | $(M "$t" cpu_a) | $(M "$t" cpu_b) | $(M "$t" cpu_sum) | $(M "$t" cpu_c1) | $(M "$t" p50) | $(M "$t" p99) | ${R[$t:conns_b]:-n/a} | ${R[$t:hs_b]:-n/a} | $(( $(sumv "${R[$t:errors64]:-0}") + $(sumv "${R[$t:errors1]:-0}") )) |"
      done
      if has s2s-plain && has s2s-mtls; then
        echo
        local x; x=$(paired_ratio s2s-mtls s2s-plain rps)
        awk -v x="$x" -v m="$(ratio "$(M s2s-mtls rps)" "$(M s2s-plain rps)")" -v r="$(ratios s2s-mtls s2s-plain rps)" 'BEGIN{printf "- **throughput mTLS / plaintext: %.2fx** (target >= 0.7x) -> %s; ratio of the medians %s; per run: %s\n", x, (x >= 0.7 ? "met" : sprintf("MISSED by %.0f%%", (0.7 - x) / 0.7 * 100)), m, r}'
        echo "- CPU per request mTLS / plaintext: A $(pr s2s-mtls s2s-plain cpu_a), B $(pr s2s-mtls s2s-plain cpu_b), A+B $(pr s2s-mtls s2s-plain cpu_sum) (per run: $(ratios s2s-mtls s2s-plain cpu_sum)); at 1 connection A+B $(pr s2s-mtls s2s-plain cpu_c1)"
        echo "- latency at 1 connection mTLS / plaintext: p50 $(pr s2s-mtls s2s-plain p50), p99 $(pr s2s-mtls s2s-plain p99)"
      fi
      echo
    fi
    if has term-plain || has term-mtls || has nginx-plain || has nginx-mtls; then
      echo "### Inbound terminator alone: wrk → HAProxy (TLS client, keep-alive) → weft B or nginx → backend"
      echo
      echo "| terminator | HAProxy → terminator | req/s @64 | CPU µs/req terminator | CPU µs/req HAProxy | p50 @1 (µs) | p99 @1 (µs) | connections to B opened, per run | TLS handshakes at B, per run | wrk errors |"
      echo "|---|---|---|---|---|---|---|---|---|---|"
      for t in term-plain term-mtls nginx-plain nginx-mtls; do
        has "$t" || continue
        local who=weft; [[ $t == nginx-* ]] && who=nginx
        echo "| $who B | ${t#*-} | $(M "$t" rps) | $(M "$t" cpu_b) | $(M "$t" cpu_client) | $(M "$t" p50) | $(M "$t" p99) | ${R[$t:conns_b]:-n/a} | ${R[$t:hs_b]:-n/a} | $(( $(sumv "${R[$t:errors64]:-0}") + $(sumv "${R[$t:errors1]:-0}") )) |"
      done
      echo
      if has term-plain && has term-mtls; then
        echo "- weft B: mTLS / plaintext throughput $(pr term-mtls term-plain rps), CPU per request $(pr term-mtls term-plain cpu_b)"
      fi
      if has nginx-plain && has nginx-mtls; then
        echo "- nginx: mTLS / plaintext throughput $(pr nginx-mtls nginx-plain rps), CPU per request $(pr nginx-mtls nginx-plain cpu_b)"
      fi
      if has term-mtls && has nginx-mtls; then
        echo "- mTLS, weft / nginx: throughput $(pr term-mtls nginx-mtls rps), CPU per request $(pr term-mtls nginx-mtls cpu_b)"
      fi
      echo
    fi
    if has hs-weft || has hs-nginx; then
      echo "### Handshakes: bench/tls-handshake → weft B STRICT (or nginx) → backend, one GET / per connection"
      echo
      echo "| server | connection | resumed | handshake p50 (µs) | handshake p99 (µs) | connection p50 (µs) | connection p99 (µs) | server CPU µs/conn | server CPU over plaintext µs/conn | client CPU µs/conn |"
      echo "|---|---|---|---|---|---|---|---|---|---|"
      for t in hs-weft hs-nginx; do
        has "$t" || continue
        local who=weft; [[ $t == hs-nginx ]] && who=nginx
        local base; base=$(M "$t" plain.server_cpu_us)
        for m in plain full resumed; do
          local res="–" h50="–" h99="–" over="–"
          if [[ $m != plain ]]; then
            res="$(sumv "${R[$t:$m.resumed]:-0}")/$(sumv "${R[$t:$m.n]:-0}")"
            h50=$(M "$t" "$m.hs_p50_us"); h99=$(M "$t" "$m.hs_p99_us")
            over=$(minus "$(M "$t" "$m.server_cpu_us")" "$base")
          fi
          echo "| $who | $m | $res | $h50 | $h99 | $(M "$t" "$m.conn_p50_us") | $(M "$t" "$m.conn_p99_us") | $(M "$t" "$m.server_cpu_us") | $over | $(M "$t" "$m.client_cpu_us") |"
        done
      done
      echo
      if has hs-weft && [[ -n ${R[hs-weft:server_resumed]:-} ]]; then
        echo "- weft's own count of resumed server handshakes (weft_tls_handshakes_total{resumed=\"true\"}) per run: ${R[hs-weft:server_resumed]}"
      fi
      if has hs-weft && has hs-nginx; then
        echo "- full handshake, weft / nginx: wall $(pr hs-weft hs-nginx full.hs_p50_us), server CPU $(pr hs-weft hs-nginx full.server_cpu_us); resumed: wall $(pr hs-weft hs-nginx resumed.hs_p50_us), server CPU $(pr hs-weft hs-nginx resumed.server_cpu_us)"
      fi
      for t in hs-weft hs-nginx; do
        has "$t" || continue
        echo "- ${t#hs-} negotiated (all runs): $(grep -h '^session' "$WORK/tls-handshake-$t.log" 2>/dev/null | sed 's/^session //' | sort -u | tr '\n' ';' | sed 's/;$//; s/;/; /g')"
      done
      echo
    fi
    per_run_details 32
  } >"$out"
  echo
  cat "$out"
  echo
  log "results written to ${out#"$REPO"/}"
}

# ---------------------------------------------------------------- main
mtls_main() {
  ensure_packages
  HZ=$(getconf CLK_TCK)
  build_weft "weft, weftctl and tls-handshake" core/weft ctl/weftctl bench/tls-handshake
  targets_from_env "${ALL_SHAPES[@]}"
  for p in "$PORT_BACKEND" "$PORT_B_PLAIN" "$PORT_B_MTLS" "$PORT_A" "$PORT_HAP" "$PORT_NGX_PLAIN" \
           "$PORT_NGX_MTLS" "$PORT_B_ADMIN" "$PORT_A_ADMIN"; do
    port_free "$p" || die "port $p is in use; set PORT_BASE to another base"
  done

  WORK=$(mktemp -d /tmp/weft-bench-mtls.XXXXXX)
  write_configs   # run.sh's: the backend's nginx.conf is the one used here
  mtls_make_certs
  mtls_write_weft_configs
  mtls_write_haproxy_config term-plain "$PORT_B_PLAIN" 0
  mtls_write_haproxy_config term-mtls "$PORT_B_MTLS" 1
  mtls_write_haproxy_config nginx-plain "$PORT_NGX_PLAIN" 0
  mtls_write_haproxy_config nginx-mtls "$PORT_NGX_MTLS" 1
  mtls_write_nginx_config
  mkdir -p "$WORK/nginx-term/tmp-body" "$WORK/nginx-term/tmp-proxy"
  local t0=$SECONDS

  start_backend
  rotate_runs mtls_measure
  mtls_report $((SECONDS - t0))
}

mtls_main "$@"
