#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The systemd units' capabilities are enough, and each one is needed. systemd is not PID 1 here,
# so the daemons run under what the units ask for by other means: `setpriv --bounding-set` with
# exactly the unit's CapabilityBoundingSet= (read from dist/systemd/vpnd-server@.service; the
# client unit must have the same line) and `--no-new-privs` (NoNewPrivileges=yes), as root.
#
#   a: server, `User = nobody` (KeepNetAdmin = yes), ListenPort 443 (below 1024)
#   b: client as root (no User)
#   both with one run directory, as /run/vpnd is for every instance of the units
#
# 1. The server starts (it binds 443, creates its tun, hands the run directory to nobody, switches
#    and keeps CAP_NET_ADMIN), then the client (root, creating its control socket in the directory
#    nobody now owns); /proc shows the bounding set as the unit's, NoNewPrivs 1, the server as
#    nobody with CapEff 0x1000; a ping crosses the tunnel.
# 2. The server restarts (SIGTERM, exit 0, start again) into its own nobody-owned run directory,
#    and the tunnel works again.
# 3. Without each capability of the set in turn, the server's start fails with exit status 1 and
#    the one line of that step, and leaves no interface: CAP_NET_ADMIN (TUNSETIFF), CAP_NET_BIND_SERVICE
#    (bind 443), CAP_SETUID (setresuid), CAP_SETGID (initgroups), CAP_CHOWN (a fresh root-owned run
#    directory), CAP_DAC_OVERRIDE (the run directory nobody owns). CAP_SETPCAP is not in the set,
#    and 1 shows the drop to CAP_NET_ADMIN works without it.
# What setpriv cannot show (ProtectSystem=, DeviceAllow=, RestrictAddressFamilies=, ...) needs
# systemd as PID 1; packaging.sh checks that systemd accepts those lines.
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"

command -v setpriv >/dev/null || fail "setpriv is missing (util-linux)"
id -u nobody >/dev/null 2>&1 || fail "this host has no user nobody"
unit="$VPND_REPO/dist/systemd/vpnd-server@.service"
caps="$(sed -n 's/^CapabilityBoundingSet=//p' "$unit")"
[ -n "$caps" ] || fail "$unit has no CapabilityBoundingSet="
[ "$(sed -n 's/^CapabilityBoundingSet=//p' "$VPND_REPO/dist/systemd/vpnd-client@.service")" = "$caps" ] \
    || fail "vpnd-client@.service has another CapabilityBoundingSet than vpnd-server@.service"
grep -qx "NoNewPrivileges=yes" "$unit" || fail "$unit does not set NoNewPrivileges=yes"
log "the units' bounding set: $caps"

# setpriv's form of a set: -all,+net_admin,+setuid,...
setpriv_caps() {
    local out="-all" cap
    for cap in "$@"; do out+=",+$(tr 'A-Z' 'a-z' <<<"${cap#CAP_}")"; done
    echo "$out"
}
# The kernel's capability mask of a set of names, as /proc/PID/status prints it (16 hex digits).
cap_mask() {
    local mask=0 cap number
    for cap in "$@"; do
        number="$(sed -n "s/^#define $cap[[:space:]]*\([0-9]*\)$/\1/p" /usr/include/linux/capability.h)"
        [ -n "$number" ] || fail "capability $cap is not in /usr/include/linux/capability.h"
        mask=$((mask | (1 << number)))
    done
    printf '%016x' "$mask"
}
# shellcheck disable=SC2086
unit_set="$(setpriv_caps $caps)"
# shellcheck disable=SC2086
unit_mask="$(cap_mask $caps)"

real_vpnd="$VPND"
# sandboxed SET: a vpnd that starts the way the unit starts it (bounding set SET, no_new_privs).
sandboxed() {
    local wrapper="$VPND_ITEST_DIR/vpnd-bset-${2:-unit}"
    printf '#!/bin/sh\nexec setpriv --bounding-set=%s --no-new-privs -- %s "$@"\n' "$1" "$real_vpnd" >"$wrapper"
    chmod 755 "$wrapper"
    echo "$wrapper"
}
unit_vpnd="$(sandboxed "$unit_set")"

SIF="$(unique_ifname s)"
CIF="$(unique_ifname c)"
track_socket "/var/run/wireguard/$SIF.sock"
track_socket "/var/run/wireguard/$CIF.sock"
ns_pair a b
vpnd_keypair server
vpnd_keypair client
vpnd_config server --key server --peer client --address 10.9.0.1/24 --port 443 --allowed 10.9.0.2/32 --ifname "$SIF"
vpnd_config client --key client --peer server --address 10.9.0.2/24 --allowed 10.9.0.0/24 \
    --endpoint "$UNDERLAY_A:443" --ifname "$CIF"
sed -i "/^\[Interface\]/a User = nobody" "$(vpnd_conf_file server)"
# nobody must reach the run directory: the work directory is 0700 (root) from mktemp.
chmod 711 "$VPND_ITEST_DIR"
# One run directory for both, as the units' ExecStartPre makes /run/vpnd (0700, root).
mkdir -m 700 "$(vpnd_run_dir server)"
ln -s "$(vpnd_run_dir server)" "$(vpnd_run_dir client)"

status_field() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# 1. Both under the unit's set.
log "1. server (User = nobody, port 443) and client (root) under the unit's bounding set"
VPND="$unit_vpnd" vpnd_start a server "$SIF" --server --config "$(vpnd_conf_file server)"
server_pid=$VPND_PID
wait_for "the server switched to nobody" 10 sh -c "[ \"\$(awk '\$1 == \"Uid:\" { print \$2 }' /proc/$server_pid/status)\" = $(id -u nobody) ]" \
    || fail "the server did not switch to nobody: $(tail -3 "$(vpnd_log_file server)")"
[ "$(stat -c %U "$(vpnd_run_dir server)")" = nobody ] || fail "the run directory was not handed to nobody"
VPND="$unit_vpnd" vpnd_start b client "$CIF" --client --config "$(vpnd_conf_file client)"
client_pid=$VPND_PID
for pid in "$server_pid" "$client_pid"; do
    [ "$(status_field "$pid" CapBnd)" = "$unit_mask" ] || fail "pid $pid: CapBnd $(status_field "$pid" CapBnd), the unit's set is $unit_mask"
    [ "$(status_field "$pid" NoNewPrivs)" = 1 ] || fail "pid $pid: NoNewPrivs is not 1"
done
[ "$(status_field "$server_pid" CapEff)" = 0000000000001000 ] || fail "the server's CapEff is $(status_field "$server_pid" CapEff), not CAP_NET_ADMIN alone"
[ "$(status_field "$client_pid" CapEff)" = "$unit_mask" ] || fail "the client's (root) CapEff is $(status_field "$client_pid" CapEff), not the unit's set"
wait_for "tunnel up" 15 ping_ok b 10.9.0.1 1
vpnd_show server "$SIF" >/dev/null || fail "vpnd show does not reach the server"
vpnd_show client "$CIF" >/dev/null || fail "vpnd show does not reach the client"
log "   both up; server as nobody with CapEff 0x1000, bounding set $unit_mask, NoNewPrivs 1; ping passes"

stop_server() {
    kill -TERM "$server_pid"
    local rc=0
    wait "$server_pid" || rc=$?
    [ "$rc" = 0 ] || fail "the server exited $rc on SIGTERM"
}

# 2. A restart into the run directory nobody owns.
log "2. the server restarts under the same set"
stop_server
[ "$(stat -c %U "$(vpnd_run_dir server)")" = nobody ] || fail "the run directory is no longer nobody's"
VPND="$unit_vpnd" vpnd_start a server "$SIF" --server --config "$(vpnd_conf_file server)"
server_pid=$VPND_PID
wait_for "tunnel up after the restart" 15 ping_ok b 10.9.0.1 1
stop_server

# 3. Each capability is needed: without it the start fails at its step.
log "3. without each capability, the server's start fails"
fresh="$VPND_ITEST_DIR/run-fresh"
for cap in $caps; do
    without=()
    for other in $caps; do [ "$other" = "$cap" ] || without+=("$other"); done
    run_dir="$(vpnd_run_dir server)"   # nobody's, as after a run
    case "$cap" in
        CAP_NET_ADMIN) expect="TUNSETIFF" ;;
        CAP_NET_BIND_SERVICE) expect="bind [::]:443: permission denied" ;;
        CAP_SETUID) expect="setresuid nobody" ;;
        CAP_SETGID) expect="initgroups nobody" ;;
        CAP_CHOWN) expect="chown $fresh: operation not permitted (EPERM); handing the run directory to User / --user needs root with CAP_CHOWN"; rm -rf "$fresh"; mkdir -m 700 "$fresh"; run_dir="$fresh" ;;
        CAP_DAC_OVERRIDE) expect="control socket" ;;
        *) fail "the unit keeps $cap, which this scenario does not know: add what fails without it" ;;
    esac
    weaker="$(sandboxed "$(setpriv_caps "${without[@]}")" "no-$cap")"
    set +e
    out="$(in_ns a --timeout 15 env VPND_RUN_DIR="$run_dir" "$weaker" --server --config "$(vpnd_conf_file server)" 2>&1)"
    rc=$?
    set -e
    [ "$rc" = 1 ] || fail "without $cap the server's start exited $rc, not 1: $(tail -3 <<<"$out")"
    grep -qiF -- "$expect" <<<"$out" || fail "without $cap the start failed otherwise than at '$expect': $(tail -3 <<<"$out")"
    in_ns a --timeout 5 ip link show "$SIF" >/dev/null 2>&1 && fail "without $cap the failed start left $SIF behind"
    echo "    without $cap: $(grep -iF -- "$expect" <<<"$out" | head -1 | sed 's/^.*error vpnd: //')"
done
log "unit-capabilities passed"
