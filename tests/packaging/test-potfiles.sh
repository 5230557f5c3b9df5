#!/bin/sh
# Every source under core/, plugins/ and ctl/ with translatable strings is listed
# in po/POTFILES, and every file listed there exists. TAP output.
set -u

src=${WEFT_SOURCE_ROOT:?WEFT_SOURCE_ROOT not set}
cd "$src" || exit 1

listed=$(sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' po/POTFILES)
marked=$(grep -rlE '\<N?_\("' --include='*.c' --include='*.h' core plugins ctl 2>/dev/null | sort)

n=0
plan=$(( $(printf '%s\n' "$listed" | grep -c .) + $(printf '%s\n' "$marked" | grep -c .) ))
echo "1..$plan"

for f in $listed; do
  n=$((n + 1))
  if [ -f "$f" ]; then
    echo "ok $n - listed $f exists"
  else
    echo "not ok $n - po/POTFILES lists $f, which does not exist"
  fi
done

for f in $marked; do
  n=$((n + 1))
  if printf '%s\n' "$listed" | grep -qxF "$f"; then
    echo "ok $n - $f is in po/POTFILES"
  else
    echo "not ok $n - $f has _(\"...\") strings but is not in po/POTFILES"
  fi
done
