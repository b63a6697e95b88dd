#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Garbage on vpnd's TCP transport port from a third namespace (scripts/lib/hostile.py tcp-garbage, one
# connection per case): a zero length, an oversized length (65535), a frame that is no message (type
# 0xEE), non-zero reserved bytes, an initiation of the wrong size and random bytes each get their own
# connection closed within 3 s; a well-formed data message with a random body is only dropped (its
# connection stays open). The server's `show --json` counts the 7 connections of each round as
# accepted, each close under its drop reason, and afterwards only the real client's connection open.
# Meanwhile the real client's tunnel carries a checksummed transfer, its connection is never dropped
# (its tcp.connects stays 1), and the server stays up.
#
#   cli 198.18.1.1 --- srv 198.18.1.254 / 198.18.2.254 --- atk 198.18.2.1 (see scripts/lib/faults.sh)
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"
source "$VPND_REPO/scripts/lib/faults.sh"

fault_star
fault_configs "$SERVER_FOR_CLIENT:51820" tcp
vpnd_start srv server vpn0 --server -v --config "$(vpnd_conf_file server)"
server_pid=$VPND_PID
vpnd_start cli client vpn0 --client --config "$(vpnd_conf_file client)"
client_pid=$VPND_PID
on_failure_show in_ns srv ss -tn
wait_for "ping cli -> srv" 15 ping_ok cli 10.9.0.1 1

for round in 1 2; do
    log "round $round: TCP garbage from atk to $SERVER_FOR_ATTACKER:51820 during a transfer"
    accepted_before="$(vpnd_json server 'tcp["accepted"]')"
    ns_spawn atk "tcp-garbage-$round" timeout --kill-after=2 60 python3 -u "$HOSTILE" tcp-garbage \
        --to "$SERVER_FOR_ATTACKER:51820" --wait 3 --seed "$RANDOM"
    garbage_pid=$SPAWNED_PID
    transfer_check cli srv 10.9.0.1 20M 60
    transfer_check srv cli 10.9.0.2 20M 60
    wait "$garbage_pid" || fail "round $round: $(tail -n 2 "$VPND_ITEST_DIR/tcp-garbage-$round.log")"
    log "$(grep '^tcp-garbage:' "$VPND_ITEST_DIR/tcp-garbage-$round.log")"
    accepted=$(($(vpnd_json server 'tcp["accepted"]') - accepted_before))
    [ "$accepted" -ge 7 ] || fail "round $round: the server accepted $accepted connections, expected the 7 hostile ones"
    wait_for "round $round: only the real client's connection open on the server" 5 \
        vpnd_json_ok server 'tcp["open"] == 1 and tcp["authenticated"] == 1' \
        || fail "round $round: the server's tcp counters after the hostile connections: $(vpnd_json server tcp)"
    ping_ok cli 10.9.0.1 5
    vpnd_alive "$server_pid" "vpnd server"
done
vpnd_alive "$client_pid" "vpnd client"
connects="$(vpnd_json client 'tcp["connects"]')"
[ "$connects" = 1 ] || fail "the real client connected $connects times: its connection was dropped"
log "server tcp: $(vpnd_json server tcp); drops: $(vpnd_drops_summary server)"
# Each hostile connection the server closes is counted under the reason it closed it for.
counted=0
for reason in bad-frame-length unknown-type truncated oversized; do
    counted=$((counted + $(vpnd_drops server "$reason")))
done
[ "$counted" -ge 12 ] || fail "vpnd show counts only $counted hostile-stream drops for 2 x 6 hostile connections"
log "tcp-garbage passed"
