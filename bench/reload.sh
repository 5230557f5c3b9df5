#!/usr/bin/env bash
# weft reload benchmark (issue 7, target 7): how long a reload of a
# 10,000-route config takes, and what it does to p99 latency under load.
# nginx reloading an equivalent 10,000-location config is measured beside
# it. See /work/notes/bench-reload.md (to be merged into bench/README.md).
#
# Usage: bench/reload.sh
# Knobs (environment): RUNS=3 DURATION=10 WARMUP=1 ROUTES=10000
#                      RELOAD_EVERY=1 (seconds between reloads)
#                      MODE=sighup (or file: rewrite the config by rename, as
#                        a ConfigMap update does)
#                      NGINX=1 (also nginx -s reload; 0 = weft only)
#                      PORT_BASE=18400 BUILD_DIR=bench/.build-release
#                      SUMMARY_FILE (append the summary rows there)
#                      DETAIL_FILE (write the report there; default
#                        bench/results/<date>-<time>-reload.md)
#
# Each run: weft (1 worker, the router plugin, ROUTES routes in one virtual
# host) is started afresh; wrk -t1 -c64 loads a route near the end of the
# list (/p<ROUTES-10>/bench). One wrk run of DURATION s without reloads gives
# the steady p99; one of the same length during which weft reloads every
# RELOAD_EVERY s gives the p99 during reloads (the order of the two
# alternates between runs). Every number is the median over RUNS runs.
set -euo pipefail

RUNS=${RUNS:-3}
PORT_BASE=${PORT_BASE:-18400}
ROUTES=${ROUTES:-10000}
RELOAD_EVERY=${RELOAD_EVERY:-1}
MODE=${MODE:-sighup}
NGINX=${NGINX:-1}
# run.sh's helpers: ensure_packages, start/stop_pid and the EXIT trap,
# wait_http_200, port_free, median, add/R, the backend's config
# shellcheck source=bench/run.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/run.sh"

PORT_RW=$((PORT_BASE + 40))         # weft's listener
PORT_RW_ADMIN=$((PORT_BASE + 41))
PORT_RN=$((PORT_BASE + 42))         # nginx with 10k locations
TARGET_PATH=/p$((ROUTES > 10 ? ROUTES - 10 : 0))/bench

[[ $MODE == sighup || $MODE == file ]] || die "MODE must be sighup or file, not '$MODE'"

# ---------------------------------------------------------------- configs
reload_write_configs() {
  mkdir -p "$WORK/rweft" "$WORK/rnginx/tmp-body" "$WORK/rnginx/tmp-proxy"
  {
    echo "admin: {address: 127.0.0.1:$PORT_RW_ADMIN}"
    echo "workers: 1"
    echo "plugin_dirs: [$BUILD_DIR/plugins]"
    echo "listeners:"
    echo "  - name: inbound"
    echo "    address: 127.0.0.1:$PORT_RW"
    echo "    plugins: [router]"
    echo "upstreams:"
    echo "  - name: backend"
    echo "    endpoints: [127.0.0.1:$PORT_BACKEND]"
    echo "router:"
    echo "  virtual_hosts:"
    echo "    - name: all"
    echo "      domains: [\"*\"]"
    echo "      routes:"
    awk -v n="$ROUTES" 'BEGIN{for (i = 0; i < n; i++)
      printf "        - {name: r%d, match: {path: {prefix: /p%d/}}, upstream: backend}\n", i, i}'
  } >"$WORK/rweft/weft.yaml"
  {
    nginx_proxy_head "$WORK/rnginx" 1 notice
    cat <<EOF
  server {
    listen 127.0.0.1:$PORT_RN backlog=4096;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
EOF
    awk -v n="$ROUTES" 'BEGIN{for (i = 0; i < n; i++)
      printf "    location /p%d/ { proxy_pass http://backend; }\n", i}'
    echo "  }"
    echo "}"
  } >"$WORK/rnginx/nginx.conf"
}

# ---------------------------------------------------------------- load
# reload_wrk <port> <seconds> -> W_* from the report.lua line
reload_wrk() {
  local out line
  out=$(wrk -t1 -c64 -d"$2"s --latency -s "$BENCH_DIR/report.lua" \
        "http://127.0.0.1:$1$TARGET_PATH" 2>&1) || die "wrk failed: $out"
  printf '%s\n' "$out" >>"$WORK/wrk.log"
  line=$(grep '^BENCH ' <<<"$out") || die "no BENCH line in wrk output: $out"
  wrk_parse "$line"
}

# one reload of weft: SIGHUP, or a new file renamed over the old one (the
# content differs by a comment, so the hash check lets it through)
weft_reload_once() {  # pid n
  if [[ $MODE == sighup ]]; then
    kill -HUP "$1"
  else
    { cat "$WORK/rweft/weft.base"; echo "# reload $2"; } >"$WORK/rweft/.weft.yaml.tmp"
    mv "$WORK/rweft/.weft.yaml.tmp" "$WORK/rweft/weft.yaml"
  fi
}

# nginx -s reload, timed: from the signal to the first new worker process
# (the new config parsed, the new worker forked); prints milliseconds
nginx_reload_once() {  # master pid
  python3 - "$1" <<'PY'
import os, signal, sys, time
master = int(sys.argv[1])
def workers():
    out = set()
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            st = open(f"/proc/{p}/stat").read()
        except OSError:
            continue
        if int(st.rsplit(")", 1)[1].split()[1]) == master:
            out.add(int(p))
    return out
old = workers()
t0 = time.monotonic()
os.kill(master, signal.SIGHUP)
while time.monotonic() - t0 < 10:
    if workers() - old:
        print(f"{(time.monotonic() - t0) * 1000:.1f}")
        sys.exit(0)
    time.sleep(0.0005)
print("nan")
PY
}

# runs wrk for DURATION s while reloading every RELOAD_EVERY s; the reload
# durations go to R[<target>:reload_ms]
load_with_reloads() {  # target pid port
  local t=$1 pid=$2 port=$3 wrk_pid i=0 ms
  reload_wrk "$port" "$DURATION" >"$WORK/wrk-bg.out" &
  wrk_pid=$!
  sleep 0.5
  while is_alive "$wrk_pid" && ((i < DURATION / RELOAD_EVERY)); do
    i=$((i + 1))
    if [[ $t == weft ]]; then
      weft_reload_once "$pid" "$i"
    else
      ms=$(nginx_reload_once "$pid"); add nginx reload_ms "$ms"
    fi
    sleep "$RELOAD_EVERY"
  done
  wait "$wrk_pid" || die "wrk failed during reloads: $(cat "$WORK/wrk-bg.out")"
  wrk_parse "$(grep '^BENCH ' "$WORK/wrk.log" | tail -1)"
  add "$t" reloads "$i"
}

start_rweft() {
  cp "$WORK/rweft/weft.base" "$WORK/rweft/weft.yaml"
  start "$WORK/rweft/out.log" "$WEFT_BIN" --config "$WORK/rweft" --log-level info
  wait_http_200 "http://127.0.0.1:$PORT_RW_ADMIN/ready" "$START_PID" ||
    die "weft did not become ready; log: $(tail -20 "$WORK/rweft/out.log")"
  wait_http_200 "http://127.0.0.1:$PORT_RW$TARGET_PATH" "$START_PID" ||
    die "weft does not answer 200 on $TARGET_PATH; log: $(tail -20 "$WORK/rweft/out.log")"
}

start_rnginx() {
  start "$WORK/rnginx/out.log" nginx -p "$WORK/rnginx" -e "$WORK/rnginx/error.log" -c "$WORK/rnginx/nginx.conf"
  wait_http_200 "http://127.0.0.1:$PORT_RN$TARGET_PATH" "$START_PID" ||
    die "nginx does not answer 200 on $TARGET_PATH: $(tail -5 "$WORK/rnginx/error.log")"
}

# measure_reload <target> <run#>
measure_reload() {
  local t=$1 run=$2 pid port k kb anon
  if [[ $t == weft ]]; then
    start_rweft; port=$PORT_RW
  else
    start_rnginx; port=$PORT_RN
  fi
  pid=$START_PID
  if [[ $t == weft ]]; then
    sleep 1
    read -r kb anon _ <<<"$(mem_kb "$pid")"
    add weft rss_start "$kb"; add weft anon_start "$anon"
  fi
  reload_wrk "$port" "$WARMUP"
  local order=(steady reload)
  ((run % 2 == 0)) && order=(reload steady)
  for k in "${order[@]}"; do
    if [[ $k == steady ]]; then
      reload_wrk "$port" "$DURATION"
    else
      load_with_reloads "$t" "$pid" "$port"
    fi
    add "$t" "p99_$k" "$W_p99_us"; add "$t" "p50_$k" "$W_p50_us"
    add "$t" "rps_$k" "$(awk -v r="$W_requests" -v d="$W_duration_us" 'BEGIN{printf "%.0f", r / (d / 1e6)}')"
    add "$t" "errors_$k" "$W_errors"
  done
  add "$t" p99_ratio "$(awk -v r="$(last_of "$t" p99_reload)" -v s="$(last_of "$t" p99_steady)" 'BEGIN{printf "%.3f", r / s}')"
  if [[ $t == weft ]]; then
    read -r kb anon _ <<<"$(mem_kb "$pid")"
    add weft rss_end "$kb"; add weft anon_end "$anon"
    is_alive "$pid" || die "weft died during the run; log: $(tail -20 "$WORK/rweft/out.log")"
    # the durations weft logged: "configuration generation N live (reload took X ms)"
    local ms
    for ms in $(sed -n 's/.*live (reload took \([0-9.]*\) ms).*/\1/p' "$WORK/rweft/out.log"); do
      add weft reload_ms "$ms"
    done
    grep -q "reload failed" "$WORK/rweft/out.log" && die "a weft reload failed: $(grep -A3 'reload failed' "$WORK/rweft/out.log")"
  fi
  stop_pid "$pid"
  log "run $run $t: p99 steady $(last_of "$t" p99_steady) us, during reloads $(last_of "$t" p99_reload) us ($(last_of "$t" p99_ratio)x), $(last_of "$t" reloads) reloads"
}

last_of() { local a; read -r -a a <<<"${R[$1:$2]:-}"; echo "${a[${#a[@]}-1]:-nan}"; }
max_of() { tr ' ' '\n' <<<"$1" | awk NF | sort -g | tail -1; }

# ---------------------------------------------------------------- report
reload_report() {
  local elapsed=$1 out
  tree_state core include plugins/router meson.build
  out=$(results_path -reload)
  local wms nms wmax nmax wr nr
  wms=$(median "${R[weft:reload_ms]:-}"); wmax=$(max_of "${R[weft:reload_ms]:-}")
  wr=$(median "${R[weft:p99_ratio]:-}")
  nms=$(median "${R[nginx:reload_ms]:-}"); nmax=$(max_of "${R[nginx:reload_ms]:-}")
  nr=$(median "${R[nginx:p99_ratio]:-}")
  local v1 v2
  v1=$(awk -v m="$wmax" -v d="$wms" 'BEGIN{ if (m <= 200) print "met (max " m " ms)"; else if (d <= 200) printf "median met, max %s ms MISSED by %.0f ms\n", m, m - 200; else printf "MISSED by %.0f ms\n", d - 200 }')
  v2=$(verdict "$wr" "<=" 2)
  {
    report_head "weft reload benchmark"
    echo "- weft $COMMIT$DIRTY, release build ($BUILD_DIR); $(nginx_version); wrk $(wrk_version)"
    echo "- config: $ROUTES routes (\`{name: rN, match: {path: {prefix: /pN/}}, upstream: backend}\`) in one virtual host, router plugin, 1 worker; nginx: $ROUTES \`location /pN/ { proxy_pass http://backend; }\`, 1 worker"
    echo "- load: wrk -t1 -c64 on $TARGET_PATH, ${WARMUP} s warm-up, then ${DURATION} s without reloads and ${DURATION} s with a reload every ${RELOAD_EVERY} s (order alternating per run)"
    echo "- weft reloads by: $([[ $MODE == sighup ]] && echo "SIGHUP" || echo "a new file renamed over weft.yaml (a ConfigMap-style update; 100 ms debounce not included in the duration)")"
    echo "- weft's reload duration is its own \`reload took X ms\` (the trigger to the new generation handed to the workers; \`last_reload.duration_ms\` on /config); nginx's is SIGHUP to the first new worker process, polled every 0.5 ms from /proc"
    echo "- every number is the median of $RUNS runs (each starts the proxy afresh); took ${elapsed} s"
    echo
    echo "| | weft | nginx |"
    echo "|---|---|---|"
    echo "| reload duration, median (ms) | $wms | ${nms:-–} |"
    echo "| reload duration, max (ms) | $wmax | ${nmax:-–} |"
    echo "| reloads per run | ${R[weft:reloads]:-} | ${R[nginx:reloads]:-–} |"
    echo "| p99 steady (µs) | $(median "${R[weft:p99_steady]:-}") | $(median "${R[nginx:p99_steady]:-}") |"
    echo "| p99 during reloads (µs) | $(median "${R[weft:p99_reload]:-}") | $(median "${R[nginx:p99_reload]:-}") |"
    echo "| p99 during / steady, median of per-run ratios | ${wr}x | ${nr}x |"
    echo "| p50 steady / during reloads (µs) | $(median "${R[weft:p50_steady]:-}") / $(median "${R[weft:p50_reload]:-}") | $(median "${R[nginx:p50_steady]:-}") / $(median "${R[nginx:p50_reload]:-}") |"
    echo "| req/s steady / during reloads | $(median "${R[weft:rps_steady]:-}") / $(median "${R[weft:rps_reload]:-}") | $(median "${R[nginx:rps_steady]:-}") / $(median "${R[nginx:rps_reload]:-}") |"
    echo "| wrk errors (all runs) | $(( $(sumv "${R[weft:errors_steady]:-0}") + $(sumv "${R[weft:errors_reload]:-0}") )) | $(( $(sumv "${R[nginx:errors_steady]:-0}") + $(sumv "${R[nginx:errors_reload]:-0}") )) |"
    echo "| weft RSS / RssAnon after start (MiB) | $(fmt_mib "$(median "${R[weft:rss_start]:-}")") / $(fmt_mib "$(median "${R[weft:anon_start]:-}")") | |"
    echo "| weft RSS / RssAnon after the runs (MiB) | $(fmt_mib "$(median "${R[weft:rss_end]:-}")") / $(fmt_mib "$(median "${R[weft:anon_end]:-}")") | |"
    echo
    echo "Targets:"
    echo
    echo "- reload of $ROUTES routes <= 200 ms: median $wms ms, max $wmax ms -> $v1"
    echo "- p99 during reloads <= 2x steady p99: ${wr}x -> $v2"
    echo
    per_run_details 22
  } >"$out"
  if [[ -n ${SUMMARY_FILE:-} ]]; then
    local ratio="–"
    [[ -n $nms && $nms != nan ]] && ratio=$(ratio "$wms" "$nms")
    {
      echo "| reload of $ROUTES routes, duration | $wms ms (max $wmax) | ${nms:+$nms ms} | – | $ratio | <= 200 ms | $v1 |"
      echo "| p99 during reload / steady p99 | ${wr}x | ${nr:+${nr}x} | – | – | <= 2x | $v2 |"
    } >>"$SUMMARY_FILE"
  fi
  echo
  cat "$out"
  echo
  log "results written to ${out#"$REPO"/}"
}

# ---------------------------------------------------------------- main
reload_main() {
  ensure_packages
  HZ=$(getconf CLK_TCK)
  build_weft "weft and the router" core/weft plugins/router/router.so
  for p in "$PORT_BACKEND" "$PORT_RW" "$PORT_RW_ADMIN" "$PORT_RN"; do
    port_free "$p" || die "port $p is in use; set PORT_BASE to another base"
  done

  WORK=$(mktemp -d /tmp/weft-bench-reload.XXXXXX)
  write_configs   # run.sh's: the backend's nginx.conf is the one used here
  reload_write_configs
  mv "$WORK/rweft/weft.yaml" "$WORK/rweft/weft.base"
  local t0=$SECONDS run t targets=(weft)
  ((NGINX)) && targets+=(nginx)

  start_backend

  for ((run = 1; run <= RUNS; run++)); do
    for t in "${targets[@]}"; do measure_reload "$t" "$run"; done
  done
  reload_report $((SECONDS - t0))
}

reload_main "$@"
