#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Interop: a wireguard-go client (Debian package, configured with wg set) with a vpnd server (tun/UDP).
# Ping both ways, then a checksummed transfer each way.
#
#   a: vpnd --server, 10.81.0.1/24, ListenPort 51820 (key made with vpnd-keygen)
#   b: wireguard-go client, 10.81.0.2/24, endpoint 198.18.0.1:51820 (key made with wg genkey)
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/wg.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"
BYTES="${INTEROP_BYTES:-100M}"

ns_pair a b
vpnd_keypair srv
wg_keypair cli
vpnd_config srv --key srv --peer cli --address 10.81.0.1/24 --allowed 10.81.0.2/32 --port 51820
vpnd_start a srv vpnd0 --server --config "$(vpnd_conf_file srv)"
WG_IF="$(unique_ifname c)"
wg_start b "$WG_IF"
wg_up b "$WG_IF" --key cli --address 10.81.0.2/24 --port 51821 --peer srv --allowed 10.81.0.0/24 \
    --endpoint "$UNDERLAY_A:51820" --keepalive 25

log "ping wireguard-go client -> vpnd server, and back"
wait_for "b -> 10.81.0.1" 15 ping_ok b 10.81.0.1 1
ping_ok a 10.81.0.2 5
wg_handshake_done "$WG_IF" || fail "ping worked but wg shows no handshake on $WG_IF"

log "transfers ($BYTES each way)"
transfer_check b a 10.81.0.1 "$BYTES" 90
transfer_check a b 10.81.0.2 "$BYTES" 90
vpnd_show srv vpnd0 | sed -n 's/^ *\(endpoint\|latest handshake\|transfer\): /vpnd server: \1: /p'
log "interop-wg-client passed"
