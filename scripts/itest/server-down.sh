#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The server down for a minute (SIGTERM, 60 s, start again; VPND_ITEST_DOWN_SECONDS): the untouched
# client recovers by itself. A ping runs in the client during the outage, so the client keeps
# retrying handshakes into the void. The server comes back with an EMPTY run directory, so it
# remembers no endpoint and cannot initiate: recovery is the client's doing. The first echo reply
# through the tunnel must come within 15 s of the restart (printed), then 5 MB each way intact.
# Long: about 80 s.
#
#   a: vpnd --server 10.9.0.1/24 on 198.18.0.1:51820 (stopped, restarted)    b: vpnd --client 10.9.0.2/24
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"
source "$VPND_REPO/scripts/lib/faults.sh"

down="${VPND_ITEST_DOWN_SECONDS:-60}"
ns_pair a b
fault_configs "$UNDERLAY_A:51820" udp
vpnd_start a server vpn0 --server --config "$(vpnd_conf_file server)"
server_pid=$VPND_PID
vpnd_start b client vpn0 --client --config "$(vpnd_conf_file client)"
client_pid=$VPND_PID
wait_for "ping b -> a" 15 ping_ok b 10.9.0.1 1
transfer_check b a 10.9.0.1 5M 60

log "SIGTERM to the server; down for $down s with a ping running in the client"
kill -TERM "$server_pid"
wait "$server_pid" || fail "the server did not exit cleanly on SIGTERM"
ns_spawn b outage-ping ping -n -i 1 -W 1 -w "$((down + 2))" 10.9.0.1
ping_pid=$SPAWNED_PID
sleep "$down"
vpnd_alive "$client_pid" "the vpnd client during the outage"

restart_ms=$(now_ms)
vpnd_start a server-again vpn0 --server --config "$(vpnd_conf_file server)"
server_pid=$VPND_PID
wait_for "ping b -> a after the server's restart" 20 ping_ok b 10.9.0.1 1 \
    || fail "the client's tunnel does not carry traffic 20 s after the server's restart"
back_ms=$(now_ms)
recovery=$((back_ms - restart_ms))
log "recovered $recovery ms after the restart command"
[ "$recovery" -le 15000 ] || fail "recovery took $recovery ms, more than 15 s"
wait "$ping_pid" 2>/dev/null || true
log "outage ping: $(grep -E 'packets transmitted' "$VPND_ITEST_DIR/outage-ping.log" || echo '(no summary)')"
transfer_check b a 10.9.0.1 5M 60
transfer_check a b 10.9.0.2 5M 60
vpnd_alive "$client_pid" "vpnd client"
log "client drops: $(vpnd_drops_summary client); client log warnings: $(vpnd_log_count client warning)"
log "server-down passed"
