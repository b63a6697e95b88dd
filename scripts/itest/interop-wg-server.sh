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
# wireguard-go drops vpnd's path probes (type 5) unread: vpnd marks the peer as one that does not
# answer them, keeps the full MTU on this clean path, and the session is untouched.
probe_state() { vpnd_json cli '{k: peer[k] for k in ("echoes_probes", "path_mtu")}'; }
wait_for "vpnd to see that wireguard-go does not echo probes" 10 vpnd_json_ok cli 'peer["echoes_probes"] is False' \
    || fail "vpnd's view of wireguard-go's probe echoes after 10 s: $(probe_state) (expected false, 1420)"
vpnd_json_ok cli 'peer["path_mtu"] == 1420' || fail "path MTU towards wireguard-go on a clean path: $(probe_state), expected 1420"
ping_ok b 10.80.0.1 5
log "vpnd client: wireguard-go does not answer path probes; path mtu stays 1420"
log "interop-wg-server passed"
