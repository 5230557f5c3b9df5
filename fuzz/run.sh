#!/usr/bin/env bash
# Runs weft's libFuzzer targets (docs/fuzzing.md).
#
#   fuzz/run.sh [-B BUILDDIR] [TARGET|all] [SECONDS] [-- LIBFUZZER-ARGS...]
#       Fuzzes TARGET (default: all, one after the other) for SECONDS each
#       (default 600). New inputs go to BUILDDIR/fuzz/corpus/TARGET, which
#       persists from run to run; the seeds in fuzz/corpus/TARGET are read,
#       never written. Crashes, leaks and timeouts are written to
#       BUILDDIR/fuzz/crashes/TARGET/. BUILDDIR defaults to build-fuzz
#       (configured with CC=clang meson setup build-fuzz -Dfuzzing=true).
#       Before fuzzing, every input in fuzz/regressions/TARGET runs once.
#
#   fuzz/run.sh --test --exe EXE TARGET SECONDS
#       What the meson test of each target does: the regressions once,
#       then SECONDS of fuzzing into a temporary directory that is removed
#       afterwards. Exits non-zero on any crash.
#
# TARGET is a name without the fuzz- prefix: http-request, http-response,
# http-chunked, config, route-match, trace-context.
set -uo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$SRC")
TARGETS=(http-request http-response http-chunked config route-match path-template trace-context)

# sane limits: a single input may take 10 s (ASan makes the config loader
# slow on big inputs), and 2 GiB of RSS is a leak or a bomb
# libFuzzer's own exit code for a crash is 77, which meson takes for a skip
COMMON=(-timeout=10 -rss_limit_mb=2048 -error_exitcode=1 -timeout_exitcode=1
        -print_final_stats=1)

die() { echo "fuzz/run.sh: $*" >&2; exit 2; }

# regress EXE TARGET: each saved crash once; libFuzzer runs file arguments
# one by one and exits, non-zero if one of them crashes
regress() {
  local exe=$1 target=$2 dir="$SRC/regressions/$2"
  local files=()
  [ -d "$dir" ] && mapfile -t files < <(find "$dir" -type f ! -name '*.md' | sort)
  if [ ${#files[@]} -eq 0 ]; then
    echo "=== $target: no regression inputs"
    return 0
  fi
  echo "=== $target: ${#files[@]} regression inputs"
  "$exe" "${COMMON[@]}" "${files[@]}"
}

# fuzz EXE TARGET SECONDS OUTDIR CRASHDIR [ARGS...]
fuzz() {
  local exe=$1 target=$2 seconds=$3 out=$4 crashes=$5
  shift 5
  local dict="$SRC/$target.dict" seeds="$SRC/corpus/$target"
  mkdir -p "$out" "$crashes"
  echo "=== $target: fuzzing for $seconds s (seeds $seeds, new inputs $out)"
  # the first directory is the one libFuzzer writes to
  "$exe" "${COMMON[@]}" -max_total_time="$seconds" -dict="$dict" \
    -artifact_prefix="$crashes/" "$@" "$out" "$seeds"
}

run_test() {   # --test --exe EXE TARGET SECONDS
  local exe=$1 target=$2 seconds=$3 tmp rc
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/weft-fuzz-$target.XXXXXX") || exit 1
  # crashes land in the temporary directory too, and the log shows them
  trap 'rm -rf "$tmp"' EXIT
  regress "$exe" "$target" || { echo "=== $target: a regression input fails"; exit 1; }
  fuzz "$exe" "$target" "$seconds" "$tmp/corpus" "$tmp/crashes"
  rc=$?
  [ $rc -eq 0 ] || rc=1
  for f in "$tmp"/crashes/*; do
    [ -f "$f" ] || continue
    echo "=== $target: crash input $(basename "$f") (base64):"
    base64 "$f"
  done
  exit $rc
}

if [ "${1:-}" = "--test" ]; then
  [ "${2:-}" = "--exe" ] && [ $# -eq 5 ] || die "usage: --test --exe EXE TARGET SECONDS"
  run_test "$3" "$4" "$5"
fi

BUILD=$ROOT/build-fuzz
if [ "${1:-}" = "-B" ]; then
  [ $# -ge 2 ] || die "-B needs a build directory"
  BUILD=$(cd "$2" && pwd) || exit 2
  shift 2
fi
WHICH=${1:-all}
SECONDS_EACH=${2:-600}
shift $(( $# > 2 ? 2 : $# ))
[ "${1:-}" = "--" ] && shift

if [ "$WHICH" = all ]; then
  list=("${TARGETS[@]}")
else
  list=("$WHICH")
fi
status=0
for t in "${list[@]}"; do
  exe=$BUILD/fuzz/fuzz-$t
  [ -x "$exe" ] || die "no $exe: build with 'CC=clang meson setup $BUILD -Dfuzzing=true && ninja -C $BUILD fuzz'"
  regress "$exe" "$t" || { status=1; continue; }
  fuzz "$exe" "$t" "$SECONDS_EACH" "$BUILD/fuzz/corpus/$t" "$BUILD/fuzz/crashes/$t" "$@" ||
    status=1
done
exit $status
