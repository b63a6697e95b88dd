#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# systemd's notify protocol (Type=notify), against a datagram socket this test listens on (systemd
# is not PID 1 here): READY=1 only once the control socket answers, with STATUS= and MAINPID=;
# WATCHDOG=1 every WATCHDOG_USEC/2 while the data plane answers; RELOADING=1 (with
# MONOTONIC_USEC=) then READY=1 around a SIGHUP reload; STOPPING=1 on SIGTERM; in that order.
# An abstract socket (@name) works too.
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"

listen() {  # listen SOCKET LOG: records every datagram, one per line (newlines as |)
    ns_spawn a "notify-listener-$RANDOM" python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
name = sys.argv[1]
s.bind("\0" + name[1:] if name.startswith("@") else name)
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        out.write(s.recv(4096).decode().replace("\n", "|") + "\n")
' "$1" "$2"
}

ns_pair a b
vpnd_keypair srv
vpnd_keypair cli
vpnd_config srv --key srv --peer cli --address 10.83.0.1/24 --allowed 10.83.0.2/32 --port 51820
vpnd_config cli --key cli --peer srv --address 10.83.0.2/24 --allowed 10.83.0.0/24 --endpoint "$UNDERLAY_A:51820"
SOCK="$VPND_ITEST_DIR/notify.sock"
MSGS="$VPND_ITEST_DIR/notify.log"
: >"$MSGS"
listen "$SOCK" "$MSGS"
wait_for "the notify listener" 5 test -S "$SOCK"
VPND_EXTRA_ENV="NOTIFY_SOCKET=$SOCK WATCHDOG_USEC=2000000" vpnd_start a srv vpnd0 --server --config "$(vpnd_conf_file srv)"
SRV_PID=$VPND_PID
vpnd_start b cli vpnd0 --client --config "$(vpnd_conf_file cli)"
wait_for "READY=1" 5 grep -q "^READY=1" "$MSGS" || fail "no READY=1: $(cat "$MSGS")"
grep -q "^READY=1|STATUS=vpnd0 up, 1 peer(s).*|MAINPID=$SRV_PID$" "$MSGS" || fail "READY=1 without STATUS and MAINPID: $(cat "$MSGS")"
wait_for "two WATCHDOG=1" 6 sh -c "[ \$(grep -c '^WATCHDOG=1' '$MSGS') -ge 2 ]" || fail "no watchdog pings: $(cat "$MSGS")"
wait_for "a tunnel" 15 ping_ok b 10.83.0.1 1
kill -HUP "$SRV_PID"
wait_for "READY=1 after the reload" 5 sh -c "grep -q '^READY=1|STATUS=reloaded' '$MSGS'" || fail "no READY=1 after SIGHUP: $(cat "$MSGS")"
kill -TERM "$SRV_PID"
wait_for "STOPPING=1" 10 grep -q "^STOPPING=1" "$MSGS" || fail "no STOPPING=1: $(cat "$MSGS")"
order="$(cut -d'|' -f1 "$MSGS" | grep -v '^WATCHDOG=1$' | tr '\n' ' ')"
log "notify order (watchdog pings left out): $order"
[ "$order" = "READY=1 RELOADING=1 READY=1 STOPPING=1 " ] || fail "unexpected order: $order"
grep -q "^RELOADING=1|MONOTONIC_USEC=[0-9]*$" "$MSGS" || fail "RELOADING=1 without MONOTONIC_USEC"

log "an abstract socket (@name)"
ABS="@vpnd-notify-$VPND_RUN_ID"
MSGS2="$VPND_ITEST_DIR/notify2.log"
: >"$MSGS2"
listen "$ABS" "$MSGS2"
sleep 0.5
VPND_EXTRA_ENV="NOTIFY_SOCKET=$ABS" vpnd_start a srv2 vpnd0 --server --config "$(vpnd_conf_file srv)"
wait_for "READY=1 on $ABS" 5 grep -q "^READY=1" "$MSGS2" || fail "no READY=1 on the abstract socket"
log "notify passed"
