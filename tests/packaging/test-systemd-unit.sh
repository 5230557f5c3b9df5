#!/bin/sh
# Checks the built weft.service: the required settings are there, and
# systemd-analyze verify accepts it (and systemd-sysusers the sysusers file).
# TAP output.
set -u

build=${WEFT_BUILD_ROOT:?WEFT_BUILD_ROOT not set}
src=${WEFT_SOURCE_ROOT:?WEFT_SOURCE_ROOT not set}
unit=$build/systemd/weft.service
sysusers=$src/systemd/weft.sysusers.conf

required='Type=notify
NotifyAccess=main
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=1s
User=weft
Group=weft
DynamicUser=no
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
CapabilityBoundingSet=CAP_NET_BIND_SERVICE
AmbientCapabilities=CAP_NET_BIND_SERVICE
ConfigurationDirectory=weft
ReadOnlyPaths=/etc/weft
LimitNOFILE=1048576
TimeoutStopSec=45s
KillSignal=SIGTERM
WantedBy=multi-user.target'

# lines systemd-analyze prints because of the machine, not the unit
benign='System has not been booted with systemd
Failed to connect to bus
Failed to create bus connection
Failed to open /dev/tty
Failed to load BPF object
Failed to determine .* cgroup
Unit .*\.target not found
Cannot find unit for .*\.target
Failed to set up mount namespacing
Failed to initialize SELinux'

n=0
ok ()     { n=$((n + 1)); echo "ok $n - $1"; }
not_ok () { n=$((n + 1)); echo "not ok $n - $1"; }
skip ()   { n=$((n + 1)); echo "ok $n # SKIP $1"; }
count=$(printf '%s\n' "$required" | wc -l)
echo "1..$((count + 5))"

if [ ! -f "$unit" ]; then
  echo "# $unit missing: run ninja (or meson setup) first"
fi

printf '%s\n' "$required" | while IFS= read -r line; do
  n=$((n + 1))
  if grep -qxF -- "$line" "$unit" 2>/dev/null; then
    echo "ok $n - $line"
  else
    echo "not ok $n - $line"
  fi
done
n=$count

execstart=$(sed -n 's/^ExecStart=//p' "$unit" 2>/dev/null)
case $execstart in
  /*/weft\ --config\ /*/weft) ok "ExecStart runs weft --config on the config dir: $execstart" ;;
  *) not_ok "ExecStart malformed: '$execstart'" ;;
esac

if grep -q '@[a-z_]*@' "$unit" 2>/dev/null; then
  not_ok "unsubstituted @variables@ left in the unit"
else
  ok "every @variable@ substituted"
fi

if grep -qx '\[Install\]' "$unit" 2>/dev/null \
   && sed -n '/^\[Install\]/,$p' "$unit" | grep -qx 'WantedBy=multi-user.target'; then
  ok "WantedBy=multi-user.target is in [Install]"
else
  not_ok "WantedBy=multi-user.target is in [Install]"
fi

# systemd-analyze verify on a copy whose ExecStart binary exists
if ! command -v systemd-analyze >/dev/null 2>&1; then
  skip "systemd-analyze not installed"
else
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  sed "s|^ExecStart=[^ ]*|ExecStart=$build/core/weft|" "$unit" > "$tmp/weft.service"
  out=$(systemd-analyze verify --man=no "$tmp/weft.service" 2>&1)
  rc=$?
  printf '%s\n' "$benign" > "$tmp/benign"
  bad=$(printf '%s\n' "$out" | grep -v '^$' | grep -v -f "$tmp/benign")
  if [ -n "$bad" ] || { [ $rc -ne 0 ] && [ -z "$out" ]; }; then
    not_ok "systemd-analyze verify (exit $rc)"
    printf '%s\n' "$out" | sed 's/^/# /'
  else
    [ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/# ignored: /'
    ok "systemd-analyze verify"
  fi
fi

if ! command -v systemd-sysusers >/dev/null 2>&1; then
  skip "systemd-sysusers not installed"
else
  root=$(mktemp -d)
  out=$(systemd-sysusers --dry-run --root="$root" "$sysusers" 2>&1)
  rc=$?
  rm -rf "$root"
  if [ $rc -eq 0 ] && printf '%s\n' "$out" | grep -q "Creating user 'weft'"; then
    ok "weft.sysusers.conf creates user weft"
  else
    not_ok "weft.sysusers.conf creates user weft (exit $rc)"
    printf '%s\n' "$out" | sed 's/^/# /'
  fi
fi
