#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# wg-quick's PreUp, PostUp, PreDown, PostDown and DNS, applied by vpnd itself.
#
# 1. Hooks: each writes a marker line (with %i and whether the interface exists) to one file; the
#    order must be PreUp (no interface yet), PostUp, PostUp (file order; the address is there),
#    then on SIGTERM PreDown (interface still there), PostDown (interface gone). The hooks' stdout
#    and stderr land in vpnd's log after the hook's name. The tunnel passes traffic meanwhile.
# 2. A failing PostUp (`false`, the second of three): exit 1 with the one error line naming the
#    hook, the command and its status; nothing left (no interface, no route, DNS withdrawn with
#    `resolvconf -d`); the third PostUp, PreDown and PostDown never run (as wg-quick's failed up).
#    A failing PreUp: exit 1, one line, no interface. A PostUp that hangs: killed with what it
#    started after 60 s, and start-up fails the same way.
# 3. DNS through a stub `resolvconf` first on vpnd's PATH (a bash script of this test that records
#    its arguments and stdin): `-a vpn0 -m 0 -x` with the servers and search domains while up,
#    `-d vpn0 -f` after stop. Again with /etc/resolvconf/interface-order saying `tun*` (an overlay
#    on /etc in a private mount namespace of vpnd's alone): `tun.vpn0`.
# 4. The same with a stub `resolvectl` and no resolvconf on PATH: `dns`, `domain ~.` while up,
#    `revert` after stop. With neither on PATH: exit 1 with the one line naming both.
# 5. User = nobody with PreDown: exit 1 with the one line, before any interface exists; with PreUp
#    and PostUp, both run as root before the switch.
# The host's /etc/resolv.conf is byte-identical afterwards, and /etc/resolvconf still absent if it was.
#
#   a: vpnd --server, 10.9.0.1/24        b: vpnd --client, 10.9.0.2/24, the hooks and DNS
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"

RESOLV_BEFORE="$(sha256sum /etc/resolv.conf 2>/dev/null || echo none)"
resolvconf_dir() { if [ -e /etc/resolvconf ]; then ls -laR /etc/resolvconf; else echo absent; fi; }
ORDER_BEFORE="$(resolvconf_dir)"

ns_pair a b
vpnd_keypair server
vpnd_keypair client
vpnd_config server --key server --peer client --address 10.9.0.1/24 --port 51820 --allowed 10.9.0.2/32 --ifname vpn0
vpnd_start a server vpn0 --server --config "$(vpnd_conf_file server)"
BIN="$VPND_ITEST_DIR/bin"          # the stubs; only bash builtins inside, so PATH can be just this
EMPTY="$VPND_ITEST_DIR/empty-bin"  # nothing at all
mkdir -p "$BIN" "$EMPTY"

# client_conf NAME EXTRA-LINES: the client's config with EXTRA-LINES in [Interface].
client_conf() {
    vpnd_config "$1" --key client --peer server --address 10.9.0.2/24 --allowed 10.9.0.0/24 \
        --endpoint "$UNDERLAY_A:51820" --ifname vpn0
    printf '%s\n' "$2" >"$VPND_ITEST_DIR/$1.extra"
    sed -i "/^\[Interface\]/r $VPND_ITEST_DIR/$1.extra" "$(vpnd_conf_file "$1")"
}

# stop LOG: SIGTERM to the daemon started as LOG and wait for it (exit 0).
stop() {
    kill -TERM "$VPND_PID"
    local rc=0
    timeout 20 tail --pid="$VPND_PID" -f /dev/null || fail "$1 did not stop within 20 s"
    wait "$VPND_PID" || rc=$?
    [ "$rc" -eq 0 ] || fail "$1 exited with $rc on SIGTERM: $(tail -n 5 "$(vpnd_log_file "$1")")"
}

no_interface_left() {
    ! ip -n "$(ns b)" link show vpn0 >/dev/null 2>&1 || fail "$1: vpn0 is still there"
    [ -z "$(ip -n "$(ns b)" route show table all | grep -w vpn0)" ] || fail "$1: routes left: $(ip -n "$(ns b)" route show table all | grep -w vpn0)"
}

# fails_with NAME PATTERN [env...]: runs the client NAME in the foreground with the environment
# given; it must exit 1 and its only error line must match PATTERN (after the logger's prefix).
fails_with() {
    local name="$1" pattern="$2" err="$VPND_ITEST_DIR/$1.err" rc=0 line
    shift 2
    mkdir -p "$(vpnd_run_dir "$name")"
    in_ns b --timeout 90 env VPND_RUN_DIR="$(vpnd_run_dir "$name")" "$@" "$VPND" --client \
        --config "$(vpnd_conf_file "$name")" >"$err" 2>&1 || rc=$?
    [ "$rc" -eq 1 ] || fail "$name: exit status $rc, expected 1: $(tail -n 5 "$err")"
    [ "$(grep -c ' error vpnd:' "$err")" -eq 1 ] || fail "$name: expected one error line: $(cat "$err")"
    line="$(grep ' error vpnd:' "$err" | sed 's/^.* error vpnd: \[VPNCommands\] //')"
    [[ "$line" =~ $pattern ]] || fail "$name: error line '$line' does not match /$pattern/"
    log "$name: $line"
    no_interface_left "$name"
}

# --- 1. The hooks, in order ---
M="$VPND_ITEST_DIR/markers"
HAS='$(ip link show %i >/dev/null 2>&1 && echo exists || echo absent)'
client_conf hooks "PreUp = echo \"PreUp %i $HAS\" >> $M
PostUp = echo \"PostUp %i $HAS \$(ip -o addr show dev %i | grep -c 10.9.0.2/24)\" >> $M
PostUp = echo \"PostUp2 %i\" >> $M; echo to-stdout; echo to-stderr >&2
PreDown = echo \"PreDown %i $HAS\" >> $M
PostDown = echo \"PostDown %i $HAS\" >> $M"
grep -q 'PreUp = echo "PreUp %i $(ip link show %i >/dev/null 2>&1 && echo' "$(vpnd_conf_file hooks)" \
    || fail "the hooks config came out wrong: $(cat "$(vpnd_conf_file hooks)")"
vpnd_start b hooks vpn0 --client --config "$(vpnd_conf_file hooks)"
wait_for "tunnel up with hooks" 15 ping_ok b 10.9.0.1 1
printf 'PreUp vpn0 absent\nPostUp vpn0 exists 1\nPostUp2 vpn0\n' | diff - "$M" >&2 || fail "markers while up differ (above)"
grep -q 'info vpnd: \[VPNCommands\] PostUp: to-stdout$' "$(vpnd_log_file hooks)" || fail "PostUp's stdout is not in the log"
grep -q 'info vpnd: \[VPNCommands\] PostUp: to-stderr$' "$(vpnd_log_file hooks)" || fail "PostUp's stderr is not in the log"
stop hooks
printf 'PreUp vpn0 absent\nPostUp vpn0 exists 1\nPostUp2 vpn0\nPreDown vpn0 exists\nPostDown vpn0 absent\n' \
    | diff - "$M" >&2 || fail "markers after stop differ (above)"
no_interface_left "hooks after stop"
log "hooks ran in order: $(tr '\n' ',' <"$M")"

# --- The stubs ---
RC_LOG="$VPND_ITEST_DIR/resolvconf.calls"
cat >"$BIN/resolvconf" <<EOF
#!/bin/bash
# A stand-in for resolvconf: records each call (arguments, then stdin) and says a line.
{ printf 'resolvconf %s\n' "\$*"; [ "\$1" != -a ] || while IFS= read -r line; do printf '  %s\n' "\$line"; done; } >>"$RC_LOG"
echo "stub resolvconf \$1"
EOF
chmod 755 "$BIN/resolvconf"
CTL_BIN="$VPND_ITEST_DIR/bin-resolvectl"
CTL_LOG="$VPND_ITEST_DIR/resolvectl.calls"
mkdir -p "$CTL_BIN"
cat >"$CTL_BIN/resolvectl" <<EOF
#!/bin/bash
printf 'resolvectl %s\n' "\$*" >>"$CTL_LOG"
EOF
chmod 755 "$CTL_BIN/resolvectl"
DNS_LINE="DNS = 10.9.0.53, fd00:9::53, corp.example, lab.example"
RC_UP='resolvconf -a PREFIXvpn0 -m 0 -x
  nameserver 10.9.0.53
  nameserver fd00:9::53
  search corp.example lab.example'

# --- 2. A failing PostUp undoes everything; a failing PreUp leaves nothing ---
: >"$M"
: >"$RC_LOG"
client_conf postup-fails "$DNS_LINE
PostUp = echo first >> $M
PostUp = false
PostUp = echo third >> $M
PreDown = echo PreDown >> $M
PostDown = echo PostDown >> $M"
fails_with postup-fails '^PostUp command `false` exited with status 1; start-up stopped and everything set up so far was undone' \
    PATH="$BIN"
[ "$(cat "$M")" = first ] || fail "after the failed PostUp the markers are: $(cat "$M")"
printf '%s\nresolvconf -d vpn0 -f\n' "${RC_UP/PREFIX/}" | diff - "$RC_LOG" >&2 \
    || fail "resolvconf calls around the failed PostUp differ (above)"
: >"$M"
client_conf preup-fails "PreUp = echo pre >> $M; exit 7
PostUp = echo PostUp >> $M"
fails_with preup-fails '^PreUp command `echo pre >> .*markers; exit 7` exited with status 7; start-up stopped' PATH="$EMPTY"
[ "$(cat "$M")" = pre ] || fail "after the failed PreUp the markers are: $(cat "$M")"

# A PostUp that hangs is killed at the 60 s limit, with what it started; start-up fails.
SLEEPER="$VPND_ITEST_DIR/sleeper.pid"
client_conf postup-hangs "PostUp = sleep 600 & echo \$! > $SLEEPER; wait"
start=$SECONDS
fails_with postup-hangs '^PostUp command `sleep 600 & echo \$! > .*sleeper\.pid; wait` did not finish within 60 s and was killed; start-up stopped'
[ $((SECONDS - start)) -lt 75 ] || fail "the hanging PostUp held start-up for $((SECONDS - start)) s"
pid="$(cat "$SLEEPER")"
[ ! -e "/proc/$pid" ] || [ "$(awk '{print $3}' "/proc/$pid/stat")" = Z ] || fail "the PostUp's sleep $pid still runs"
[ -z "$(ip netns pids "$(ns b)")" ] || fail "processes left in b: $(ip netns pids "$(ns b)")"

# --- 3. DNS through resolvconf ---
: >"$RC_LOG"
client_conf dns "$DNS_LINE"
VPND_EXTRA_ENV="PATH=$BIN" vpnd_start b dns vpn0 --client --config "$(vpnd_conf_file dns)"
printf '%s\n' "${RC_UP/PREFIX/}" | diff - "$RC_LOG" >&2 || fail "resolvconf calls while up differ (above)"
grep -q 'DNS: resolvconf: stub resolvconf -a$' "$(vpnd_log_file dns)" || fail "resolvconf's output is not in the log"
stop dns
printf '%s\nresolvconf -d vpn0 -f\n' "${RC_UP/PREFIX/}" | diff - "$RC_LOG" >&2 || fail "resolvconf calls after stop differ (above)"
log "resolvconf: -a vpn0 -m 0 -x with the servers and domains while up, -d vpn0 -f after"

# With wg-quick's interface-order: an overlay on /etc, seen by this vpnd alone.
: >"$RC_LOG"
OVL="$VPND_ITEST_DIR/etc-overlay"
mkdir -p "$OVL"
mkdir -p "$(vpnd_run_dir dns-order)"
ns_spawn b dns-order unshare -m --propagation private bash -c "
    mount -t tmpfs tmpfs '$OVL' && mkdir -p '$OVL/upper/resolvconf' '$OVL/work' &&
    printf 'lo.inet6\nlo.inet*\nlo\ntun*\ntap*\n' >'$OVL/upper/resolvconf/interface-order' &&
    mount -t overlay overlay -o 'lowerdir=/etc,upperdir=$OVL/upper,workdir=$OVL/work' /etc &&
    exec env VPND_RUN_DIR='$(vpnd_run_dir dns-order)' PATH='$BIN' '$VPND' --client --config '$(vpnd_conf_file dns)'"
VPND_PID=$SPAWNED_PID
wait_for "vpnd with interface-order" 15 vpnd_alive_and_listening "$VPND_PID" "$(vpnd_run_dir dns-order)" vpn0 \
    || fail "vpnd with an interface-order did not come up: $(tail -n 5 "$(vpnd_log_file dns-order)")"
printf '%s\n' "${RC_UP/PREFIX/tun.}" | diff - "$RC_LOG" >&2 || fail "resolvconf calls with interface-order differ (above)"
stop dns-order
printf '%s\nresolvconf -d tun.vpn0 -f\n' "${RC_UP/PREFIX/tun.}" | diff - "$RC_LOG" >&2 \
    || fail "resolvconf calls with interface-order after stop differ (above)"
[ "$ORDER_BEFORE" = "$(resolvconf_dir)" ] || fail "the host's /etc/resolvconf changed"
log "resolvconf with interface-order tun*: tun.vpn0"

# --- 4. DNS through resolvectl; neither ---
VPND_EXTRA_ENV="PATH=$CTL_BIN" vpnd_start b dns-ctl vpn0 --client --config "$(vpnd_conf_file dns)"
printf 'resolvectl dns vpn0 10.9.0.53 fd00:9::53\nresolvectl domain vpn0 ~. corp.example lab.example\n' \
    | diff - "$CTL_LOG" >&2 || fail "resolvectl calls while up differ (above)"
stop dns-ctl
printf 'resolvectl dns vpn0 10.9.0.53 fd00:9::53\nresolvectl domain vpn0 ~. corp.example lab.example\nresolvectl revert vpn0\n' \
    | diff - "$CTL_LOG" >&2 || fail "resolvectl calls after stop differ (above)"
log "resolvectl: dns, domain ~. while up, revert after"
cp "$(vpnd_conf_file dns)" "$(vpnd_conf_file dns-none)"
fails_with dns-none "^.*dns-none\.conf: DNS needs resolvconf or resolvectl, and neither is on PATH \($EMPTY\); install openresolv or systemd-resolved" \
    PATH="$EMPTY"

# --- 5. User with PreDown ---
client_conf user-predown "User = nobody
PostUp = true
PreDown = true"
fails_with user-predown '^.*user-predown\.conf: PreDown cannot be used with User = nobody \(or --user\): it acts when vpnd stops' PATH="$EMPTY"

# PreUp and PostUp with User run as root, before the switch.
: >"$M"
chmod 711 "$VPND_ITEST_DIR"  # nobody reaches its run directory
mkdir -m 700 "$(vpnd_run_dir user-postup)"
client_conf user-postup "User = nobody
PreUp = echo \"PreUp \$(id -u)\" >> $M
PostUp = echo \"PostUp \$(id -u)\" >> $M"
vpnd_start b user-postup vpn0 --client --config "$(vpnd_conf_file user-postup)"
[ "$(awk '/^Uid:/ {print $2}' "/proc/$VPND_PID/status")" = "$(id -u nobody)" ] || fail "vpnd did not switch to nobody"
printf 'PreUp 0\nPostUp 0\n' | diff - "$M" >&2 || fail "PreUp and PostUp with User did not run as root (above)"
stop user-postup
no_interface_left "user-postup after stop"
log "with User = nobody: PreUp and PostUp ran as root, before the switch"

[ "$RESOLV_BEFORE" = "$(sha256sum /etc/resolv.conf 2>/dev/null || echo none)" ] || fail "the host's /etc/resolv.conf changed"
log "hooks-dns passed (the host's /etc/resolv.conf unchanged)"
