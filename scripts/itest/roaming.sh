#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Roaming over UDP: the client's underlay address changes in the middle of a transfer (the old address
# deleted, a new one added on the same veth; vpnd's socket is bound to the wildcard address, so its
# next datagrams leave from the new source). The server follows the client after the next
# authenticated packet: the transfer completes intact and `vpnd show` on the server gives the new
# endpoint. Twice: while the client sends the bulk (25 MB client -> server, 198.18.0.2 -> .3), and
# while the server does (25 MB server -> client, .3 -> .4: only the client's ACKs tell the server).
# Both eth0 are shaped to 40 Mbit/s so each transfer outlasts the address change. The server follows a
# sending client at once; a receiving client only once its 15 s handshake timer fires (printed: the
# move's time against the first sample of a watch of the server's `show --json` endpoint that has it).
#
#   a: vpnd --server 10.9.0.1/24 on 198.18.0.1:51820     b: vpnd --client 10.9.0.2/24, 198.18.0.2 -> .3 -> .4
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"
source "$VPND_REPO/scripts/lib/faults.sh"

bytes="${VPND_ITEST_BYTES:-25M}"
ns_pair a b
in_ns a --timeout 5 tc qdisc add dev eth0 root tbf rate 40mbit burst 64kb latency 200ms
in_ns b --timeout 5 tc qdisc add dev eth0 root tbf rate 40mbit burst 64kb latency 200ms
fault_configs "$UNDERLAY_A:51820" udp
vpnd_start a server vpn0 --server --config "$(vpnd_conf_file server)"
server_pid=$VPND_PID
vpnd_start b client vpn0 --client --config "$(vpnd_conf_file client)"
client_pid=$VPND_PID
on_failure_show in_ns b ip -br addr
wait_for "ping b -> a" 15 ping_ok b 10.9.0.1 1
endpoint="$(vpnd_json server 'peer["endpoint"]')"
[[ "$endpoint" == 198.18.0.2:* ]] || fail "the server's endpoint for the client is $endpoint, expected 198.18.0.2:*"
log "server sees the client at $endpoint"

# Moves b from OLD to NEW after DELAY seconds, in the background:  roam_later OLD NEW DELAY
roam_later() {
    ns_spawn b "roam-$2" sh -c "sleep $3; ip addr del $1/24 dev eth0 && ip addr add $2/24 dev eth0 && date +%s.%N"
    ROAM_PID=$SPAWNED_PID
}

roam_check() {
    local old="$1" new="$2" from="$3" to="$4" addr="$5" start took
    vpnd_json_watch server "endpoint-$new" 'peer["endpoint"]'
    roam_later "$old" "$new" 2
    start=$SECONDS
    transfer_check "$from" "$to" "$addr" "$bytes" 90 \
        || fail "the $from -> $to transfer did not survive the client's move from $old to $new"
    took=$((SECONDS - start))
    wait "$ROAM_PID" || fail "changing b's address from $old to $new failed: $(cat "$VPND_ITEST_DIR/roam-$new.log")"
    [ "$took" -ge 3 ] || fail "the transfer took only $took s: it ended before the address changed (2 s)"
    wait_for "the server's endpoint to become $new" 5 vpnd_json_ok server "(peer['endpoint'] or '').startswith('$new:')" \
        || fail "after the move the server's endpoint for the client is $(vpnd_json server 'peer["endpoint"]'), expected $new:*"
    vpnd_json_watch_stop "endpoint-$new"
    # When the server followed: the first sample of the watch with the new endpoint, against the move.
    local moved_at changed_at
    moved_at="$(tail -n 1 "$VPND_ITEST_DIR/roam-$new.log")"
    changed_at="$(awk -v p="$new:" 'index($2, p) == 1 { print $1; exit }' "$(vpnd_json_watch_file "endpoint-$new")")"
    [ -n "$changed_at" ] || fail "the watch of the server's show --json never saw the endpoint $new:*"
    FOLLOWED="$(awk -v a="$changed_at" -v b="$moved_at" 'BEGIN { printf "%.1f", a - b }')"
    log "moved $old -> $new during a $took s transfer $from -> $to; the server followed after ${FOLLOWED} s" \
        "(endpoint now $(vpnd_json server 'peer["endpoint"]'))"
}

roam_check 198.18.0.2 198.18.0.3 b a 10.9.0.1
# The client sends data: its very next packet comes from the new address.
awk -v f="$FOLLOWED" 'BEGIN { exit !(f <= 2) }' || fail "the server followed the sending client only after $FOLLOWED s"
roam_check 198.18.0.3 198.18.0.4 a b 10.9.0.2
# The client only receives: after the move it has nothing to send (the server's packets go to the old
# address) until its timer "sent data, nothing received for 15 s" starts a handshake from the new
# address (KEEPALIVE + REKEY_TIMEOUT; PersistentKeepalive would make it sooner). Then the inner TCP's
# backed-off retransmission timer decides when data flows again.
awk -v f="$FOLLOWED" 'BEGIN { exit !(f <= 20) }' || fail "the server followed the receiving client only after $FOLLOWED s (the 15 s handshake timer should have fired)"
ping_ok a 10.9.0.2 5
vpnd_alive "$server_pid" "vpnd server"
vpnd_alive "$client_pid" "vpnd client"
log "server drops: $(vpnd_drops_summary server)"
log "roaming passed"
