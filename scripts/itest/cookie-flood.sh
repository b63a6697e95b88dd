#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Initiation flood with a VALID mac1 (the attacker knows the server's public key; scripts/lib/hostile.py
# initiations: 300 per second from a third namespace, bounded to 15 s), above the 64 per second that
# put vpnd under load. The cookie mechanism engages: the attacker receives cookie replies (type 3, each
# naming one of its sender indexes) and the server counts `invalid-mac2`. A legitimate client started
# during the flood gets a cookie reply too, answers with mac2, and completes its handshake within
# 10 s; a checksummed transfer then runs during the flood; the server stays up.
#
#   cli 198.18.1.1 --- srv 198.18.1.254 / 198.18.2.254 --- atk 198.18.2.1 (see scripts/lib/faults.sh)
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"
source "$VPND_REPO/scripts/lib/faults.sh"

rate="${VPND_ITEST_FLOOD_RATE:-300}"
fault_star
fault_configs "$SERVER_FOR_CLIENT:51820" udp
vpnd_start srv server vpn0 --server -v --config "$(vpnd_conf_file server)"
server_pid=$VPND_PID
vpnd_start cli client vpn0 --client -v --config "$(vpnd_conf_file client)"
client_pid=$VPND_PID
wait_for "ping cli -> srv" 15 ping_ok cli 10.9.0.1 1
log "tunnel up before the flood; stopping the client"
kill -TERM "$client_pid"
wait "$client_pid" || fail "the client did not exit cleanly on SIGTERM"

log "initiation flood with valid mac1: $rate/s from atk to $SERVER_FOR_ATTACKER:51820 for at most 15 s"
ns_spawn atk flood timeout --kill-after=2 25 python3 -u "$HOSTILE" initiations --to "$SERVER_FOR_ATTACKER:51820" \
    --server-pub "$(vpnd_pub server)" --rate "$rate" --seconds 15 --count $((rate * 15)) --seed "$RANDOM"
flood_pid=$SPAWNED_PID
wait_for "the server under load (invalid-mac2 drops)" 10 vpnd_json_ok server 'drops["invalid-mac2"] > 0' \
    || fail "no invalid-mac2 drop 10 s into a flood of $rate initiations/s: the cookie mechanism did not engage"

start_ms=$(now_ms)
vpnd_start cli client-again vpn0 --client -v --config "$(vpnd_conf_file client)"
client_pid=$VPND_PID
wait_for "ping cli -> srv during the flood" 12 ping_ok cli 10.9.0.1 1 \
    || fail "the legitimate client has no tunnel 12 s after its start during the flood"
took=$(($(now_ms) - start_ms))
log "legitimate client: tunnel up $took ms after its start during the flood"
[ "$took" -le 10000 ] || fail "the legitimate client's handshake took $took ms under the flood (limit 10 s)"
cookies_to_client=$(vpnd_json client-again 'peer["cookie_replies_received"]')
log "cookie replies the legitimate client received: $cookies_to_client"
[ "${cookies_to_client:-0}" -gt 0 ] || fail "the legitimate client got no cookie reply: was the server under load when it came?"
transfer_check cli srv 10.9.0.1 10M 60
kill -0 "$flood_pid" 2>/dev/null || fail "the flood ended before the transfer: $(cat "$VPND_ITEST_DIR/flood.log")"
wait "$flood_pid" || fail "the flood tool failed: $(cat "$VPND_ITEST_DIR/flood.log")"
summary="$(grep '^initiations:' "$VPND_ITEST_DIR/flood.log")"
log "$summary"
log "server drops: $(vpnd_drops_summary server)"
cookies="$(sed -n 's/.* cookie-replies \([0-9]*\) .*/\1/p' <<<"$summary")"
[ "${cookies:-0}" -gt 0 ] || fail "the attacker received no cookie reply"
[ "$(vpnd_drops server invalid-mac2)" -gt 0 ] || fail "the server counted no invalid-mac2 drop"
vpnd_alive "$server_pid" "vpnd server"
ping_ok cli 10.9.0.1 5
log "cookie-flood passed"
