#!/usr/bin/env bash
# weft idle-connections benchmark (issue 7, target 4): throughput at 1 and
# 64 active connections while 10,000 idle keep-alive client connections
# are open, against the same with none, and the memory each idle
# connection costs; weft beside nginx and HAProxy. See bench/README.md.
#
# Usage: bench/idle.sh   (root, or a hard RLIMIT_NOFILE above 2 x IDLE_CONNS)
# Knobs (environment): RUNS=3 DURATION=5 WARMUP=1 IDLE_CONNS=10000
#                      IDLE_SOURCES=1 (spread the idle connections over
#                        127.0.0.1, .2, ...; 10k to one port fit in one)
#                      IDLE_TIMEOUT=600s (each proxy's keep-alive idle
#                        timeout here, so no idle connection is closed
#                        during the measurement)
#                      SKIP_BUILD=1 (measure the binaries already in BUILD_DIR)
#                      PORT_BASE=18300 BUILD_DIR=bench/.build-release
#                      TARGETS="weft nginx haproxy" KEEP_WORK=1
#                      SUMMARY_FILE (append the target rows), DETAIL_FILE
#                        (the report, instead of bench/results/<stamp>-idle.md)
#
# Per run and proxy (each started afresh, the order rotated every run):
#   1. wrk -c64 for WARMUP s, then wrk -c64 and wrk -c1 for DURATION s each,
#      with no idle connection: the baseline
#   2. RSS of all the proxy's processes ("before")
#   3. bench/idle-conns opens IDLE_CONNS connections; each sends one GET,
#      reads the answer, then stays open and silent; 1 s later RSS again
#      ("with idle"): (with idle - before) / IDLE_CONNS is the memory per
#      idle connection
#   4. wrk -c64 and wrk -c1 for DURATION s each, with the idle ones open
#   5. idle-conns checks every idle connection is still open, then sends
#      one more request on each (all must get 200), then resets them all
set -euo pipefail

SKIP_BUILD=${SKIP_BUILD:-0}
RUNS=${RUNS:-3}
DURATION=${DURATION:-5}
PORT_BASE=${PORT_BASE:-18300}
IDLE_CONNS=${IDLE_CONNS:-10000}
IDLE_SOURCES=${IDLE_SOURCES:-1}
IDLE_TIMEOUT=${IDLE_TIMEOUT:-600s}
IDLE_VERIFY=${IDLE_VERIFY:-1}
# run.sh's helpers: ensure_packages, start/stop_pid and the EXIT trap,
# mem_kb, run_wrk, median, add/R, paired_ratio, the proxies' configs
# shellcheck source=bench/run.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/run.sh"
SUMMARY_FILE=${SUMMARY_FILE:-}
DETAIL_FILE=${DETAIL_FILE:-}
IDLE_TARGETS=(weft nginx haproxy)
# fds a proxy may need: client side, backend side (should a proxy keep a backend
# connection per client one), a margin; capped at the hard limit, which
# even root cannot raise without CAP_SYS_RESOURCE (a container)
IDLE_MAX_FDS=$((2 * IDLE_CONNS + 4096))
IDLE_HARD_FDS=$(ulimit -Hn)
[[ $IDLE_HARD_FDS != unlimited ]] && ((IDLE_HARD_FDS < IDLE_MAX_FDS)) && IDLE_MAX_FDS=$IDLE_HARD_FDS

# ---------------------------------------------------------------- configs
# idle_patch <file> <sed expression> <text that must then be in the file>:
# run.sh's configs with the limits raised; stops if run.sh's text changed
# so that the expression no longer applies
idle_patch() {
  sed -i "$2" "$1"
  grep -qF -- "$3" "$1" || die "could not raise the limits in $1 (run.sh's config changed?): $2"
}

# run.sh's configs as they are (1 worker, keep-alive to the backend), with
# room for IDLE_CONNS connections and an idle timeout of IDLE_TIMEOUT; the
# backend too, in case a proxy keeps a backend connection per idle client
# (the report shows the backend's active connections: none of the three does)
idle_write_configs() {
  write_configs
  local f conns=$((IDLE_CONNS + 8192)) secs=${IDLE_TIMEOUT%s}
  for f in "$WORK/backend/nginx.conf" "$WORK/nginx/nginx.conf"; do
    idle_patch "$f" "s/^events { worker_connections [0-9]*; }/worker_rlimit_nofile $IDLE_MAX_FDS;\nevents { worker_connections $conns; }/" \
      "worker_connections $conns;"
    idle_patch "$f" "s/keepalive_timeout [0-9]*s;/keepalive_timeout ${secs}s;/" "keepalive_timeout ${secs}s;"
  done
  # HAProxy reserves 2 fds per connection (maxsock = 2 x maxconn + a few)
  # and refuses to start when RLIMIT_NOFILE is below that; under a low hard
  # limit it gets the most connections the limit allows, and fewer idle ones
  f=$WORK/haproxy/haproxy.cfg
  local hconns=$conns
  ((2 * hconns + 200 > IDLE_MAX_FDS)) && hconns=$(((IDLE_MAX_FDS - 200) / 2))
  IDLE_HAPROXY_CONNS=$IDLE_CONNS
  ((hconns - 100 < IDLE_CONNS)) && IDLE_HAPROXY_CONNS=$((hconns - 100))
  idle_patch "$f" "s/^  maxconn [0-9]*$/  maxconn $hconns/" "maxconn $hconns"
  idle_patch "$f" "s/^\(  timeout \(client\|server\|http-keep-alive\)\) [0-9]*s$/\1 ${secs}s/" "timeout http-keep-alive ${secs}s"
  printf 'timeouts: {client_idle: %ss}\n' "$secs" >>"$WORK/weft/weft.yaml"
}

# ---------------------------------------------------------------- idle-conns
# starts bench/idle-conns: <count> connections to <port>; sets IDLE_OPEN,
# IDLE_FAILED, IDLE_MS
idle_open() {
  coproc IDLE { exec "$IDLE_BIN" -n "$2" -s "$IDLE_SOURCES" -t 60 127.0.0.1 "$1" 2>>"$WORK/idle-conns.log"; }
  # shellcheck disable=SC2153
  IDLE_TOOL_PID=$IDLE_PID   # bash unsets IDLE_PID once it reaps the coproc
  STARTED+=("$IDLE_TOOL_PID")
  local line
  read -r -t 120 line <&"${IDLE[0]}" || die "idle-conns said nothing within 120 s; log: $(cat "$WORK/idle-conns.log")"
  [[ $line == READY* ]] || die "idle-conns: unexpected '$line'"
  idle_kv "$line"
  IDLE_OPEN=$K_open; IDLE_FAILED=$K_failed; IDLE_MS=$K_ms
}

K_open=0 K_failed=0 K_ms=0 K_closed=0 K_ok=0
idle_kv() {  # "WORD k=v k=v" -> K_k=v
  local kv
  for kv in ${1#* }; do printf -v "K_${kv%%=*}" '%s' "${kv#*=}"; done
}

idle_cmd() {  # command -> the answer line in IDLE_ANSWER
  echo "$1" >&"${IDLE[1]}"
  read -r -t 120 IDLE_ANSWER <&"${IDLE[0]}" || die "idle-conns did not answer '$1'"
  idle_kv "$IDLE_ANSWER"
}

idle_close() {
  { echo quit >&"${IDLE[1]}"; } 2>/dev/null || true
  local i
  for ((i = 0; i < 100; i++)); do is_alive "$IDLE_TOOL_PID" || break; sleep 0.1; done
  stop_pid "$IDLE_TOOL_PID"
}

# active connections of the backend, from its stub_status
backend_active() {
  curl -s --max-time 2 "http://127.0.0.1:$PORT_BACKEND/nginx_status" | awk 'NR==1{print $3}'
}

# ---------------------------------------------------------------- measure
# idle_wrk <target> <pid> <port> <conns> <metric>: one measured wrk run;
# also records how much CPU processes outside the benchmark used meanwhile
# (run.sh's foreign_pct: % of all cores), the warning light for noise
idle_wrk() {
  local s0 s1
  s0=$(snap "$2")
  run_wrk "$4" "$3" "$DURATION"
  s1=$(snap "$2")
  add "$1" "$5" "$(awk -v r="$W_requests" -v d="$W_duration_us" 'BEGIN{printf "%.0f", r / (d / 1e6)}')"
  add "$1" errors "$W_errors"
  add "$1" foreign "$(foreign_pct "$s0" "$s1")"
}

idle_measure_one() {  # target run
  local t=$1 run=$2 pid port rss0 anon0 rss1 anon1 rss2 rps
  start_target "$t"; pid=$START_PID; port=$TARGET_PORT
  sleep 1
  run_wrk 64 "$port" "$WARMUP" >/dev/null
  idle_wrk "$t" "$pid" "$port" 64 rps64_0
  idle_wrk "$t" "$pid" "$port" 1 rps1_0
  sleep 1
  read -r rss0 anon0 _ <<<"$(mem_kb "$pid")"
  add "$t" rss_before "$rss0"; add "$t" anon_before "$anon0"

  local want=$IDLE_CONNS
  [[ $t == haproxy ]] && want=$IDLE_HAPROXY_CONNS
  idle_open "$port" "$want"
  add "$t" idle_open "$IDLE_OPEN"; add "$t" idle_failed "$IDLE_FAILED"; add "$t" idle_open_ms "$IDLE_MS"
  ((IDLE_FAILED == 0)) || log "$t: $IDLE_FAILED of $want idle connections failed to open: $(tail -1 "$WORK/idle-conns.log")"
  sleep 1
  read -r rss1 anon1 _ <<<"$(mem_kb "$pid")"
  add "$t" rss_idle "$rss1"; add "$t" anon_idle "$anon1"
  add "$t" per_conn "$(awk -v a="$rss0" -v b="$rss1" -v n="$IDLE_OPEN" 'BEGIN{printf "%.3f", n ? (b - a) / n : 0}')"
  add "$t" anon_per_conn "$(awk -v a="$anon0" -v b="$anon1" -v n="$IDLE_OPEN" 'BEGIN{printf "%.3f", n ? (b - a) / n : 0}')"
  add "$t" backend_active "$(backend_active)"

  idle_wrk "$t" "$pid" "$port" 64 rps64_i
  idle_wrk "$t" "$pid" "$port" 1 rps1_i
  read -r rss2 _ _ <<<"$(mem_kb "$pid")"
  add "$t" rss_after "$rss2"

  # still open after the measurement? then still usable?
  idle_cmd check
  add "$t" still_open "$K_open"; add "$t" closed "$K_closed"
  local ver="-"
  if ((IDLE_VERIFY)); then idle_cmd verify; ver="$K_ok/$((K_ok + K_failed))"; add "$t" verify_ok "$K_ok"; fi
  idle_close
  is_alive "$pid" || die "$t died during the run; log: $(cat "$WORK/$t/out.log")"
  stop_pid "$pid"
  log "run $run $t: @64 ${R[$t:rps64_0]##* } -> ${R[$t:rps64_i]##* } req/s, @1 ${R[$t:rps1_0]##* } -> ${R[$t:rps1_i]##* } req/s; idle $IDLE_OPEN open in $IDLE_MS ms ($IDLE_FAILED failed), RSS $rss0 -> $rss1 kB (${R[$t:per_conn]##* } kB/conn), still open at the end $K_open, verify $ver"
}

# ---------------------------------------------------------------- report
idle_report() {
  local elapsed=$1 out t m
  tree_state
  out=$(results_path -idle)
  declare -A M
  for t in "${TARGET_LIST[@]}"; do
    for m in rps64_0 rps64_i rps1_0 rps1_i rss_before rss_idle rss_after per_conn anon_per_conn still_open idle_open backend_active; do
      M[$t:$m]=$(median "${R[$t:$m]:-}")
    done
    M[$t:r64]=$(idle_pair_ratio "$t" rps64_i rps64_0)
    M[$t:r1]=$(idle_pair_ratio "$t" rps1_i rps1_0)
  done
  kib() { awk -v k="$1" 'BEGIN{ if (k == "nan") print "nan"; else printf "%.2f", k }'; }   # /proc's kB are KiB
  {
    report_head "weft idle-connections benchmark (issue 7, target 4)"
    echo "- weft $COMMIT$DIRTY, release build; $(nginx_version); $(haproxy_version); wrk -t1"
    echo "- $IDLE_CONNS idle keep-alive connections from \`bench/idle-conns\` (one process, epoll; each sent one GET and read the answer), from $IDLE_SOURCES source address(es); 1 worker each, keep-alive to the backend (run.sh's configs) with the idle timeout raised to $IDLE_TIMEOUT (weft \`timeouts: {client_idle: $IDLE_TIMEOUT}\`, nginx \`keepalive_timeout\`, HAProxy \`timeout client/http-keep-alive\`) and room for the connections (nginx \`worker_connections\`, HAProxy \`maxconn\`); RLIMIT_NOFILE $(ulimit -n)"
    echo "- CPU used by processes outside the benchmark during the measured wrk runs, as % of all cores: $(foreign_text foreign) (0 on a quiet machine)"
    echo "- wrk -c64 and -c1 for ${DURATION} s each, without and then with the idle connections; every number is the median of $RUNS runs; ratios are the median of the per-run ratios (with idle / without, the same proxy process minutes apart); took ${elapsed} s; load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    echo "| proxy | req/s @64, no idle | req/s @64, ${IDLE_CONNS} idle | ratio | req/s @1, no idle | req/s @1, ${IDLE_CONNS} idle | ratio | idle conns opened | RSS before (MiB) | RSS with idle (MiB) | RSS per idle conn (KiB) | RssAnon per idle conn (KiB) | RSS after the load (MiB) | idle conns open at the end | backend conns while idle |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    for t in "${TARGET_LIST[@]}"; do
      echo "| $t | ${M[$t:rps64_0]} | ${M[$t:rps64_i]} | ${M[$t:r64]}x | ${M[$t:rps1_0]} | ${M[$t:rps1_i]} | ${M[$t:r1]}x | ${M[$t:idle_open]} | $(fmt_mib "${M[$t:rss_before]}") | $(fmt_mib "${M[$t:rss_idle]}") | $(kib "${M[$t:per_conn]}") | $(kib "${M[$t:anon_per_conn]}") | $(fmt_mib "${M[$t:rss_after]}") | ${R[$t:still_open]} | ${R[$t:backend_active]} |"
    done
    if has haproxy && ((IDLE_HAPROXY_CONNS < IDLE_CONNS)); then
      echo
      echo "HAProxy got $IDLE_HAPROXY_CONNS idle connections, not $IDLE_CONNS: it reserves 2 fds per connection (maxsock = 2 x maxconn + a few) and will not start when RLIMIT_NOFILE is lower, and the hard limit here is $IDLE_HARD_FDS (root without CAP_SYS_RESOURCE cannot raise it), so its \`maxconn\` is $(((IDLE_MAX_FDS - 200) / 2))."
    fi
    echo
    echo "Targets (RSS per idle connection: VmRSS summed over the proxy's processes, (with idle - before) / the idle connections opened; 1 KiB = 1024 bytes, /proc's kB are KiB):"
    echo
    if has weft; then
      echo "- throughput @1 with $IDLE_CONNS idle >= 0.9x without: ${M[weft:r1]}x -> $(verdict "${M[weft:r1]}" ">=" 0.9)"
      echo "- throughput @64 with $IDLE_CONNS idle >= 0.9x without: ${M[weft:r64]}x -> $(verdict "${M[weft:r64]}" ">=" 0.9)"
      echo "- memory per idle connection <= 4 KiB: $(kib "${M[weft:per_conn]}") KiB -> $(verdict "$(kib "${M[weft:per_conn]}")" "<=" 4)"
    fi
    echo
    echo "Idle connections that failed to open, per run:"
    for t in "${TARGET_LIST[@]}"; do echo "- $t: ${R[$t:idle_failed]} (opened in ${R[$t:idle_open_ms]} ms); wrk errors ${R[$t:errors]}; verify (a second request on every idle connection, answered 200): ${R[$t:verify_ok]:-not run}"; done
    echo
    per_run_details 24
  } >"$out"
  cat "$out"
  log "results written to $out"
  [[ -n $SUMMARY_FILE ]] && idle_summary >>"$SUMMARY_FILE"
  return 0
}

# idle_pair_ratio <target> <metric with idle> <metric without>: median of per-run ratios
idle_pair_ratio() {
  awk -v m="$(median "$(pairwise 'printf "%.4f", y ? x / y : 0' "$1:$2" "$1:$3")")" \
    'BEGIN{ if (m == "nan") print "nan"; else printf "%.2f", m }'
}

# the summary rows: | target | weft | nginx | haproxy | ratio | goal | verdict |
idle_summary() {
  local t
  cell() {  # target metric-with metric-without ratio-key
    has "$1" || { echo "–"; return; }
    echo "${M[$1:$4]}x (${M[$1:$2]} / ${M[$1:$3]} req/s)"
  }
  kcell() { has "$1" || { echo "–"; return; }; echo "$(kib "${M[$1:per_conn]}") KiB"; }
  if has weft; then
    echo "| 4. req/s @1 conn with ${IDLE_CONNS} idle / none | $(cell weft rps1_i rps1_0 r1) | $(cell nginx rps1_i rps1_0 r1) | $(cell haproxy rps1_i rps1_0 r1) | ${M[weft:r1]}x | ≥ 0.9x | $(verdict "${M[weft:r1]}" ">=" 0.9) |"
    echo "| 4. req/s @64 conns with ${IDLE_CONNS} idle / none | $(cell weft rps64_i rps64_0 r64) | $(cell nginx rps64_i rps64_0 r64) | $(cell haproxy rps64_i rps64_0 r64) | ${M[weft:r64]}x | ≥ 0.9x | $(verdict "${M[weft:r64]}" ">=" 0.9) |"
    local rn="–"
    has nginx && rn=$(ratio "${M[weft:per_conn]}" "${M[nginx:per_conn]}")
    echo "| 4. RSS per idle connection | $(kcell weft) | $(kcell nginx) | $(kcell haproxy) | $rn nginx | ≤ 4 KiB | $(verdict "$(kib "${M[weft:per_conn]}")" "<=" 4) |"
  fi
}

# ---------------------------------------------------------------- main
idle_main() {
  ensure_packages
  HZ=$(getconf CLK_TCK)
  ulimit -n "$IDLE_MAX_FDS" 2>/dev/null ||
    die "cannot raise RLIMIT_NOFILE to $IDLE_MAX_FDS (hard limit $(ulimit -Hn)); run as root"
  ((IDLE_MAX_FDS >= IDLE_CONNS + 1024)) ||
    die "RLIMIT_NOFILE can go no higher than $IDLE_MAX_FDS: too few for $IDLE_CONNS idle connections"
  ((IDLE_MAX_FDS >= 2 * IDLE_CONNS + 1024)) ||
    log "note: RLIMIT_NOFILE is capped at $IDLE_MAX_FDS (the hard limit), less than HAProxy's 2 x $IDLE_CONNS + margin"
  build_weft "weft and idle-conns" core/weft bench/idle-conns
  IDLE_BIN=$BUILD_DIR/bench/idle-conns

  targets_from_env "${IDLE_TARGETS[@]}"
  for p in "$PORT_BACKEND" "$PORT_NGINX" "$PORT_HAPROXY" "$PORT_WEFT" "$PORT_WEFT_ADMIN"; do
    port_free "$p" || die "port $p is in use; set PORT_BASE to another base"
  done

  WORK=$(mktemp -d /tmp/weft-bench-idle.XXXXXX)
  idle_write_configs
  local t0=$SECONDS
  start_backend
  rotate_runs idle_measure_one
  idle_report $((SECONDS - t0))
}

idle_main "$@"
