#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Replayed transport data: an AF_PACKET sniffer on the client's veth (scripts/lib/hostile.py replay)
# captures data messages the client sends and injects each frame again, byte for byte, 3 times at once
# and 3 times 2 s later, from the client's own address and port, while the client sends 300 UDP
# datagrams with sequence numbers through the tunnel. None is delivered twice: the receiver sees
# every sequence number exactly once, and the server counts every injected copy as `replayed`.
# With the offloads on and with --no-offload (VPND_ITEST_OFFLOADS).
#
#   a: vpnd --server 10.9.0.1/24 on 198.18.0.1:51820     b: vpnd --client 10.9.0.2/24 (sniffer on eth0)
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"
source "$VPND_REPO/scripts/lib/faults.sh"

ns_pair a b
fault_configs "$UNDERLAY_A:51820" udp
count=300
captures=5
repeat=3

for offload in ${VPND_ITEST_OFFLOADS:-on off}; do
    flags=()
    [ "$offload" = on ] || flags=(--no-offload)
    vpnd_start a "server-$offload" vpn0 --server --config "$(vpnd_conf_file server)" "${flags[@]}"
    server_pid=$VPND_PID
    vpnd_start b "client-$offload" vpn0 --client --config "$(vpnd_conf_file client)" "${flags[@]}"
    client_pid=$VPND_PID
    wait_for "ping b -> a" 15 ping_ok b 10.9.0.1 1
    replayed_before=$(vpnd_drops "server-$offload" replayed)

    ready="$VPND_ITEST_DIR/seq-$offload.ready"
    ns_spawn a "seq-recv-$offload" timeout --kill-after=2 40 python3 -u "$HOSTILE" seq-recv \
        --bind 10.9.0.1:6000 --seconds 30 --expect "$count" --linger 3 --ready-file "$ready"
    recv_pid=$SPAWNED_PID
    ns_spawn b "replay-$offload" timeout --kill-after=2 30 python3 -u "$HOSTILE" replay --iface eth0 --port 51820 \
        --captures "$captures" --repeat "$repeat" --later 2 --spacing 0.5 --first-after 0.3 --seconds 20
    replay_pid=$SPAWNED_PID
    wait_for "the seq receiver" 10 test -e "$ready"
    wait_for "the replay sniffer" 10 grep -q '^replay: listening' "$VPND_ITEST_DIR/replay-$offload.log"
    in_ns b --timeout 20 python3 "$HOSTILE" seq-send --to 10.9.0.1:6000 --count "$count" --rate 50 --seconds 15 >/dev/null
    wait "$replay_pid" || fail "the replay tool failed: $(cat "$VPND_ITEST_DIR/replay-$offload.log")"
    wait "$recv_pid" || fail "the seq receiver failed: $(cat "$VPND_ITEST_DIR/seq-recv-$offload.log")"
    rsummary="$(grep '^replay: captured' "$VPND_ITEST_DIR/replay-$offload.log")"
    ssummary="$(grep '^seq-recv:' "$VPND_ITEST_DIR/seq-recv-$offload.log")"
    replayed=$(($(vpnd_drops "server-$offload" replayed) - replayed_before))
    log "offloads $offload: $rsummary"
    log "offloads $offload: $ssummary; server replayed drops +$replayed"
    read -r _ _ received _ unique _ duplicates <<<"$ssummary"
    injected=$((captures * repeat * 2))
    [ "$duplicates" = 0 ] || fail "offloads $offload: $duplicates datagrams were delivered twice"
    [ "$unique" = "$count" ] || fail "offloads $offload: $unique of $count datagrams arrived"
    [ "$replayed" -ge "$injected" ] || fail "offloads $offload: $injected copies injected, only $replayed counted as replayed"
    vpnd_alive "$server_pid" "vpnd server"
    kill -TERM "$server_pid" "$client_pid"
    wait "$server_pid" || true
    wait "$client_pid" || true
done
log "replay passed"
