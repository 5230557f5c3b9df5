#!/bin/sh
# `weft --check` on a broken configuration speaks French under a French
# locale (with the catalog built from po/fr.po) and English without one;
# either way the file:line:col positions are the same and the exit status
# is non-zero. TAP output.
set -u

build=${WEFT_BUILD_ROOT:?WEFT_BUILD_ROOT not set}
weft=$build/core/weft
localedir=$build/po
mo=$localedir/fr/LC_MESSAGES/weft.mo

n=0
ok ()     { n=$((n + 1)); echo "ok $n - $1"; }
not_ok () { n=$((n + 1)); echo "not ok $n - $1"; }
skip ()   { n=$((n + 1)); echo "ok $n # SKIP $1"; }
check ()  { if [ "$1" = 0 ]; then ok "$2"; else not_ok "$2"; fi; }
# has TEXT NEEDLE...: every needle is in text
has () {
  text=$1
  shift
  for needle in "$@"; do
    printf '%s\n' "$text" | grep -qF -- "$needle" || return 1
  done
  return 0
}
# lacks TEXT NEEDLE...: no needle is in text
lacks () {
  text=$1
  shift
  for needle in "$@"; do
    printf '%s\n' "$text" | grep -qF -- "$needle" && return 1
  done
  return 0
}
show () { printf '%s\n' "$1" | sed 's/^/# /'; }

echo "1..9"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cfg=$tmp/broken.yaml
# two problems: upstream 'app' defined twice, listener 'web' names 'nope'
cat > "$cfg" <<'EOF'
listeners:
  - name: web
    address: 127.0.0.1:15006
    upstream: nope
upstreams:
  - name: app
    endpoints:
      - 127.0.0.1:8080
  - name: app
    endpoints:
      - 127.0.0.1:8081
EOF

positions="$cfg:9:11: 
$cfg:6:11)
$cfg:4:15: "
english="is defined twice (first at
listener 'web' names unknown upstream 'nope'
: configuration is invalid"
french="défini deux fois (première définition
fait référence à un upstream inconnu
configuration invalide"

# the same, with the needles one per line in a single argument
set -f
has_lines () {
  text=$1
  old_ifs=$IFS
  IFS='
'
  set -- $2
  IFS=$old_ifs
  has "$text" "$@"
}
lacks_lines () {
  text=$1
  old_ifs=$IFS
  IFS='
'
  set -- $2
  IFS=$old_ifs
  lacks "$text" "$@"
}

# 1: the catalog is there
if [ -f "$mo" ]; then
  ok "French catalog built at po/fr/LC_MESSAGES/weft.mo"
else
  not_ok "French catalog missing: $mo (run ninja -C build)"
fi

# 2-3: no French locale, with the catalog available: English
out=$(env WEFT_LOCALEDIR="$localedir" LC_ALL=C.UTF-8 LANGUAGE= \
        "$weft" --check --config "$cfg" 2>&1)
rc=$?
[ $rc -ne 0 ]; check $? "C locale: weft --check fails on the broken file (exit $rc)"
if has_lines "$out" "$positions" && has_lines "$out" "$english" && lacks_lines "$out" "$french"; then
  ok "C locale: English messages with file:line:col positions"
else
  not_ok "C locale: English messages with file:line:col positions"
  show "$out"
fi

# 4-9 need the fr_FR.UTF-8 locale
if ! locale -a 2>/dev/null | grep -qixE 'fr_FR\.utf-?8'; then
  reason="fr_FR.UTF-8 locale not available (install locales, enable it in /etc/locale.gen, run locale-gen)"
  while [ $n -lt 9 ]; do
    skip "$reason"
  done
  exit 0
fi

out=$(env WEFT_LOCALEDIR="$localedir" LC_ALL=fr_FR.UTF-8 LANGUAGE= \
        "$weft" --check --config "$cfg" 2>&1)
rc=$?
[ $rc -ne 0 ]; check $? "LC_ALL=fr_FR.UTF-8: weft --check fails on the broken file (exit $rc)"
failed=0
has_lines "$out" "$positions"; r=$?; failed=$((failed + r))
check $r "LC_ALL=fr_FR.UTF-8: file:line:col positions unchanged"
has_lines "$out" "$french"; r=$?; failed=$((failed + r))
check $r "LC_ALL=fr_FR.UTF-8: messages are in French"
lacks_lines "$out" "$english"; r=$?; failed=$((failed + r))
check $r "LC_ALL=fr_FR.UTF-8: no English message left"
[ $failed -eq 0 ] || show "$out"

# LANG with LANGUAGE=fr, no LC_ALL: the other usual way to ask for French
out=$(env -u LC_ALL -u LC_MESSAGES WEFT_LOCALEDIR="$localedir" LANG=fr_FR.UTF-8 LANGUAGE=fr \
        "$weft" --check --config "$cfg" 2>&1)
rc=$?
[ $rc -ne 0 ]; check $? "LANG=fr_FR.UTF-8 LANGUAGE=fr: weft --check fails (exit $rc)"
if has_lines "$out" "$positions" && has_lines "$out" "$french"; then
  ok "LANG=fr_FR.UTF-8 LANGUAGE=fr: French messages with positions"
else
  not_ok "LANG=fr_FR.UTF-8 LANGUAGE=fr: French messages with positions"
  show "$out"
fi
