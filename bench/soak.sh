#!/usr/bin/env bash
# weft soak (issue 7, target 5): RSS of weft with every plugin loaded under
# a steady load, sampled every 10 s; after a warm-up minute it must stay
# within +-5% of its mean. Only weft is soaked. See bench/README.md.
#
# Usage: bench/soak.sh
# Knobs (environment): SOAK=600 (seconds of load) SOAK_INTERVAL=10 (seconds
#                        between RSS samples) SOAK_WARMUP=60 (seconds of
#                        samples left out of the statistics)
#                      SOAK_CONNS=64 (wrk connections)
#                      SOAK_RUNS=1 (soaks, each with a fresh weft; the
#                        report gives the median of each statistic). RUNS
#                        and DURATION do not apply: a soak is one long run.
#                      SKIP_BUILD=1 (measure the binaries already in BUILD_DIR)
#                      PORT_BASE=18370 BUILD_DIR=bench/.build-release KEEP_WORK=1
#                      SUMMARY_FILE (append the target row), DETAIL_FILE
#                        (the report, instead of bench/results/<stamp>-soak.md)
#
# weft: 1 worker, one listener with router, acl, ratelimit, metrics, tracing
# (1% sampling, OTLP/HTTP to a local sink) and accesslog (to a file): run.sh's
# weftfull (its routes, ratelimit, acl and tracing settings) plus the access
# log. The
# access log is truncated after each sample so the disk does not fill (the
# plugin opens it O_APPEND, so it goes on writing at the new end).
set -euo pipefail

SKIP_BUILD=${SKIP_BUILD:-0}
PORT_BASE=${PORT_BASE:-18370}
SOAK=${SOAK:-600}
SOAK_INTERVAL=${SOAK_INTERVAL:-10}
SOAK_WARMUP=${SOAK_WARMUP:-60}
SOAK_CONNS=${SOAK_CONNS:-64}
SOAK_RUNS=${SOAK_RUNS:-1}
# run.sh's helpers: ensure_packages, start/stop_pid and the EXIT trap,
# mem_kb, median, add/R, the backend's config and the OTLP sink
# shellcheck source=bench/run.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/run.sh"
SUMMARY_FILE=${SUMMARY_FILE:-}
DETAIL_FILE=${DETAIL_FILE:-}
SOAK_PLUGINS="router, acl, ratelimit, metrics, tracing, accesslog"

# ---------------------------------------------------------------- config
# run.sh's weftfull (full_config: its routes, policy and tracing settings)
# with the access log added, 1 worker whatever WORKERS says
soak_write_config() {
  mkdir -p "$WORK/soak"
  WORKERS=1 full_config "$PORT_WEFT_ADMIN" "$PORT_WEFT" "$SOAK_PLUGINS" "" \
    "accesslog: {path: $WORK/soak/access.log}" >"$WORK/soak/weft.yaml"
}

soak_start_weft() {  # -> START_PID
  start "$WORK/soak/out.log" "$WEFT_BIN" --config "$WORK/soak/weft.yaml" --log-level warning
  wait_http_200 "http://127.0.0.1:$PORT_WEFT_ADMIN/ready" "$START_PID" ||
    die "weft did not become ready; log: $(cat "$WORK/soak/out.log")"
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$PORT_WEFT/" || true)
  [[ $code == 200 ]] || die "weft with every plugin answers ${code:-nothing}, not 200, to GET /; log: $(cat "$WORK/soak/out.log")"
}

# ---------------------------------------------------------------- soak
# stats over the samples after the warm-up: "min max mean maxdev%"
soak_stats() {
  tr ' ' '\n' <<<"$1" | awk NF | awk '{ v[NR] = $1; s += $1 }
    END { if (NR == 0) { print "nan nan nan nan"; exit }
      m = s / NR; mn = v[1]; mx = v[1]; d = 0
      for (i = 1; i <= NR; i++) { if (v[i] < mn) mn = v[i]; if (v[i] > mx) mx = v[i]
        x = v[i] - m; if (x < 0) x = -x; if (x > d) d = x }
      printf "%d %d %.0f %.2f\n", mn, mx, m, 100 * d / m }'
}

# least-squares slope of the samples after the warm-up, kB per minute
soak_slope() {
  awk -v iv="$SOAK_INTERVAL" '{ for (i = 1; i <= NF; i++) { n++; x = n * iv / 60; sx += x; sy += $i; sxx += x * x; sxy += x * $i } }
    END { if (n < 2) { print "nan"; exit } printf "%.1f\n", (n * sxy - sx * sy) / (n * sxx - sx * sx) }' <<<"$1"
}

soak_one() {  # run
  local run=$1 pid wrkpid t0 i next rss anon pss all="" anons="" after="" logbytes=0 sz
  soak_start_weft; pid=$START_PID
  sleep 1
  read -r rss anon pss <<<"$(mem_kb "$pid")"
  add soak rss_start "$rss"; add soak anon_start "$anon"
  wrk -t1 -c"$SOAK_CONNS" -d"${SOAK}s" --latency -s "$BENCH_DIR/report.lua" "http://127.0.0.1:$PORT_WEFT/" \
    >"$WORK/soak/wrk-$run.log" 2>&1 &
  wrkpid=$!
  STARTED+=("$wrkpid")
  t0=$(date +%s.%N)
  for ((i = 1; ; i++)); do
    next=$(awk -v t0="$t0" -v i="$i" -v iv="$SOAK_INTERVAL" 'BEGIN{ printf "%.3f", t0 + i * iv }')
    sleep "$(awk -v n="$next" -v now="$(date +%s.%N)" 'BEGIN{ d = n - now; printf "%.3f", (d > 0 ? d : 0) }')"
    is_alive "$wrkpid" || break
    is_alive "$pid" || die "weft died during the soak; log: $(cat "$WORK/soak/out.log")"
    read -r rss anon pss <<<"$(mem_kb "$pid")"
    all="$all $rss"; anons="$anons $anon"
    ((i * SOAK_INTERVAL > SOAK_WARMUP)) && after="$after $rss"
    sz=$(stat -c %s "$WORK/soak/access.log" 2>/dev/null || echo 0)
    logbytes=$((logbytes + sz))
    truncate -s 0 "$WORK/soak/access.log"
    ((i % 6 == 0)) && log "soak run $run: $((i * SOAK_INTERVAL)) s, RSS $rss kB, RssAnon $anon kB"
  done
  wait "$wrkpid" || die "wrk failed: $(cat "$WORK/soak/wrk-$run.log")"
  local line
  line=$(grep '^BENCH ' "$WORK/soak/wrk-$run.log") || die "no BENCH line from wrk: $(cat "$WORK/soak/wrk-$run.log")"
  wrk_parse "$line"
  sleep 1
  read -r rss anon pss <<<"$(mem_kb "$pid")"
  add soak rss_end "$rss"; add soak anon_end "$anon"
  stop_pid "$pid"

  local mn mx mean dev
  read -r mn mx mean dev <<<"$(soak_stats "$after")"
  add soak min "$mn"; add soak max "$mx"; add soak mean "$mean"; add soak dev "$dev"
  add soak slope "$(soak_slope "$after")"
  add soak anon_stats "$(soak_stats "$anons" | tr ' ' '/')"
  add soak rps "$(awk -v r="$W_requests" -v d="$W_duration_us" 'BEGIN{printf "%.0f", r / (d / 1e6)}')"
  add soak errors "$W_errors"; add soak status_errors "$W_status"
  add soak p99 "$W_p99_us"
  add soak logmib "$(awk -v b="$logbytes" 'BEGIN{printf "%.0f", b / 1048576}')"
  SAMPLES[$run]=$all; ANON_SAMPLES[$run]=$anons
  log "soak run $run: RSS after warm-up min $mn max $mx mean $mean kB, max deviation ±$dev%; $W_requests requests, $W_errors errors"
}
declare -A SAMPLES ANON_SAMPLES

# ---------------------------------------------------------------- report
soak_report() {
  local elapsed=$1 out m
  tree_state
  out=$(results_path -soak)
  declare -A M
  for m in min max mean dev slope rps errors rss_start rss_end anon_start anon_end logmib p99; do
    M[$m]=$(median "${R[soak:$m]:-}")
  done
  M[verdict]=$(awk -v d="${M[dev]}" 'BEGIN{ if (d == "nan") print "no data"; else if (d <= 5) print "met"; else printf "MISSED by %.1f points\n", d - 5 }')
  {
    report_head "weft soak (issue 7, target 5)"
    echo "- weft $COMMIT$DIRTY, release build, 1 worker, plugins [$SOAK_PLUGINS] (tracing at $OBS_SAMPLING%, OTLP to a local sink; access log to a file, truncated after each sample); backend: run.sh's nginx"
    echo "- load: wrk -t1 -c$SOAK_CONNS for $SOAK s; VmRSS (weft is one process) every $SOAK_INTERVAL s; statistics over the samples after the first $SOAK_WARMUP s; $SOAK_RUNS soak(s)$( ((SOAK_RUNS > 1)) && echo ", medians shown"); took ${elapsed} s"
    echo
    echo "| RSS before load (MiB) | RSS min (MiB) | RSS max (MiB) | RSS mean (MiB) | max deviation from the mean | trend (KiB/min) | RSS 1 s after load (MiB) | RssAnon before → after (MiB) | req/s | p99 (µs) | wrk errors | access log written (MiB) |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
    echo "| $(fmt_mib "${M[rss_start]}") | $(fmt_mib "${M[min]}") | $(fmt_mib "${M[max]}") | $(fmt_mib "${M[mean]}") | ±${M[dev]}% | ${M[slope]} | $(fmt_mib "${M[rss_end]}") | $(fmt_mib "${M[anon_start]}") → $(fmt_mib "${M[anon_end]}") | ${M[rps]} | ${M[p99]} | ${M[errors]} | ${M[logmib]} |"
    echo
    echo "Target: RSS within ±5% over the soak (after the warm-up): ±${M[dev]}% -> ${M[verdict]}"
    echo
    echo "RSS samples (kB), every $SOAK_INTERVAL s, the first $((SOAK_WARMUP / SOAK_INTERVAL)) are the warm-up:"
    echo
    echo '```'
    local r
    for ((r = 1; r <= SOAK_RUNS; r++)); do
      echo "run $r VmRSS:  ${SAMPLES[$r]# }"
      echo "run $r RssAnon:${ANON_SAMPLES[$r]}"
    done
    echo '```'
    echo
    per_run_details 20
  } >"$out"
  cat "$out"
  log "results written to $out"
  if [[ -n $SUMMARY_FILE ]]; then
    echo "| 5. RSS over a ${SOAK} s soak, wrk -c$SOAK_CONNS, every plugin (after ${SOAK_WARMUP} s) | $(fmt_mib "${M[min]}")–$(fmt_mib "${M[max]}") MiB (mean $(fmt_mib "${M[mean]}")) | – | – | ±${M[dev]}% | within ±5% | ${M[verdict]} |" >>"$SUMMARY_FILE"
  fi
  return 0
}

# ---------------------------------------------------------------- main
soak_main() {
  ensure_packages
  HZ=$(getconf CLK_TCK)
  ((SOAK > SOAK_WARMUP + SOAK_INTERVAL)) || die "SOAK ($SOAK s) must be longer than SOAK_WARMUP + SOAK_INTERVAL ($SOAK_WARMUP + $SOAK_INTERVAL s)"
  build_weft "weft and its plugins" core/weft plugins/router/router.so plugins/acl/acl.so plugins/ratelimit/ratelimit.so \
    plugins/metrics/metrics.so plugins/tracing/tracing.so plugins/accesslog/accesslog.so
  for p in "$PORT_BACKEND" "$PORT_WEFT" "$PORT_WEFT_ADMIN" "$PORT_OTLP"; do
    port_free "$p" || die "port $p is in use; set PORT_BASE to another base"
  done

  WORK=$(mktemp -d /tmp/weft-bench-soak.XXXXXX)
  write_configs   # run.sh's: the backend's nginx.conf, the OTLP sink's directory
  soak_write_config
  local t0=$SECONDS run
  start_backend
  start_otlp_sink
  for ((run = 1; run <= SOAK_RUNS; run++)); do soak_one "$run"; done
  soak_report $((SECONDS - t0))
}

soak_main "$@"
