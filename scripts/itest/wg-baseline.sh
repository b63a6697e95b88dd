#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# wireguard-go <-> wireguard-go over one veth: ping both ways and a 20 MB checksummed transfer each
# direction. Proves the harness; the template for vpnd scenarios (see README.md next to it).
#
#   a: wireguard-go, 10.9.0.1/24, listens on 198.18.0.1:51820
#   b: wireguard-go, 10.9.0.2/24, endpoint 198.18.0.1:51820
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/wg.sh"

ns_pair a b
log "namespaces $(ns a) $(ns b) joined: $UNDERLAY_A <-> $UNDERLAY_B"

wg_keypair a
wg_keypair b
WG_A="$(unique_ifname a)"
WG_B="$(unique_ifname b)"
wg_start a "$WG_A"
wg_start b "$WG_B"
wg_up a "$WG_A" --key a --address 10.9.0.1/24 --port 51820 --peer b --allowed 10.9.0.2/32
wg_up b "$WG_B" --key b --address 10.9.0.2/24 --port 51821 --peer a --allowed 10.9.0.1/32 \
    --endpoint "$UNDERLAY_A:51820" --keepalive 25

log "ping b -> a, a -> b"
ping_ok b 10.9.0.1 10
ping_ok a 10.9.0.2 10
wg_handshake_done "$WG_B" || fail "ping worked but wg shows no handshake on $WG_B"

log "transfers"
transfer_check b a 10.9.0.1 20M 60
transfer_check a b 10.9.0.2 20M 60
log "wg-baseline passed"
