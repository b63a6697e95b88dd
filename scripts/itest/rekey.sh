#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Rekeying under load: with VPND_TEST_REKEY_AFTER_SECONDS=3 on both ends (every WireGuard timer
# scaled by 3/120: rekey after 3 s, reject after 4.5 s), a 60 MB transfer, shaped to about 40 Mbit/s
# so it lasts ~12 s, spans several rekeys and arrives intact. `vpnd show --json`, sampled five times a
# second on each side, sees at least 3 distinct handshakes (its latest_handshake_seconds_ago starts
# again from 0), and afterwards reports a session with a recent handshake.
#
#   a: vpnd --server, 10.9.0.1/24, listens on 198.18.0.1:51820
#   b: vpnd --client, 10.9.0.2/24, endpoint 198.18.0.1:51820; eth0 egress shaped (tbf)
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"

rekey=3
bytes="${VPND_ITEST_BYTES:-60M}"

ns_pair a b
# Shape b's underlay so the transfer takes long enough for several rekeys, whatever the build's speed.
in_ns b --timeout 5 tc qdisc add dev eth0 root tbf rate 40mbit burst 64kb latency 200ms
vpnd_keypair server
vpnd_keypair client
vpnd_config server --key server --peer client --address 10.9.0.1/24 --port 51820 --allowed 10.9.0.2/32 --ifname vpn0
vpnd_config client --key client --peer server --address 10.9.0.2/24 --allowed 10.9.0.0/24 \
    --endpoint "$UNDERLAY_A:51820" --ifname vpn0

VPND_EXTRA_ENV="VPND_TEST_REKEY_AFTER_SECONDS=$rekey"
vpnd_start a server vpn0 --server --config "$(vpnd_conf_file server)"
server_pid=$VPND_PID
vpnd_start b client vpn0 --client --config "$(vpnd_conf_file client)"
client_pid=$VPND_PID
VPND_EXTRA_ENV=""
vpnd_json_watch client client-handshakes 'handshake_at'
vpnd_json_watch server server-handshakes 'handshake_at'

ping_ok b 10.9.0.1 10
ping_ok a 10.9.0.2 10

log "transfer of $bytes b -> a with rekeys every $rekey s"
start=$SECONDS
transfer_check b a 10.9.0.1 "$bytes" 120
took=$((SECONDS - start))
log "transfer took $took s"
[ "$took" -ge $((2 * rekey)) ] || log "note: the transfer was shorter than two rekey intervals"

for side in client server; do
    log "$side: $(vpnd_json "$side" '{k: peer[k] for k in ("has_session", "latest_handshake_seconds_ago", "rx_bytes", "tx_bytes", "drops")}')"
    vpnd_json_ok "$side" "peer['has_session'] and handshake_at is not None and now - handshake_at < 2 * $rekey" \
        || fail "vpnd show for the $side: no session with a handshake in the last $((2 * rekey)) s"
done

vpnd_json_watch_stop client-handshakes
vpnd_json_watch_stop server-handshakes
client_count="$(vpnd_handshakes_seen client-handshakes)"
server_count="$(vpnd_handshakes_seen server-handshakes)"
log "handshakes seen in show --json: client $client_count, server $server_count"
[ "$client_count" -ge 3 ] || fail "vpnd show saw $client_count handshakes on the client; expected at least 3 (rekeys: are the test timers in use?)"
[ "$server_count" -ge 3 ] || fail "vpnd show saw $server_count handshakes on the server; expected at least 3 (rekeys: are the test timers in use?)"

vpnd_alive "$server_pid" "vpnd server"
vpnd_alive "$client_pid" "vpnd client"
log "rekey passed"
