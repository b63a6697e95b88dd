#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Transport = auto on both ends: one session over UDP or TCP, moved by the client with no new
# handshake. nftables in srv drops UDP to and from port 51820 (both ways, as a firewall would);
# the client's eth0 and the server's eth-c are shaped to 60 Mbit/s so that a 200 MB transfer
# outlasts each change. Every check reads `vpnd show --json` (peer transport, transport_switches,
# handshakes) and the transfers' own SHA-256 and longest receive gap (scripts/lib/xfer.py).
#
#   1. UDP blocked from the start: the tunnel is up over TCP within 8 s of the client's start; UDP
#      unblocked, the session moves to UDP.
#   2. UDP blocked in the middle of a 200 MB transfer: on TCP, intact, no receive gap over 5 s,
#      the handshake count unchanged; unblocked: back on UDP within 30 s, still the same session.
#   3. A flapping network (UDP blocked and unblocked every 2 s for 30 s) under a 200 MB transfer:
#      intact (its longest gap is printed, not bounded); at most 4 moves in the flapping (the return waits for 5 s of answered probes, longer
#      after each flap).
#   4. A TCP connection churn from a third namespace (scripts/lib/hostile.py tcp-churn) while a
#      transfer runs over UDP: the client never leaves UDP.
#
#   cli 198.18.1.1 --- srv 198.18.1.254 / 198.18.2.254 --- atk 198.18.2.1 (scripts/lib/faults.sh)
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"
source "$VPND_REPO/scripts/lib/faults.sh"

BYTES="${VPND_ITEST_BYTES:-200M}"

fault_star
in_ns cli --timeout 5 tc qdisc add dev eth0 root tbf rate 60mbit burst 64kb latency 200ms
in_ns srv --timeout 5 tc qdisc add dev eth-c root tbf rate 60mbit burst 64kb latency 200ms
fault_configs "$SERVER_FOR_CLIENT:51820" auto

# UDP to and from the server's port dropped in srv (on), or let through (off).
block_udp() {
    in_ns srv --timeout 5 nft delete table inet vpnd_block 2>/dev/null || true
    [ "$1" = on ] || return 0
    printf 'table inet vpnd_block {\n chain in { type filter hook input priority 0; udp dport 51820 counter drop; }\n chain out { type filter hook output priority 0; udp sport 51820 counter drop; }\n}\n' \
        | in_ns srv --timeout 5 nft -f -
}

carrier() { vpnd_json client 'peer["transport"]'; }
switches() { vpnd_json client 'peer["transport_switches"]'; }
client_handshakes() { vpnd_json client 'peer["handshakes"]'; }
server_handshakes() { vpnd_json server 'peer["handshakes"]'; }
on_carrier() { [ "$(carrier)" = "$1" ]; }

# Starts a checksummed transfer cli -> srv in the background (XFER_PID); waits until it is under way.
transfer_start() {
    local port="$1"
    transfer_check cli srv 10.9.0.1 "$BYTES" 150 "$port" >"$VPND_ITEST_DIR/transfer-$port.out" 2>&1 &
    XFER_PID=$!
    wait_for "the transfer on port $port under way" 10 \
        sh -c "ip netns exec $(ns srv) ss -Htn 'sport = :$port' | grep -q ESTAB"
}

# Waits for the transfer started on PORT; fails unless it was intact (and, with MAX_GAP_MS, had
# no receive gap longer than that).   transfer_finish PORT WHAT [MAX_GAP_MS]
transfer_finish() {
    local port="$1" what="$2" max="${3:-}" gap
    wait "$XFER_PID" || fail "$what: the transfer failed: $(cat "$VPND_ITEST_DIR/transfer-$port.out")"
    gap="$(cat "$VPND_ITEST_DIR"/xfer-cli-srv-"$port"-*-recv.log | sed -n 's/^longest-gap-ms //p')"
    [ -n "$gap" ] || fail "$what: the receiver reported no gap"
    log "$what: $(grep -h 'transfer cli' "$VPND_ITEST_DIR/transfer-$port.out" | sed 's/^== [^]]*] //'), longest receive gap $gap ms"
    [ -z "$max" ] || [ "$gap" -le "$max" ] || fail "$what: the transfer stalled for $gap ms (more than $max ms)"
}

on_failure_show vpnd_show client vpn0
on_failure_show vpnd_show server vpn0
on_failure_show in_ns srv nft list table inet vpnd_block

# 1. UDP blocked from the start.
block_udp on
vpnd_start srv server vpn0 --server --config "$(vpnd_conf_file server)"
server_pid=$VPND_PID
in_ns srv --timeout 5 ss -Hlun 'sport = :51820' | grep_q . || fail "the server has no UDP socket on 51820"
in_ns srv --timeout 5 ss -Hltn 'sport = :51820' | grep_q . || fail "the server has no TCP listener on 51820"
started=$(now_ms)
vpnd_start cli client vpn0 --client --config "$(vpnd_conf_file client)"
client_pid=$VPND_PID
wait_for "ping over TCP" 12 ping_ok cli 10.9.0.1 1 || fail "no tunnel within 12 s with UDP blocked"
up_ms=$(($(now_ms) - started))
log "UDP blocked from the start: tunnel up after $up_ms ms, client on $(carrier), server sees $(vpnd_json server 'peer["transport"]')"
[ "$up_ms" -le 8000 ] || fail "the tunnel came up over TCP after $up_ms ms (more than 8 s)"
on_carrier tcp || fail "the client is on $(carrier), not tcp"
vpnd_json_ok server 'peer["transport"] == "tcp"' || fail "the server does not reach the client over TCP"
# The metrics say the same (Debian's python3 and its Prometheus client's text parser).
VPND_RUN_DIR="$(vpnd_run_dir client)" timeout 10 ip netns exec "$(ns cli)" "$VPND" metrics >"$VPND_ITEST_DIR/metrics.txt" \
    || fail "vpnd metrics failed"
/usr/bin/python3 - "$VPND_ITEST_DIR/metrics.txt" "$(switches)" <<'PYEOF' || fail "the client's metrics disagree with vpnd show: $(grep transport "$VPND_ITEST_DIR/metrics.txt")"
import sys
from prometheus_client.parser import text_string_to_metric_families
families = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}
assert families["vpnd_peer_transport_tcp"].samples[0].value == 1, families["vpnd_peer_transport_tcp"]
assert families["vpnd_peer_transport_switches"].samples[0].value == int(sys.argv[2]), families["vpnd_peer_transport_switches"]
PYEOF
block_udp off
wait_for "back on UDP" 30 on_carrier udp || fail "UDP unblocked, but the client stayed on $(carrier)"
ping_ok cli 10.9.0.1 3
vpnd_json_ok server 'peer["transport"] == "udp"' || fail "the client moved to UDP but the server still sends over $(vpnd_json server 'peer["transport"]')"
base_client=$(client_handshakes)
base_server=$(server_handshakes)
log "UDP unblocked: back on UDP; switches $(switches), handshakes client $base_client server $base_server"

# 2. UDP blocked in the middle of a transfer, then unblocked.
transfer_start 5201
sleep 2
block_udp on
blocked=$(now_ms)
wait_for "the move to TCP" 10 on_carrier tcp || fail "UDP blocked mid-transfer, but the client stayed on $(carrier)"
log "UDP blocked mid-transfer: on TCP after $(($(now_ms) - blocked)) ms"
sleep 3
block_udp off
unblocked=$(now_ms)
wait_for "the move back to UDP" 30 on_carrier udp || fail "UDP unblocked mid-transfer, but the client stayed on $(carrier)"
back_ms=$(($(now_ms) - unblocked))
log "UDP unblocked mid-transfer: back on UDP after $back_ms ms"
kill -0 "$XFER_PID" 2>/dev/null || log "(the transfer ended before the return to UDP)"
transfer_finish 5201 "block and unblock" 5000
[ "$(client_handshakes)" -eq "$base_client" ] || fail "the client handshook again across the moves ($base_client -> $(client_handshakes))"
[ "$(server_handshakes)" -eq "$base_server" ] || fail "the server handshook again across the moves ($base_server -> $(server_handshakes))"

# 3. Flapping: UDP blocked and unblocked every 2 s for 30 s.
before=$(switches)
transfer_start 5202
for _ in $(seq 1 8); do
    block_udp on
    sleep 2
    block_udp off
    sleep 2
done
during=$(($(switches) - before))
log "flapping for 32 s: $during moves (client now on $(carrier))"
[ "$during" -le 4 ] || fail "$during moves in 32 s of flapping: the hysteresis does not hold"
transfer_finish 5202 "flapping"
wait_for "back on UDP after the flapping" 40 on_carrier udp || fail "the client stayed on $(carrier) after the flapping"

# 4. A TCP-only attacker churning connections does not move the client off UDP.
before=$(switches)
ns_spawn atk tcp-churn timeout --kill-after=2 25 python3 -u "$HOSTILE" tcp-churn \
    --to "$SERVER_FOR_ATTACKER:51820" --from 198.18.2.1 --seconds 12 --hold 300 --count 1000000 --seed "$RANDOM"
churn_pid=$SPAWNED_PID
sleep 1
transfer_check cli srv 10.9.0.1 50M 60 5203
wait "$churn_pid" || fail "the attacker failed: $(tail -n 2 "$VPND_ITEST_DIR/tcp-churn.log")"
log "attacker: $(grep '^tcp-churn:' "$VPND_ITEST_DIR/tcp-churn.log")"
on_carrier udp || fail "the TCP churn moved the client to $(carrier)"
[ "$(switches)" -eq "$before" ] || fail "the client moved during the TCP churn ($before -> $(switches))"
[ "$(client_handshakes)" -eq "$base_client" ] || fail "the client handshook again during the churn"

vpnd_alive "$server_pid" "vpnd server"
vpnd_alive "$client_pid" "vpnd client"
log "client: $(switches) moves in all, handshakes $(client_handshakes); server tcp: $(vpnd_json server 'tcp')"
log "transport-auto passed"
