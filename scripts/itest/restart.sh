#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Server crash and restart: `kill -9` of the server, then the same server started again (same run
# directory, so it finds the client's remembered endpoint). The client, never restarted, carries
# traffic again within 10 s; over UDP and over TCP (VPND_ITEST_TRANSPORTS, default "udp tcp").
# Prints the recovery time (restart command -> first echo reply through the tunnel).
#
#   a: vpnd --server, 10.9.0.1/24, listens on 198.18.0.1:51820   (killed and restarted)
#   b: vpnd --client, 10.9.0.2/24, endpoint 198.18.0.1:51820     (keeps running)
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"

ns_pair a b
vpnd_keypair server
vpnd_keypair client

now_ms() { echo $(($(date +%s%N) / 1000000)); }

for transport in ${VPND_ITEST_TRANSPORTS:-udp tcp}; do
    vpnd_config "server-$transport" --key server --peer client --address 10.9.0.1/24 --port 51820 \
        --allowed 10.9.0.2/32 --transport "$transport" --ifname vpn0
    vpnd_config "client-$transport" --key client --peer server --address 10.9.0.2/24 --allowed 10.9.0.0/24 \
        --endpoint "$UNDERLAY_A:51820" --transport "$transport" --ifname vpn0

    vpnd_start a "server-$transport" vpn0 --server --config "$(vpnd_conf_file "server-$transport")"
    server_pid=$VPND_PID
    vpnd_start b "client-$transport" vpn0 --client --config "$(vpnd_conf_file "client-$transport")"
    client_pid=$VPND_PID
    ping_ok b 10.9.0.1 10
    ping_ok a 10.9.0.2 10
    transfer_check b a 10.9.0.1 5M 60
    log "$transport: tunnel up; kill -9 the server (pid $server_pid)"

    kill -KILL "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    ! ping_ok b 10.9.0.1 1 2>/dev/null || fail "$transport: ping works with the server killed"

    restart_ms=$(now_ms)
    vpnd_start a "server-$transport" vpn0 --server --config "$(vpnd_conf_file "server-$transport")"
    server_pid=$VPND_PID
    up_ms=$(now_ms)
    wait_for "$transport: ping b -> a after the server's restart" 10 ping_ok b 10.9.0.1 1 \
        || fail "$transport: the client's tunnel does not carry traffic 10 s after the server's restart"
    back_ms=$(now_ms)
    log "$transport: recovery $((back_ms - restart_ms)) ms after the restart command" \
        "($((up_ms - restart_ms)) ms until the control socket answered)"

    vpnd_alive "$client_pid" "$transport: the vpnd client"
    ping_ok a 10.9.0.2 5
    transfer_check b a 10.9.0.1 5M 60
    transfer_check a b 10.9.0.2 5M 60

    kill -TERM "$server_pid" "$client_pid"
    wait "$server_pid" || fail "$transport: the restarted server did not exit cleanly on SIGTERM"
    wait "$client_pid" || fail "$transport: the client did not exit cleanly on SIGTERM"
done
log "restart passed"
