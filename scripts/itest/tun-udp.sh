#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vpnd <-> vpnd in tun mode over UDP (or TCP: tun-tcp.sh runs this with VPND_ITEST_TRANSPORT=tcp):
# ping both ways, then a checksummed TCP transfer of 100 MB (VPND_ITEST_BYTES) inside the tunnel in
# each direction.
#
#   a: vpnd --server, 10.9.0.1/24, listens on 198.18.0.1:51820
#   b: vpnd --client, 10.9.0.2/24, endpoint 198.18.0.1:51820
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"

transport="${VPND_ITEST_TRANSPORT:-udp}"
bytes="${VPND_ITEST_BYTES:-100M}"

ns_pair a b
vpnd_keypair server
vpnd_keypair client
vpnd_config server --key server --peer client --address 10.9.0.1/24 --port 51820 --allowed 10.9.0.2/32 \
    --transport "$transport" --ifname vpn0
vpnd_config client --key client --peer server --address 10.9.0.2/24 --allowed 10.9.0.0/24 \
    --endpoint "$UNDERLAY_A:51820" --transport "$transport" --ifname vpn0

vpnd_start a server vpn0 --server --config "$(vpnd_conf_file server)"
server_pid=$VPND_PID
vpnd_start b client vpn0 --client --config "$(vpnd_conf_file client)"
client_pid=$VPND_PID
on_failure_show in_ns a ip -br addr
on_failure_show in_ns b ip -br addr

# The tunnel really uses the configured transport: a listening TCP socket, or a bound UDP one.
if [ "$transport" = tcp ]; then
    in_ns a --timeout 5 ss -Hltn 'sport = :51820' | grep_q . || fail "server has no TCP listener on 51820"
else
    in_ns a --timeout 5 ss -Hlun 'sport = :51820' | grep_q . || fail "server has no UDP socket on 51820"
fi

# The configured cipher (VPND_ITEST_CIPHER, default WireGuard's) is the one both ends report.
cipher="${VPND_ITEST_CIPHER:-chacha20poly1305}"
vpnd_json_ok server "doc[\"cipher\"] == \"$cipher\"" || fail "the server does not report Cipher $cipher: $(vpnd_json server doc)"
vpnd_json_ok client "doc[\"cipher\"] == \"$cipher\"" || fail "the client does not report Cipher $cipher: $(vpnd_json client doc)"
# With VPND_ITEST_EXPECT_THREADS (the two-thread variant), both ends run that many packet threads.
if [ -n "${VPND_ITEST_EXPECT_THREADS:-}" ]; then
    for end in server client; do
        vpnd_json_ok "$end" "doc[\"threads\"] == $VPND_ITEST_EXPECT_THREADS" \
            || fail "the $end does not run $VPND_ITEST_EXPECT_THREADS packet threads: $(vpnd_json "$end" doc)"
    done
fi

log "ping b -> a, a -> b (tun over $transport, $cipher)"
ping_ok b 10.9.0.1 10
ping_ok a 10.9.0.2 10

log "transfers of $bytes"
start=$SECONDS
transfer_check b a 10.9.0.1 "$bytes" 150
log "b -> a took $((SECONDS - start)) s"
start=$SECONDS
transfer_check a b 10.9.0.2 "$bytes" 150
log "a -> b took $((SECONDS - start)) s"

vpnd_alive "$server_pid" "vpnd server"
vpnd_alive "$client_pid" "vpnd client"
log "tun-$transport passed"
