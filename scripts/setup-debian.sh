#!/usr/bin/env bash
# Install everything weft needs to build, test and run its demo on Debian 12.
#
# Idempotent: it installs only packages that are missing (running
# `apt-get update` only then), and generates the fr_FR.UTF-8 locale only if
# `locale -a` lacks it (the tests check French output).
set -euo pipefail

PACKAGES=(
  # build
  meson ninja-build pkg-config gcc gettext
  libglib2.0-dev libsoup-3.0-dev libgnutls28-dev libjson-glib-dev
  libyaml-dev libnghttp2-dev libpcre2-dev
  # sanitizer and fuzzing builds: build-fuzz is CC=clang -Dfuzzing=true, and
  # libclang-rt-14-dev has libclang_rt.fuzzer-x86_64.a (and the sanitizers)
  clang libclang-rt-14-dev
  # tests and demo
  python3 curl inotify-tools locales procps iproute2 iptables
  gnutls-bin         # certtool: the weftctl cert tests verify what weftctl writes
  systemd            # systemd-analyze, for the unit-file check
  prometheus         # promtool and the Prometheus server the metrics test scrapes with
  make               # the out-of-tree plugin example is built with make
  redis-server       # global rate limits: the tests start their own redis-server
  # benchmarks
  wrk nginx-light haproxy
)

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "setup-debian: not root and no sudo; cannot install packages" >&2
    exit 1
  fi
fi

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-debian: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup-debian: all ${#PACKAGES[@]} packages present"
fi

# fr_FR.UTF-8 shows up in `locale -a` as fr_FR.utf8
if ! locale -a 2>/dev/null | grep -qix 'fr_FR\.utf-\?8'; then
  echo "setup-debian: generating the fr_FR.UTF-8 locale"
  if grep -q '^# *fr_FR.UTF-8 UTF-8' /etc/locale.gen 2>/dev/null; then
    "${SUDO[@]}" sed -i 's/^# *\(fr_FR.UTF-8 UTF-8\)/\1/' /etc/locale.gen
  elif ! grep -q '^fr_FR.UTF-8 UTF-8' /etc/locale.gen 2>/dev/null; then
    echo 'fr_FR.UTF-8 UTF-8' | "${SUDO[@]}" tee -a /etc/locale.gen >/dev/null
  fi
  "${SUDO[@]}" locale-gen
else
  echo "setup-debian: fr_FR.UTF-8 locale present"
fi
