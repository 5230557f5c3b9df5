#!/bin/sh
# The shipped configuration files pass `weft --check`. TAP output.
set -u

build=${WEFT_BUILD_ROOT:?WEFT_BUILD_ROOT not set}
src=${WEFT_SOURCE_ROOT:?WEFT_SOURCE_ROOT not set}
weft=$build/core/weft

files="$src/config/weft.yaml $(ls "$src"/config/examples/*.yaml)"
set -- $files
echo "1..$#"

# A checker that accepts garbage, or says so, is not there yet.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'listeners: 42\nno_such_key: [\n' > "$tmp/bad.yaml"
skip=
out=$("$weft" --check --config "$tmp/bad.yaml" 2>&1)
rc=$?
if printf '%s' "$out" | grep -qi 'not implemented'; then
  skip="weft --check is not implemented yet"
elif [ $rc -eq 0 ]; then
  skip="weft --check accepts an invalid file: not implemented yet"
fi

n=0
for f in "$@"; do
  n=$((n + 1))
  name=${f#"$src"/}
  if [ -n "$skip" ]; then
    echo "ok $n # SKIP $name: $skip"
    continue
  fi
  if out=$("$weft" --check --config "$f" 2>&1); then
    echo "ok $n - $name passes weft --check"
  else
    echo "not ok $n - $name fails weft --check"
    printf '%s\n' "$out" | sed 's/^/# /'
  fi
done
