#!/usr/bin/env bash
# Build weft and run every test, twice: a normal build (build/) and one with
# AddressSanitizer and UndefinedBehaviorSanitizer (build-asan/). A third
# build (build-fuzz/, CC=clang -Dfuzzing=true) runs each libFuzzer target
# of fuzz/ for about 10 s over its seeds and regressions (docs/fuzzing.md).
#
# Runs scripts/setup-debian.sh first, so it works on a fresh Debian 12.
# The last line it prints is "N passed, N failed", summed over the three
# builds from build*/meson-logs/testlog.json (OK and EXPECTEDFAIL count as passed;
# FAIL, TIMEOUT, ERROR, UNEXPECTEDPASS and INTERRUPT as failed; SKIP as
# neither). A build or setup that fails before any test runs counts as one
# failure. Exits non-zero if anything failed.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1

"$ROOT/scripts/setup-debian.sh" || { echo "0 passed, 1 failed"; exit 1; }

# LeakSanitizer is on: weft frees what it owns on exit, and the e2e harness
# fails a test when a sanitizer report shows up in weft's output.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

setup() {   # setup BUILDDIR [OPTIONS...]: configure, or reconfigure if configured
  local dir=$1; shift
  if [ -f "$dir/meson-private/coredata.dat" ]; then
    meson setup --reconfigure "$dir" "$@"
  else
    meson setup "$dir" "$@"
  fi
}

run_build() {   # run_build BUILDDIR [OPTIONS...]
  local dir=$1
  echo
  echo "=== $dir: meson setup $*"
  rm -f "$dir/meson-logs/testlog.json"   # never count a stale log
  if ! setup "$@"; then
    echo "=== $dir: meson setup failed"
    return 1
  fi
  # everything, not only what meson test would build: the SDK test installs
  echo "=== $dir: build"
  if ! ninja -C "$dir"; then
    echo "=== $dir: build failed"
    return 1
  fi
  echo "=== $dir: meson test"
  meson test -C "$dir" --print-errorlogs
}

# run_fuzz BUILDDIR: only the fuzz targets (ninja fuzz) and only the fuzz
# suite: the rest of weft is built and tested by the two builds above
run_fuzz() {
  local dir=$1
  echo
  echo "=== $dir: CC=clang meson setup -Dfuzzing=true -Dtests=false"
  rm -f "$dir/meson-logs/testlog.json"
  if ! CC=clang setup "$dir" -Dfuzzing=true -Dtests=false; then
    echo "=== $dir: meson setup failed"
    return 1
  fi
  echo "=== $dir: build the fuzz targets"
  if ! ninja -C "$dir" fuzz; then
    echo "=== $dir: build failed"
    return 1
  fi
  echo "=== $dir: meson test --suite fuzz"
  meson test -C "$dir" --no-rebuild --suite fuzz --print-errorlogs
}

start=$SECONDS
run_build build
run_build build-asan -Db_sanitize=address,undefined -Db_lundef=false
fuzz_start=$SECONDS
run_fuzz build-fuzz
echo "=== build-fuzz: $((SECONDS - fuzz_start)) s"

echo
echo "=== summary ($((SECONDS - start)) s)"
python3 - build build-asan build-fuzz <<'EOF'
import json, os, sys

PASSED = {"OK", "EXPECTEDFAIL"}
FAILED = {"FAIL", "TIMEOUT", "ERROR", "UNEXPECTEDPASS", "INTERRUPT"}
passed = failed = skipped = 0
lines = []
for d in sys.argv[1:]:
    log = os.path.join(d, "meson-logs", "testlog.json")
    if not os.path.exists(log):
        lines.append("%s: no test log (setup or build failed) - counted as 1 failed" % d)
        failed += 1
        continue
    p = f = s = 0
    bad = []
    with open(log) as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            t = json.loads(line)
            r = t.get("result")
            if r in PASSED:
                p += 1
            elif r == "SKIP":
                s += 1
            else:   # FAILED, or anything unexpected
                f += 1
                bad.append("%s (%s)" % (t.get("name"), r))
    lines.append("%s: %d passed, %d failed, %d skipped%s"
                 % (d, p, f, s, ("; failed: " + ", ".join(bad)) if bad else ""))
    passed, failed, skipped = passed + p, failed + f, skipped + s
for l in lines:
    print(l)
print("%d skipped" % skipped)
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
EOF
