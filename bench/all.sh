#!/usr/bin/env bash
# weft benchmark, every part in one command (issue 7): runs each part below
# as its own process and writes one markdown file,
# bench/results/<date>-<time>-all.md: a summary table with one row per
# target of issue 7, then each part's own report. See bench/README.md.
#
# Usage: bench/all.sh            (about 35 minutes; QUICK=1: a few minutes)
# Knobs (environment): RUNS=3 DURATION=10 (passed to every part)
#                      QUICK=1 (RUNS=1, DURATION=3, SOAK=60 and
#                        SOAK_WARMUP=20: a smoke test)
#                      SOAK (seconds of the soak; the soak part's default
#                        otherwise), BUILD_DIR (passed on when set),
#                      PARTS="run run-w2 idle bodies reload soak" (a subset)
#                      KEEP_WORK=1 (keep the parts' logs in /tmp)
#
# The parts: bench/run.sh (1 worker, its default targets), bench/run.sh
# with WORKERS=2 (weft, nginx, HAProxy), then bench/idle.sh,
# bench/bodies.sh, bench/reload.sh and bench/soak.sh when they exist (a
# missing one is noted in the table). Each part gets, in its environment:
#   SUMMARY_FILE  a file to append its summary rows to, one line each:
#                 | <target> | <weft> | <nginx> | <haproxy> | <ratio> | <goal> | <verdict> |
#                 ("–" for a cell that does not apply; a target that starts
#                 with "<n>. " goes under issue 7's target <n>)
#   DETAIL_FILE   where to write its own markdown report
# Each part runs in its own session; on Ctrl-C or SIGTERM this script
# sends SIGTERM to the running part, whose EXIT trap stops what it started.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
QUICK=${QUICK:-0}
if ((QUICK)); then
  # soak.sh wants SOAK > SOAK_WARMUP + SOAK_INTERVAL (its defaults: 60 + 10)
  RUNS=${RUNS:-1} DURATION=${DURATION:-3} SOAK=${SOAK:-60} SOAK_WARMUP=${SOAK_WARMUP:-20}
  export SOAK_WARMUP
fi
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
export RUNS DURATION
[[ -n ${SOAK:-} ]] && export SOAK
[[ -n ${BUILD_DIR:-} ]] && export BUILD_DIR
PARTS=${PARTS:-run run-w2 idle bodies reload soak}
# the variables of one part must not leak into the next
unset WORKERS TARGETS SUMMARY_FILE DETAIL_FILE PORT_BASE

log() { printf '[all %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---------------------------------------------------------------- the parts
# part_info <id>: "script|issue target|title|env|goal when missing"
part_info() {
  case $1 in
    run) echo "run.sh|1|Main benchmark: CPU per request, latency, idle memory (1 worker)||" ;;
    run-w2) echo "run.sh|2|Scaling: 2 workers (weft, nginx, HAProxy; wrk -t2)|WORKERS=2 TARGETS=weft nginx haproxy|" ;;
    idle) echo "idle.sh|4|10,000 idle keep-alive connections||throughput ≥ 0.9x of none at 1 and 64 active; ≤ 4 KiB per idle connection" ;;
    bodies) echo "bodies.sh|6|1 GiB bodies||RSS growth ≤ 2 MB; throughput ≥ 0.9x nginx" ;;
    reload) echo "reload.sh|7|Reload of a 10,000-route config under load||≤ 200 ms; p99 during reload ≤ 2x steady" ;;
    soak) echo "soak.sh|5|Soak at a steady load||RSS within ±5%" ;;
    *) return 1 ;;
  esac
}

WORK=$(mktemp -d /tmp/weft-bench-all.XXXXXX)
PART_PID=""   # the running part
CURRENT=""    # its number
OUT=""
T0=$SECONDS

# stop_part: SIGTERM to the running part (its own EXIT trap stops its
# processes); after 60 s, SIGKILL to its session, which it leads
stop_part() {
  local pid=$PART_PID i
  [[ -n $pid ]] || return 0
  PART_PID=""
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping the running part (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 600; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "part $pid did not stop within 60 s; killing its session"
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
  reap_session "$pid" "${CURRENT:-0}"
}

# reap_session <sid> <n>: stop what a finished part left running in its
# session (a part should stop everything itself; this is the safety net),
# and note it in $WORK/<n>.leftover for the report
reap_session() {
  local sid=$1 n=$2 pids p i
  pids=$(pgrep -s "$sid" 2>/dev/null || true)
  [[ -n $pids ]] || return 0
  ps -o pid=,args= -p "$(tr '\n' ',' <<<"$pids" | sed 's/,$//')" >"$WORK/$n.leftover" 2>/dev/null || true
  log "part $n left $(wc -l <<<"$pids") process(es) running; stopping them: $(tr '\n' ' ' <"$WORK/$n.leftover")"
  for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
  for ((i = 0; i < 50; i++)); do pgrep -s "$sid" >/dev/null 2>&1 || return 0; sleep 0.1; done
  for p in $(pgrep -s "$sid" 2>/dev/null || true); do kill -KILL "$p" 2>/dev/null || true; done
}

cleanup() {
  local rc=$?
  stop_part
  [[ -d $WORK && ${KEEP_WORK:-0} != 1 ]] && rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT
trap 'log terminated; exit 143' TERM

# run_part <n> <id>: runs one part with its SUMMARY_FILE and DETAIL_FILE;
# writes $WORK/<n>.{rc,secs,cmd}
run_part() {
  local n=$1 id=$2 info script section title envs goal t0 rc
  info=$(part_info "$id")
  IFS='|' read -r script section title envs goal <<<"$info"
  local summary=$WORK/$n.summary detail=$WORK/$n.detail.md logf=$WORK/$n.log
  : >"$summary"
  echo "$id" >"$WORK/$n.id"
  if [[ ! -f $BENCH_DIR/$script ]]; then
    echo missing >"$WORK/$n.rc"
    log "part $n ($id): bench/$script does not exist; skipped"
    return 0
  fi
  local cmd=("bash" "$BENCH_DIR/$script")
  local envv=(SUMMARY_FILE="$summary" DETAIL_FILE="$detail")
  if [[ -n $envs ]]; then
    # "WORKERS=2 TARGETS=weft nginx haproxy": one VAR=value per word, except
    # that TARGETS takes the rest of the line
    local rest=$envs
    while [[ -n $rest ]]; do
      if [[ $rest == TARGETS=* ]]; then envv+=("$rest"); rest=""; else envv+=("${rest%% *}"); [[ $rest == *" "* ]] && rest=${rest#* } || rest=""; fi
    done
  fi
  printf '%s ' "${envv[@]:2}" "bench/$script" | sed 's/ $//' >"$WORK/$n.cmd"
  log "part $n ($id): $(cat "$WORK/$n.cmd")"
  t0=$SECONDS
  CURRENT=$n
  # its own session, so a Ctrl-C at the terminal reaches only this script,
  # which then stops the part in order; the tee ignores SIGINT so that the
  # part never writes into a closed pipe
  env "${envv[@]}" setsid "${cmd[@]}" > >(trap '' INT; exec tee -a "$logf") 2>&1 &
  PART_PID=$!
  rc=0
  wait "$PART_PID" || rc=$?
  reap_session "$PART_PID" "$n"
  PART_PID="" CURRENT=""
  echo "$rc" >"$WORK/$n.rc"
  echo $((SECONDS - t0)) >"$WORK/$n.secs"
  log "part $n ($id) ended with status $rc after $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------- summary
# rows of part <n>: "<section>\t| <section> | <target> | ... |", with the
# "<n>. " prefix of a target taken as its section
part_rows() {
  local n=$1 id info script section title envs goal rc
  id=$(cat "$WORK/$n.id")
  info=$(part_info "$id")
  IFS='|' read -r script section title envs goal <<<"$info"
  rc=$(cat "$WORK/$n.rc" 2>/dev/null || echo "not run")
  case $rc in
    missing)
      printf '%s\t| %s | %s (bench/%s) | – | – | – | – | %s | not run: bench/%s does not exist |\n' \
        "$section" "$section" "$title" "$script" "${goal:-–}" "$script"
      return 0 ;;
    "not run")
      printf '%s\t| %s | %s (bench/%s) | – | – | – | – | %s | not run: interrupted before this part |\n' \
        "$section" "$section" "$title" "$script" "${goal:-–}"
      return 0 ;;
  esac
  awk -v sec="$section" -F'|' '
    /^\|/ {
      t = $2; sub(/^ +/, "", t); sub(/ +$/, "", t)
      s = sec
      if (match(t, /^[0-9]+\. /)) { s = substr(t, 1, RLENGTH - 2); t = substr(t, RLENGTH + 1) }
      line = "| " s " | " t " |"
      for (i = 3; i < NF; i++) { c = $i; sub(/^ +/, "", c); sub(/ +$/, "", c); line = line " " c " |" }
      printf "%s\t%s\n", s, line
    }' "$WORK/$n.summary"
  if [[ $rc == interrupted ]]; then
    printf '%s\t| %s | %s (bench/%s) | – | – | – | – | %s | interrupted |\n' \
      "$section" "$section" "$title" "$script" "${goal:-–}"
  elif [[ $rc != 0 ]]; then
    printf '%s\t| %s | %s (bench/%s) | – | – | – | – | %s | FAILED: exit status %s, see its section |\n' \
      "$section" "$section" "$title" "$script" "${goal:-–}" "$rc"
  elif [[ ! -s $WORK/$n.summary ]]; then
    printf '%s\t| %s | %s (bench/%s) | – | – | – | – | %s | no summary rows written |\n' \
      "$section" "$section" "$title" "$script" "${goal:-–}"
  fi
}

# the 2-worker / 1-worker throughput of each proxy, from the two run.sh parts
scaling_row() {
  local one two
  one=$(cat "$WORK"/*.summary 2>/dev/null | grep -m1 '^| 2\. req/s @64 conns, 1 worker' || true)
  two=$(cat "$WORK"/*.summary 2>/dev/null | grep -m1 '^| 2\. req/s @64 conns, 2 worker' || true)
  [[ -n $one && -n $two ]] || return 0
  awk -F'|' -v a="$one" -v b="$two" 'BEGIN{
    split(a, x, "|"); split(b, y, "|"); out = "2\t| 2 | req/s @64 conns, 2 workers / 1 worker |"
    for (i = 3; i <= 5; i++) out = out " " ((x[i] + 0 > 0 && y[i] + 0 > 0) ? sprintf("%.2fx", y[i] / x[i]) : "–") " |"
    print out " – | report | – |" }'
}

# demote the headings of a part's report by two levels (its "# " becomes
# "### ", under this file's "## " part heading), outside code fences
demote() { awk '/^```/ { f = !f } !f && /^#/ { $0 = "##" $0 } { print }' "$1"; }

write_report() {
  local out=$1 elapsed=$2 n id info script section title envs goal rc
  local commit dirty=""
  commit=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
  [[ -n $(git -C "$REPO" status --porcelain -- core include plugins meson.build 2>/dev/null) ]] &&
    dirty=" (working tree with uncommitted changes under core/, include/ or plugins/)"
  {
    echo "# weft benchmark, all parts (issue 7), $(date '+%Y-%m-%d %H:%M %Z')"
    echo
    echo "- machine: $(nproc) cores ($(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, kernel $(uname -r)"
    echo "- weft $commit$dirty"
    echo "- \`$( ((QUICK)) && echo "QUICK=1 ")RUNS=$RUNS DURATION=$DURATION${SOAK:+ SOAK=$SOAK}${SOAK_WARMUP:+ SOAK_WARMUP=$SOAK_WARMUP} bench/all.sh\`$( ((QUICK)) && echo " (a smoke test: one run per number, not a measurement)"); took $((elapsed / 60)) min $((elapsed % 60)) s"
    echo
    echo "## Summary"
    echo
    echo "One row per target of issue 7 (# is the target's number in the issue). Each figure is the median of the part's runs; the parts' sections below give the method, the spread and the per-run values. MB is 10^6 bytes, MiB 1024 kB as /proc reports it."
    echo
    echo "| # | target | weft | nginx | HAProxy | ratio | goal | verdict |"
    echo "|---|---|---|---|---|---|---|---|"
    {
      for ((n = 1; n <= NPARTS; n++)); do part_rows "$n"; done
      scaling_row
    } | sort -s -t$'\t' -k1,1n | cut -f2-
    echo
    echo "| part | command | status | time |"
    echo "|---|---|---|---|"
    for ((n = 1; n <= NPARTS; n++)); do
      id=$(cat "$WORK/$n.id"); info=$(part_info "$id")
      IFS='|' read -r script section title envs goal <<<"$info"
      rc=$(cat "$WORK/$n.rc" 2>/dev/null || echo "not run")
      local status=ok
      case $rc in 0) ;; interrupted) status=interrupted ;; missing) status="missing (bench/$script does not exist)" ;; "not run") status="not run" ;; *) status="FAILED (exit status $rc)" ;; esac
      echo "| $n. $title | \`$(cat "$WORK/$n.cmd" 2>/dev/null || echo "bench/$script")\` | $status | $(cat "$WORK/$n.secs" 2>/dev/null || echo –) s |"
    done
    for ((n = 1; n <= NPARTS; n++)); do
      id=$(cat "$WORK/$n.id"); info=$(part_info "$id")
      IFS='|' read -r script section title envs goal <<<"$info"
      rc=$(cat "$WORK/$n.rc" 2>/dev/null || echo "not run")
      echo
      echo "## $n. $title"
      echo
      case $rc in
        missing) echo "Not run: \`bench/$script\` does not exist."; continue ;;
        "not run") echo "Not run: the benchmark was interrupted before this part."; continue ;;
      esac
      echo "\`$(cat "$WORK/$n.cmd")\`, exit status $rc, $(cat "$WORK/$n.secs" 2>/dev/null || echo –) s."
      echo
      if [[ -s $WORK/$n.detail.md ]]; then
        demote "$WORK/$n.detail.md"
      else
        echo "The part wrote no report (DETAIL_FILE)."
      fi
      if [[ -s $WORK/$n.leftover ]]; then
        echo
        echo "**This part left processes running**, which bench/all.sh then stopped:"
        echo
        echo '```'
        cat "$WORK/$n.leftover"
        echo '```'
      fi
      if [[ $rc != 0 || ! -s $WORK/$n.detail.md ]]; then
        echo
        echo "Last 30 lines of its output:"
        echo
        echo '```'
        tail -n 30 "$WORK/$n.log" 2>/dev/null || true
        echo '```'
      fi
    done
  } >"$out"
}

# ---------------------------------------------------------------- main
# on Ctrl-C or SIGTERM: stop the running part, then still write what the
# parts measured so far
on_signal() {
  trap '' INT TERM
  log "interrupted: stopping, then writing the partial results"
  [[ -n $CURRENT ]] && echo interrupted >"$WORK/$CURRENT.rc"
  stop_part
  write_report "$OUT" $((SECONDS - T0))
  log "partial results in ${OUT#"$REPO"/}"
  exit "$1"
}

main() {
  local t0=$SECONDS id n=0 rc=0
  read -r -a PART_IDS <<<"$PARTS"
  NPARTS=${#PART_IDS[@]}
  for id in "${PART_IDS[@]}"; do
    part_info "$id" >/dev/null || { log "unknown part '$id' in PARTS (run run-w2 idle bodies reload soak)"; exit 2; }
  done
  for id in "${PART_IDS[@]}"; do n=$((n + 1)); echo "$id" >"$WORK/$n.id"; done
  mkdir -p "$BENCH_DIR/results"
  OUT=$BENCH_DIR/results/$(date +%Y-%m-%d-%H%M%S)-all.md
  T0=$t0
  trap 'on_signal 130' INT
  trap 'on_signal 143' TERM
  log "RUNS=$RUNS DURATION=$DURATION${SOAK:+ SOAK=$SOAK}; parts: ${PART_IDS[*]}"
  n=0
  for id in "${PART_IDS[@]}"; do
    n=$((n + 1))
    run_part "$n" "$id"
    [[ $(cat "$WORK/$n.rc") =~ ^(0|missing)$ ]] || rc=1
  done
  local elapsed=$((SECONDS - t0))
  write_report "$OUT" "$elapsed"
  echo
  sed -n '/^## Summary/,/^## 1\./p' "$OUT" | sed '$d'
  log "results written to ${OUT#"$REPO"/}"
  log "total time: $((elapsed / 60)) min $((elapsed % 60)) s"
  return "$rc"
}

main "$@"
