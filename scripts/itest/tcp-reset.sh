#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# TCP transport, the outer connection killed mid-transfer (`ss -K`, which aborts the socket: the
# other end gets a reset): vpnd's client redials, the session goes on over the new connection with
# no new handshake (a reconnect is not a new session), and the inner TCP transfer goes on to
# completion intact. Twice: the client's socket killed during 25 MB client -> server, then
# the server's accepted socket killed during 25 MB server -> client. Both eth0 are shaped to 40 Mbit/s
# so each transfer outlasts the reset. The client's `show --json` counts the redial (tcp.connects one
# more), and both ends' handshake counts stay as they were.
#
#   a: vpnd --server 10.9.0.1/24, TCP listener 198.18.0.1:51820     b: vpnd --client 10.9.0.2/24
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"
source "$VPND_REPO/scripts/lib/faults.sh"

bytes="${VPND_ITEST_BYTES:-25M}"
ns_pair a b
in_ns a --timeout 5 tc qdisc add dev eth0 root tbf rate 40mbit burst 64kb latency 200ms
in_ns b --timeout 5 tc qdisc add dev eth0 root tbf rate 40mbit burst 64kb latency 200ms
fault_configs "$UNDERLAY_A:51820" tcp
vpnd_start a server vpn0 --server --config "$(vpnd_conf_file server)"
server_pid=$VPND_PID
vpnd_start b client vpn0 --client --config "$(vpnd_conf_file client)"
client_pid=$VPND_PID
on_failure_show in_ns a ss -tn
on_failure_show in_ns b ss -tn
wait_for "ping b -> a" 15 ping_ok b 10.9.0.1 1

# Kills the outer TCP connection in NS after DELAY seconds, in the background:  reset_later NS FILTER DELAY
reset_later() {
    ns_spawn "$1" "reset-$1" sh -c "sleep $3; date +%s%N; ss -K $2 | tail -n +2"
    RESET_PID=$SPAWNED_PID
}

reset_check() {
    local where="$1" filter="$2" from="$3" to="$4" addr="$5" start took connected_before connected_after
    local handshakes_before server_handshakes_before
    connected_before="$(vpnd_json client 'tcp["connects"]')"
    handshakes_before="$(vpnd_json client 'peers[0]["handshakes"]')"
    server_handshakes_before="$(vpnd_json server 'peers[0]["handshakes"]')"
    reset_later "$where" "$filter" 2
    start=$SECONDS
    transfer_check "$from" "$to" "$addr" "$bytes" 120 \
        || fail "the $from -> $to transfer did not survive the reset of the outer connection in $where"
    took=$((SECONDS - start))
    wait "$RESET_PID" || fail "ss -K in $where failed: $(cat "$VPND_ITEST_DIR/reset-$where.log")"
    grep -q ":51820" "$VPND_ITEST_DIR/reset-$where.log" \
        || fail "ss -K in $where killed no connection: $(cat "$VPND_ITEST_DIR/reset-$where.log")"
    [ "$took" -ge 3 ] || fail "the transfer took only $took s: it ended before the reset (2 s)"
    connected_after="$(vpnd_json client 'tcp["connects"]')"
    [ "$connected_after" -gt "$connected_before" ] || fail "the client did not reconnect after the reset in $where"
    local handshakes_after server_handshakes_after
    handshakes_after="$(vpnd_json client 'peers[0]["handshakes"]')"
    server_handshakes_after="$(vpnd_json server 'peers[0]["handshakes"]')"
    [ "$handshakes_after" -eq "$handshakes_before" ] \
        || fail "the client handshook again after the reset in $where ($handshakes_before -> $handshakes_after): a reconnect must keep the session"
    [ "$server_handshakes_after" -eq "$server_handshakes_before" ] \
        || fail "the server handshook again after the reset in $where ($server_handshakes_before -> $server_handshakes_after)"
    log "outer connection killed in $where during a $took s transfer $from -> $to: intact;" \
        "client connects: $connected_before -> $connected_after; handshakes: $handshakes_after (none new)"
}

reset_check b "state established dst $UNDERLAY_A dport = :51820" b a 10.9.0.1
reset_check a "state established sport = :51820" a b 10.9.0.2
ping_ok b 10.9.0.1 5
ping_ok a 10.9.0.2 5
vpnd_alive "$server_pid" "vpnd server"
vpnd_alive "$client_pid" "vpnd client"
log "server drops: $(vpnd_drops_summary server); client drops: $(vpnd_drops_summary client)"
log "tcp-reset passed"
