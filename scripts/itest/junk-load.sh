#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Junk that looks like initiations must not fake load. 150 datagrams per second of `01 00 00 00` and
# 144 random bytes (no valid mac1: no key knowledge at all; scripts/lib/hostile.py initiations
# --no-mac1) from a third namespace, bounded to 8 s. A client started during the flood must have its
# tunnel within 1 s (no cookie round trip, no 5 s retry); the server counts the junk as invalid-mac1
# and sends no cookie reply to anyone. (The cookie path under a flood with a valid mac1 is
# cookie-flood.sh.)
#
#   cli 198.18.1.1 --- srv 198.18.1.254 / 198.18.2.254 --- atk 198.18.2.1 (see scripts/lib/faults.sh)
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"
source "$VPND_REPO/scripts/lib/faults.sh"

rate="${VPND_ITEST_FLOOD_RATE:-150}"
limit_ms="${VPND_ITEST_LIMIT_MS:-1000}"
fault_star
fault_configs "$SERVER_FOR_CLIENT:51820" udp
vpnd_start srv server vpn0 --server -v --config "$(vpnd_conf_file server)"
server_pid=$VPND_PID

log "junk flood (no valid mac1): $rate/s from atk to $SERVER_FOR_ATTACKER:51820 for at most 8 s"
ns_spawn atk flood timeout --kill-after=2 25 python3 -u "$HOSTILE" initiations --no-mac1 \
    --to "$SERVER_FOR_ATTACKER:51820" --rate "$rate" --seconds 8 --count $((rate * 8)) --seed "$RANDOM"
flood_pid=$SPAWNED_PID
wait_for "the junk reaching the server (invalid-mac1 drops)" 10 vpnd_json_ok server 'drops["invalid-mac1"] >= 10' \
    || fail "no invalid-mac1 drops 10 s into the junk flood"
sleep 2  # well past the one-second load window

start_ms=$(now_ms)
vpnd_start cli client vpn0 --client -v --config "$(vpnd_conf_file client)"
client_pid=$VPND_PID
wait_for "ping cli -> srv during the junk flood" 12 ping_ok cli 10.9.0.1 1 \
    || fail "the client has no tunnel 12 s after its start during the junk flood"
took=$(($(now_ms) - start_ms))
log "client: tunnel up $took ms after its start during the junk flood (limit $limit_ms ms)"
# vpnd sends a cookie reply only for a message it drops as invalid-mac2, so none counted: none sent.
[ "$(vpnd_drops server invalid-mac2)" -eq 0 ] \
    || fail "the server sent cookie replies (invalid-mac2 drops) while the client came up: the junk put it under load"
[ "$took" -le "$limit_ms" ] || fail "the client's tunnel took $took ms during a junk flood (limit $limit_ms ms)"
kill -0 "$flood_pid" 2>/dev/null || fail "the flood ended before the client was up: $(cat "$VPND_ITEST_DIR/flood.log")"
wait "$flood_pid" || fail "the flood tool failed: $(cat "$VPND_ITEST_DIR/flood.log")"
log "$(grep '^initiations:' "$VPND_ITEST_DIR/flood.log")"
log "server drops: $(vpnd_drops_summary server)"
[ "$(vpnd_drops server invalid-mac1)" -gt 100 ] || fail "the server counted too few invalid-mac1 drops"
[ "$(vpnd_drops server invalid-mac2)" -eq 0 ] || fail "the server went under load: invalid-mac2 drops counted"
grep -q 'cookie-replies 0 ' "$VPND_ITEST_DIR/flood.log" || fail "the attacker received cookie replies"
vpnd_alive "$server_pid" "vpnd server"
vpnd_alive "$client_pid" "vpnd client"
log "junk-load passed"
