#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Interop: a vpnd client (tun/UDP) with a wireguard-go server (Debian package, configured with wg set).
# Ping both ways, then a checksummed transfer each way.
#
#   a: wireguard-go server, 10.80.0.1/24, listens on 198.18.0.1:51820 (key made with wg genkey)
#   b: vpnd --client, 10.80.0.2/24, Endpoint 198.18.0.1:51820 (key made with vpnd-keygen)
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/wg.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"
BYTES="${INTEROP_BYTES:-100M}"

ns_pair a b
wg_keypair srv
vpnd_keypair cli
WG_IF="$(unique_ifname s)"
wg_start a "$WG_IF"
wg_up a "$WG_IF" --key srv --address 10.80.0.1/24 --port 51820 --peer cli --allowed 10.80.0.2/32
vpnd_config cli --key cli --peer srv --address 10.80.0.2/24 --allowed 10.80.0.0/24 \
    --endpoint "$UNDERLAY_A:51820" --keepalive 25
vpnd_start b cli vpnd0 --client --config "$(vpnd_conf_file cli)"

log "ping vpnd client -> wireguard-go server, and back"
wait_for "b -> 10.80.0.1" 15 ping_ok b 10.80.0.1 1
ping_ok a 10.80.0.2 5
wg_handshake_done "$WG_IF" || fail "ping worked but wg shows no handshake on $WG_IF"

log "transfers ($BYTES each way)"
transfer_check b a 10.80.0.1 "$BYTES" 90
transfer_check a b 10.80.0.2 "$BYTES" 90
vpnd_show cli vpnd0 | sed -n 's/^ *\(latest handshake\|transfer\): /vpnd client: \1: /p'
log "interop-wg-server passed"
