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
CLI1_PID=$VPND_PID
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
SRV2_PID=$VPND_PID
wait_for "READY=1 on $ABS" 5 grep -q "^READY=1" "$MSGS2" || fail "no READY=1 on the abstract socket"

log "a client is ready after its first handshake; with no server, after 15 s and a STATUS that says so"
kill -TERM "$CLI1_PID"
wait_for "the first client to stop" 10 sh -c "! kill -0 $CLI1_PID 2>/dev/null" || fail "the first client did not stop"
MSGS3="$VPND_ITEST_DIR/notify3.log"
: >"$MSGS3"
listen "$VPND_ITEST_DIR/notify3.sock" "$MSGS3"
wait_for "the third listener" 5 test -S "$VPND_ITEST_DIR/notify3.sock"
VPND_EXTRA_ENV="NOTIFY_SOCKET=$VPND_ITEST_DIR/notify3.sock" vpnd_start b cli vpnd0 --client --config "$(vpnd_conf_file cli)"
wait_for "the client's READY=1" 10 grep -q "^READY=1" "$MSGS3" || fail "no READY=1 from the client: $(cat "$MSGS3")"
grep -q "^READY=1|STATUS=vpnd0 up, 1 peer(s), 1 with a session|MAINPID=" "$MSGS3" || fail "the client was ready before its session: $(cat "$MSGS3")"
kill -TERM "$VPND_PID"
wait_for "the client to stop" 10 grep -q "^STOPPING=1" "$MSGS3" || fail "no STOPPING=1 from the client"
wait_for "the client to exit" 10 sh -c "! kill -0 $VPND_PID 2>/dev/null" || fail "the client did not exit"
kill -TERM "$SRV2_PID"
wait_for "the server to exit" 10 sh -c "! kill -0 $SRV2_PID 2>/dev/null" || fail "the server did not exit"
: >"$MSGS3"
started=$SECONDS
VPND_EXTRA_ENV="NOTIFY_SOCKET=$VPND_ITEST_DIR/notify3.sock" vpnd_start b cli vpnd0 --client --config "$(vpnd_conf_file cli)"
CLI_PID=$VPND_PID
sleep 3
! grep -q "^READY=1" "$MSGS3" || fail "a client with no server was ready at once: $(cat "$MSGS3")"
wait_for "the client's READY=1 without a server" 20 grep -q "^READY=1" "$MSGS3" || fail "no READY=1 after the bounded wait"
waited=$((SECONDS - started))
grep -q "^READY=1|STATUS=vpnd0 up, 1 peer(s), 0 with a session; no handshake with the server after 15 s, still trying|" "$MSGS3" \
    || fail "READY=1 without the waiting STATUS: $(cat "$MSGS3")"
[ "$waited" -ge 14 ] && [ "$waited" -le 19 ] || fail "the client's READY came after $waited s, expected about 15"
kill -TERM "$CLI_PID"
wait_for "the client to stop while waiting" 10 grep -q "^STOPPING=1" "$MSGS3" || fail "no STOPPING=1"
log "notify passed"
