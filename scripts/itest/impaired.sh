#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vpnd client <-> vpnd server through scripts/impair.py in a hub namespace (10% loss, 5% reordering,
# 1% duplication, 20 ms delay each way): checksummed transfers inside the tunnel (TCP recovers) are
# intact, with the kernel offloads on (default) and with --no-offload (VPND_ITEST_OFFLOADS, default
# "on off"). Each pass checks that the relay really lost, reordered and duplicated datagrams and that
# the daemons dropped the duplicates as replayed, and no more than the relay made (reordered packets
# are not refused by the replay window).
#
#   a (198.18.1.1) --> hub 198.18.1.254:40000 [impair.py] --> b 198.18.2.1:51820
#   a: vpnd --client 10.9.0.2/24, endpoint = the relay;   b: vpnd --server 10.9.0.1/24
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"
source "$VPND_REPO/scripts/lib/faults.sh"

bytes="${VPND_ITEST_BYTES:-10M}"
ns_routed a hub b
fault_configs "$HUB_A:40000" udp --keepalive 25

for offload in ${VPND_ITEST_OFFLOADS:-on off}; do
    flags=()
    [ "$offload" = on ] || flags=(--no-offload)
    impair_start hub "$HUB_A:40000" "$UNDERLAY_B:51820" \
        --loss 10% --reorder 5% --duplicate 1% --delay 20 --jitter 2 --seed 11 --duration 200
    vpnd_start b "server-$offload" vpn0 --server --config "$(vpnd_conf_file server)" "${flags[@]}"
    server_pid=$VPND_PID
    vpnd_start a "client-$offload" vpn0 --client --config "$(vpnd_conf_file client)" "${flags[@]}"
    client_pid=$VPND_PID

    log "offloads $offload: ping through the relay (a lost handshake is retried after 5 s)"
    wait_for "ping a -> b through the relay" 30 ping_ok a 10.9.0.1 2
    start=$SECONDS
    transfer_check a b 10.9.0.1 "$bytes" 150
    log "offloads $offload: $bytes client -> server took $((SECONDS - start)) s"
    start=$SECONDS
    transfer_check b a 10.9.0.2 "$bytes" 150
    log "offloads $offload: $bytes server -> client took $((SECONDS - start)) s"
    vpnd_alive "$server_pid" "vpnd server"
    vpnd_alive "$client_pid" "vpnd client"
    log "offloads $offload: server drops: $(vpnd_drops_summary "server-$offload"); client drops: $(vpnd_drops_summary "client-$offload")"
    replayed=$(( $(vpnd_drops "server-$offload" replayed) + $(vpnd_drops "client-$offload" replayed) ))
    impair_stop
    grep -q 'to-target: .* lost [1-9]' "$IMPAIR_LOG" || fail "impair.py lost nothing: is traffic bypassing it?"
    grep -q 'to-target: .* reordered [1-9]' "$IMPAIR_LOG" || fail "impair.py reordered nothing"
    dups=$(awk '/^impair: to-/ { for (i = 1; i < NF; i++) if ($i == "duplicated") n += $(i + 1) } END { print n + 0 }' "$IMPAIR_LOG")
    [ "$replayed" -gt 0 ] || fail "the relay duplicated datagrams but neither daemon counted a replayed one"
    log "offloads $offload: relay duplicated $dups datagrams, the daemons dropped $replayed as replayed"
    # Reordering must not make the replay window refuse a genuine packet: only the relay's copies go.
    [ "$replayed" -le "$dups" ] || fail "$replayed packets dropped as replayed but the relay duplicated only $dups"
    kill -TERM "$server_pid" "$client_pid"
    wait "$server_pid" || fail "the server did not exit cleanly on SIGTERM"
    wait "$client_pid" || fail "the client did not exit cleanly on SIGTERM"
done
log "impaired passed"
