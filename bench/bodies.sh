#!/usr/bin/env bash
# weft large-body benchmark (issue 7, target 6): a 1 GiB download and a
# 1 GiB upload through weft, nginx and HAProxy: throughput, and how much the
# proxy's RSS grows during the transfer; and whether weft used splice(2).
# See bench/README.md.
#
# Usage: bench/bodies.sh
# Knobs (environment): RUNS=3 BODY_MIB=1024 (the body size)
#                      SAMPLE_MS=20 (RSS sampling interval)
#                      STRACE=1 (one extra, untimed download and upload
#                        through weft under strace -f -c, counting splice
#                        against read/write calls)
#                      SKIP_BUILD=1 (measure the binaries already in BUILD_DIR)
#                      PORT_BASE=18340 BUILD_DIR=bench/.build-release
#                      TARGETS="weft nginx haproxy backend" KEEP_WORK=1
#                      SUMMARY_FILE (append the target rows), DETAIL_FILE
#                        (the report, instead of bench/results/<stamp>-bodies.md)
# DURATION does not apply: a transfer takes as long as the body takes.
#
# Setup: the backend is an nginx (1 worker, sendfile) serving a BODY_MIB file
# from /dev/shm for GET /dl/body, and answering PUT /ul with 200 once it
# has read the whole body (client_max_body_size 0; see the config). The proxies are run.sh's (1
# worker, keep-alive to the backend); nginx also gets proxy_buffering off,
# proxy_request_buffering off and client_max_body_size 0, so it streams
# both ways; HAProxy is as run.sh configures it, weft too but with
# timeouts.request 75s (its 15 s default runs until the response head). The client is
# curl, writing to /dev/null or reading the file (-T, no Expect: 100-continue).
#
# Per run and proxy (each started afresh, the order rotated every run): the
# download, then the upload. For each, the VmRSS of all the proxy's
# processes is sampled every SAMPLE_MS ms from just before the transfer to
# its end; growth = max - the value before. Throughput = bytes / curl's
# time_total.
set -euo pipefail

SKIP_BUILD=${SKIP_BUILD:-0}
RUNS=${RUNS:-3}
PORT_BASE=${PORT_BASE:-18340}
BODY_MIB=${BODY_MIB:-1024}
SAMPLE_MS=${SAMPLE_MS:-20}
STRACE=${STRACE:-1}
# run.sh's helpers: ensure_packages, start/stop_pid and the EXIT trap,
# mem_kb, median, add/R, paired_ratio, the proxies' configs
# shellcheck source=bench/run.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/run.sh"
SUMMARY_FILE=${SUMMARY_FILE:-}
DETAIL_FILE=${DETAIL_FILE:-}
BODIES_TARGETS=(weft nginx haproxy backend)
BODY_DIR=""
BODY_BYTES=$((BODY_MIB * 1024 * 1024))

# the 1 GiB file goes even with KEEP_WORK=1; then run.sh's cleanup
bodies_cleanup() {
  local rc=$?
  [[ -n $BODY_DIR && -d $BODY_DIR ]] && rm -rf "$BODY_DIR"
  # cleanup reads the exit status from $?; under set -e a bare failing
  # (exit) would end the shell here, before the processes are stopped
  (exit "$rc") || cleanup
  cleanup
}
trap bodies_cleanup EXIT

# ---------------------------------------------------------------- configs
bodies_patch() {  # file sed-expression text-that-must-then-be-there
  sed -i "$2" "$1"
  grep -qF -- "$3" "$1" || die "could not patch $1 (run.sh's config changed?): $2"
}

bodies_write_configs() {
  write_configs
  # the backend: the file for GET; for PUT it reads the whole body (into a
  # temp file in /dev/shm, deleted after the request) before it answers,
  # through a bodyless proxied request to itself: a plain `return 200`
  # would answer at once, and a proxy that sees the answer complete may
  # stop forwarding the body (weft and nginx then read and drop it), so
  # the upload would not go through the proxy at all. ul.log records how
  # many request bytes arrived, which the script checks after each upload.
  mkdir -p "$BODY_DIR/tmp"; chmod 777 "$BODY_DIR/tmp"
  {
    nginx_head "$WORK/backend" 1 warn
    cat <<EOF
  sendfile on;
  client_body_temp_path $BODY_DIR/tmp;
  log_format bodylen '\$request_length';
  server {
    listen 127.0.0.1:$PORT_BACKEND backlog=4096;
    client_max_body_size 0;
    location = /nginx_status { stub_status; }
    location /dl/ { alias $BODY_DIR/; default_type application/octet-stream; }
    location = /ul {
      access_log $WORK/backend/ul.log bodylen;
      client_body_buffer_size 64k;
      proxy_pass http://127.0.0.1:$PORT_BACKEND/ok;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
    }
    location = /ok { return 200 "ok\n"; }
    location / { default_type text/plain; return 200 "hello from backend\n"; }
  }
}
EOF
  } >"$WORK/backend/nginx.conf"
  # weft's request timeout runs to the response head, which comes once the
  # whole upload is in: 75 s as nginx's and HAProxy's timeouts here
  printf 'timeouts: {request: 75s}\n' >>"$WORK/weft/weft.yaml"
  local f=$WORK/nginx/nginx.conf
  bodies_patch "$f" 's/^\(      proxy_set_header Connection "";\)$/\1\n      proxy_buffering off;\n      proxy_request_buffering off;/' \
    "proxy_request_buffering off;"
  bodies_patch "$f" 's/^\(  keepalive_timeout [0-9]*s;\)$/\1\n  client_max_body_size 0;/' "client_max_body_size 0;"
}

# the RSS sampler: sums VmRSS over the pids every SAMPLE_MS ms until
# SIGTERM, then writes "first max last samples" (kB) to its output file
bodies_write_sampler() {
  cat >"$WORK/rss-sampler.py" <<'PYEOF'
import signal, sys, time
interval = int(sys.argv[1]) / 1000.0
out = sys.argv[2]
pids = sys.argv[3:]
stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
def rss():
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total
first = rss()
peak = last = first
n = 1
with open(out + ".ready", "w"):
    pass
while not stop:
    time.sleep(interval)
    last = rss()
    peak = max(peak, last)
    n += 1
with open(out, "w") as fh:
    fh.write(f"{first} {peak} {last} {n}\n")
PYEOF
}

SAMPLER_PID=""
sampler_start() {  # pid of the proxy
  local pids i
  pids=$(proc_pids "$1" | tr '\n' ' ')
  rm -f "$WORK/rss.out" "$WORK/rss.out.ready"
  # shellcheck disable=SC2086
  start "$WORK/sampler.log" python3 "$WORK/rss-sampler.py" "$SAMPLE_MS" "$WORK/rss.out" $pids
  SAMPLER_PID=$START_PID
  for ((i = 0; i < 100; i++)); do [[ -e $WORK/rss.out.ready ]] && return 0; sleep 0.05; done
  die "the RSS sampler did not start: $(cat "$WORK/sampler.log")"
}

sampler_stop() {  # -> SAMPLE_FIRST SAMPLE_MAX SAMPLE_N
  kill -TERM "$SAMPLER_PID" 2>/dev/null || true
  wait "$SAMPLER_PID" 2>/dev/null || true
  read -r SAMPLE_FIRST SAMPLE_MAX _ SAMPLE_N <"$WORK/rss.out" ||
    die "the RSS sampler wrote nothing: $(cat "$WORK/sampler.log")"
}

# ---------------------------------------------------------------- transfers
# bodies_curl <dl|ul> <port> -> CURL_BYTES CURL_SECS CURL_CODE
bodies_curl() {
  local out
  if [[ $1 == dl ]]; then
    out=$(curl -s -o /dev/null --max-time 600 -w '%{http_code} %{size_download} %{time_total}' \
      "http://127.0.0.1:$2/dl/body") || die "curl download through port $2 failed (exit $?): $out"
  else
    out=$(curl -s -o /dev/null --max-time 600 -T "$BODY_DIR/body" -H 'Expect:' \
      -w '%{http_code} %{size_upload} %{time_total}' "http://127.0.0.1:$2/ul") ||
      die "curl upload through port $2 failed (exit $?): $out"
  fi
  read -r CURL_CODE CURL_BYTES CURL_SECS <<<"$out"
  [[ $CURL_CODE == 200 && $CURL_BYTES == "$BODY_BYTES" ]] ||
    die "$1 through port $2: HTTP $CURL_CODE, $CURL_BYTES of $BODY_BYTES bytes"
  if [[ $1 == ul ]]; then
    local got; got=$(tail -1 "$WORK/backend/ul.log" 2>/dev/null || echo 0)
    ((got >= BODY_BYTES)) || die "upload through port $2: the backend got $got request bytes, not the body's $BODY_BYTES"
  fi
}

bodies_transfer() {  # target pid port dl|ul
  local t=$1 pid=$2 port=$3 dir=$4 bps s0 s1
  [[ $t != backend ]] && sampler_start "$pid"
  s0=$(snap "$pid")
  bodies_curl "$dir" "$port"
  s1=$(snap "$pid")
  # CPU of processes outside the benchmark meanwhile (the sampler counts:
  # it is not a child of this shell until it is reaped), % of all cores
  add "$t" foreign "$(foreign_pct "$s0" "$s1")"
  bps=$(awk -v b="$CURL_BYTES" -v s="$CURL_SECS" 'BEGIN{printf "%.0f", b / s}')
  add "$t" "bps_$dir" "$bps"
  if [[ $t != backend ]]; then
    sampler_stop
    add "$t" "grow_$dir" $((SAMPLE_MAX - SAMPLE_FIRST))
    add "$t" "rss0_$dir" "$SAMPLE_FIRST"; add "$t" "rssmax_$dir" "$SAMPLE_MAX"
    add "$t" "samples_$dir" "$SAMPLE_N"
  fi
}

bodies_measure_one() {  # target run
  local t=$1 run=$2 pid port
  if [[ $t == backend ]]; then
    pid=$BACKEND_PID; port=$PORT_BACKEND
  else
    start_target "$t"; pid=$START_PID; port=$TARGET_PORT
    sleep 1
  fi
  bodies_transfer "$t" "$pid" "$port" dl
  bodies_transfer "$t" "$pid" "$port" ul
  if [[ $t != backend ]]; then
    is_alive "$pid" || die "$t died during the run; log: $(cat "$WORK/$t/out.log")"
    stop_pid "$pid"
  fi
  local g_dl=${R[$t:grow_dl]:-–} g_ul=${R[$t:grow_ul]:-–}
  log "run $run $t: download $(mbs "${R[$t:bps_dl]##* }") MB/s, upload $(mbs "${R[$t:bps_ul]##* }") MB/s; RSS growth ${g_dl##* } / ${g_ul##* } kB; other load ${R[$t:foreign]##* }%"
}

mbs() { awk -v b="$1" 'BEGIN{ if (b == "nan" || b == "") print "nan"; else printf "%.0f", b / 1e6 }'; }

# one more download and upload through weft, under strace -f -c: which
# calls moved the bytes (splice, or read/write and friends)
bodies_strace() {
  local dir
  start_target weft
  local pid=$START_PID port=$TARGET_PORT
  sleep 1
  for dir in dl ul; do
    strace -f -c -e trace=splice,read,write,readv,writev,recvfrom,sendto,recvmsg,sendmsg,sendfile \
      -o "$WORK/strace-$dir.txt" -p "$pid" 2>"$WORK/strace-$dir.log" &
    local spid=$!
    STARTED+=("$spid")
    sleep 1   # strace attaches to every thread
    bodies_curl "$dir" "$port"
    kill -INT "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    STRACE_SPLICE[$dir]=$(awk '$NF == "splice" {print $4}' "$WORK/strace-$dir.txt")
    STRACE_SPLICE[$dir]=${STRACE_SPLICE[$dir]:-0}
    STRACE_RW[$dir]=$(awk '$NF ~ /^(read|write|readv|writev|recvfrom|sendto|recvmsg|sendmsg|sendfile)$/ {s += $4} END{print s + 0}' "$WORK/strace-$dir.txt")
    log "weft under strace, $dir: ${STRACE_SPLICE[$dir]} splice calls, ${STRACE_RW[$dir]} read/write-family calls"
  done
  stop_pid "$pid"
}
declare -A STRACE_SPLICE STRACE_RW

# ---------------------------------------------------------------- report
bodies_report() {
  local elapsed=$1 out t m
  tree_state
  out=$(results_path -bodies)
  declare -A M
  for t in "${TARGET_LIST[@]}"; do
    for m in bps_dl bps_ul grow_dl grow_ul rss0_dl rssmax_dl rss0_ul rssmax_ul; do
      M[$t:$m]=$(median "${R[$t:$m]:-}")
    done
  done
  if has weft && has nginx; then
    M[r_dl]=$(awk -v x="$(paired_ratio weft nginx bps_dl)" 'BEGIN{printf "%.2f", x}')
    M[r_ul]=$(awk -v x="$(paired_ratio weft nginx bps_ul)" 'BEGIN{printf "%.2f", x}')
  fi
  {
    report_head "weft large-body benchmark (issue 7, target 6)"
    echo "- weft $COMMIT$DIRTY, release build; $(nginx_version); $(haproxy_version); $(curl --version | head -1 | cut -d' ' -f1-2)"
    echo "- a $BODY_MIB MiB body: GET from the backend nginx (sendfile, the file in /dev/shm) and PUT to it (it reads the whole body into a temp file in /dev/shm before it answers, and its log shows every byte arrived); curl to /dev/null or from the file; 1 worker each, run.sh's configs (nginx with proxy_buffering off, proxy_request_buffering off, client_max_body_size 0; weft with timeouts.request 75s; HAProxy as it is)"
    echo "- RSS: VmRSS summed over the proxy's processes, sampled every $SAMPLE_MS ms during each transfer; growth = max - before. Throughput = bytes / curl's time_total, MB = 10^6 bytes"
    echo "- CPU used by processes outside the benchmark during the transfers, as % of all cores: $(foreign_text foreign) (the RSS sampler's few % included; 0 on a quiet machine)"
    echo "- every number is the median of $RUNS runs (each starts the proxy afresh; weft/nginx ratios are medians of per-run ratios); took ${elapsed} s; load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    echo "| proxy | download MB/s | upload MB/s | RSS before (MiB) | RSS growth, download (KiB) | RSS growth, upload (KiB) | RSS samples per transfer |"
    echo "|---|---|---|---|---|---|---|"
    for t in "${TARGET_LIST[@]}"; do
      if [[ $t == backend ]]; then
        echo "| *backend direct, no proxy* | $(mbs "${M[$t:bps_dl]}") | $(mbs "${M[$t:bps_ul]}") | – | – | – | – |"
      else
        echo "| $t | $(mbs "${M[$t:bps_dl]}") | $(mbs "${M[$t:bps_ul]}") | $(fmt_mib "${M[$t:rss0_dl]}") | ${M[$t:grow_dl]} | ${M[$t:grow_ul]} | ${R[$t:samples_dl]} / ${R[$t:samples_ul]} |"
      fi
    done
    echo
    echo "Targets (2 MB taken as 2 MiB = 2048 KiB, as run.sh reads its MB targets):"
    echo
    if has weft; then
      echo "- RSS growth during a $BODY_MIB MiB download <= 2 MiB: ${M[weft:grow_dl]} KiB -> $(verdict "${M[weft:grow_dl]}" "<=" 2048)"
      echo "- RSS growth during a $BODY_MIB MiB upload <= 2 MiB: ${M[weft:grow_ul]} KiB -> $(verdict "${M[weft:grow_ul]}" "<=" 2048)"
    fi
    if has weft && has nginx; then
      echo "- download throughput >= 0.9x nginx: ${M[r_dl]}x -> $(verdict "${M[r_dl]}" ">=" 0.9)"
      echo "- upload throughput >= 0.9x nginx: ${M[r_ul]}x -> $(verdict "${M[r_ul]}" ">=" 0.9)"
    fi
    if ((STRACE)) && has weft; then
      echo "- splice(2) where no plugin needs the body: $(bodies_splice_text)"
      echo
      echo "strace -f -c of weft (all threads) during one extra, untimed transfer each way:"
      echo
      local dir
      for dir in dl ul; do
        echo '```'
        echo "# $([[ $dir == dl ]] && echo download || echo upload)"
        cat "$WORK/strace-$dir.txt"
        echo '```'
      done
    fi
    echo
    per_run_details 22 "Per-run values (bps: bytes/s; grow, rss: kB)"
  } >"$out"
  cat "$out"
  log "results written to $out"
  [[ -n $SUMMARY_FILE ]] && bodies_summary >>"$SUMMARY_FILE"
  return 0
}

bodies_splice_text() {
  local s_dl=${STRACE_SPLICE[dl]:-0} s_ul=${STRACE_SPLICE[ul]:-0}
  local verdict="no splice calls"
  ((s_dl > 0 && s_ul > 0)) && verdict="yes, both ways"
  ((s_dl > 0 && s_ul == 0)) && verdict="download only"
  ((s_dl == 0 && s_ul > 0)) && verdict="upload only"
  echo "$verdict (download: $s_dl splice, ${STRACE_RW[dl]:-0} read/write-family calls; upload: $s_ul splice, ${STRACE_RW[ul]:-0})"
}

# the summary rows: | target | weft | nginx | haproxy | ratio | goal | verdict |
bodies_summary() {
  gcell() { has "$1" || { echo "–"; return; }; echo "${M[$1:$2]} KiB"; }
  bcell() { has "$1" || { echo "–"; return; }; echo "$(mbs "${M[$1:$2]}") MB/s"; }
  local dir name
  for dir in dl ul; do
    name=download; [[ $dir == ul ]] && name=upload
    has weft && echo "| 6. RSS growth, $BODY_MIB MiB $name | $(gcell weft "grow_$dir") | $(gcell nginx "grow_$dir") | $(gcell haproxy "grow_$dir") | – | ≤ 2 MiB | $(verdict "${M[weft:grow_$dir]}" "<=" 2048) |"
  done
  for dir in dl ul; do
    name=download; [[ $dir == ul ]] && name=upload
    has weft && has nginx &&
      echo "| 6. throughput, $BODY_MIB MiB $name | $(bcell weft "bps_$dir") | $(bcell nginx "bps_$dir") | $(bcell haproxy "bps_$dir") | ${M[r_$dir]}x nginx | ≥ 0.9x nginx | $(verdict "${M[r_$dir]}" ">=" 0.9) |"
  done
  if ((STRACE)) && has weft; then
    local v=no
    ((${STRACE_SPLICE[dl]:-0} > 0 || ${STRACE_SPLICE[ul]:-0} > 0)) && v=yes
    echo "| 6. splice(2) for bodies no plugin reads | $(bodies_splice_text) | – | – | – | used | $v |"
  fi
  return 0
}

# ---------------------------------------------------------------- main
bodies_main() {
  ensure_packages
  HZ=$(getconf CLK_TCK)
  ((STRACE)) && ! command -v strace >/dev/null && die "strace not found (STRACE=0 skips the splice count)"
  build_weft weft core/weft
  targets_from_env "${BODIES_TARGETS[@]}"
  for p in "$PORT_BACKEND" "$PORT_NGINX" "$PORT_HAPROXY" "$PORT_WEFT" "$PORT_WEFT_ADMIN"; do
    port_free "$p" || die "port $p is in use; set PORT_BASE to another base"
  done

  WORK=$(mktemp -d /tmp/weft-bench-bodies.XXXXXX)
  BODY_DIR=$(mktemp -d /dev/shm/weft-bench-bodies.XXXXXX)
  log "writing a $BODY_MIB MiB body to $BODY_DIR"
  head -c "$BODY_BYTES" /dev/urandom >"$BODY_DIR/body"
  chmod 755 "$BODY_DIR"; chmod 644 "$BODY_DIR/body"   # nginx's workers are not root
  bodies_write_configs
  bodies_write_sampler
  local t0=$SECONDS
  start_backend
  rotate_runs bodies_measure_one
  if ((STRACE)) && has weft; then bodies_strace; fi
  bodies_report $((SECONDS - t0))
}

bodies_main "$@"
