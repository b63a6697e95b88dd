#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Connection churn on vpnd's TCP transport port: 3 attacker processes in a third namespace (scripts/lib/
# hostile.py tcp-churn, 20 s each) open connections to the server as fast as they can from 64 source
# addresses and hold up to 300 each; a third stay silent, a third send junk, a third send well-formed
# frames that authenticate nothing. Meanwhile the real client's tunnel is idle for a while (the attack's
# best chance), then carries a checksummed 50 MB transfer each way. Pass when the transfers are intact
# and the real client was never disconnected: its `show --json` counts one connect (tcp.connects) and
# one open connection, and no handshake since the attack began (a redial would start one). The
# server's admission counters (evicted, expired, refused) are printed.
#
#   cli 198.18.1.1 --- srv 198.18.1.254 / 198.18.2.254 --- atk 198.18.2.1, .10-.73 (scripts/lib/faults.sh)
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"
source "$VPND_REPO/scripts/lib/faults.sh"

ATTACKERS=3
ATTACK_SECONDS=20
BYTES="${VPND_ITEST_BYTES:-50M}"

fault_star
SOURCES=()
for i in $(seq 10 73); do
    timeout 10 ip -n "$(ns atk)" addr add "198.18.2.$i/24" dev eth0
    SOURCES+=(--from "198.18.2.$i")
done
fault_configs "$SERVER_FOR_CLIENT:51820" tcp
# No -v on the server: a debug line per attacker connection would cost it more than the attack does.
vpnd_start srv server vpn0 --server --config "$(vpnd_conf_file server)"
server_pid=$VPND_PID
vpnd_start cli client vpn0 --client --config "$(vpnd_conf_file client)"
client_pid=$VPND_PID
on_failure_show in_ns srv ss -s
on_failure_show vpnd_show client vpn0 --json
wait_for "ping cli -> srv" 15 ping_ok cli 10.9.0.1 1

attack_start=$(now_ms)
log "churn: $ATTACKERS attackers for ${ATTACK_SECONDS}s against $SERVER_FOR_ATTACKER:51820"
attack_pids=()
for a in $(seq 1 "$ATTACKERS"); do
    ns_spawn atk "tcp-churn-$a" timeout --kill-after=2 $((ATTACK_SECONDS + 10)) python3 -u "$HOSTILE" tcp-churn \
        --to "$SERVER_FOR_ATTACKER:51820" "${SOURCES[@]}" --seconds "$ATTACK_SECONDS" --hold 300 --count 1000000 \
        --seed "$RANDOM"
    attack_pids+=("$SPAWNED_PID")
done
# The client is idle first: before the fix, an idle connection was the one evicted.
sleep 3
transfer_check cli srv 10.9.0.1 "$BYTES" 90
sleep 2
transfer_check srv cli 10.9.0.2 "$BYTES" 90
while kill -0 "${attack_pids[0]}" 2>/dev/null; do
    ping_ok cli 10.9.0.1 5
    sleep 1
done
opened=0
connected=0
for a in $(seq 1 "$ATTACKERS"); do
    wait "${attack_pids[$((a - 1))]}" || fail "attacker $a: $(tail -n 2 "$VPND_ITEST_DIR/tcp-churn-$a.log")"
    line="$(grep '^tcp-churn:' "$VPND_ITEST_DIR/tcp-churn-$a.log")"
    log "attacker $a: $line"
    n="$(sed -n 's/.* opened=\([0-9]*\).*/\1/p' <<<"$line")"
    opened=$((opened + ${n:-0}))
    n="$(sed -n 's/.* connected=\([0-9]*\).*/\1/p' <<<"$line")"
    connected=$((connected + ${n:-0}))
done
log "attackers: $opened connects tried, $connected connected in ${ATTACK_SECONDS}s ($((connected / ATTACK_SECONDS))/s)"
[ "$connected" -ge 5000 ] || fail "the attackers connected only $connected times: the attack proves nothing"
ping_ok cli 10.9.0.1 5
vpnd_alive "$server_pid" "vpnd server"
vpnd_alive "$client_pid" "vpnd client"

log "server tcp: $(vpnd_json server '" ".join(f"{k}={v}" for k, v in sorted(tcp.items())) or "(no tcp counters)"')"
log "client tcp: $(vpnd_json client 'tcp')"
age="$(vpnd_json client 'peer["latest_handshake_seconds_ago"]')"
since=$((($(now_ms) - attack_start) / 1000))
log "client: latest handshake ${age}s ago, attack began ${since}s ago"
vpnd_json_ok client 'tcp["connects"] == 1 and tcp["open"] == 1' \
    || fail "the real client's connection was dropped: its show --json counts $(vpnd_json client 'tcp["connects"]') connects, $(vpnd_json client 'tcp["open"]') open (expected 1, 1)"
awk -v age="$age" -v since="$since" 'BEGIN { exit !(age != "null" && age + 1 >= since) }' \
    || fail "the client's latest handshake is ${age}s old, newer than the attack (${since}s): it redialled"
log "tcp-churn passed"
