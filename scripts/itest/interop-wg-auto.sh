#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Interop: a wireguard-go client (Debian package, UDP only) with a vpnd server on Transport = auto
# (UDP and TCP on port 51820): answered over UDP as by a plain UDP server, byte-compatible.
# Ping both ways and a checksummed transfer each way; the server's show --json names the peer's
# transport udp and counts no TCP connection.
#
#   a: vpnd --server, 10.82.0.1/24, ListenPort 51820, Transport = auto
#   b: wireguard-go client, 10.82.0.2/24, endpoint 198.18.0.1:51820
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/wg.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"
BYTES="${INTEROP_BYTES:-30M}"

ns_pair a b
vpnd_keypair srv
wg_keypair cli
vpnd_config srv --key srv --peer cli --address 10.82.0.1/24 --allowed 10.82.0.2/32 --port 51820 --transport auto
vpnd_start a srv vpnd0 --server --config "$(vpnd_conf_file srv)"
in_ns a --timeout 5 ss -Hltn 'sport = :51820' | grep_q . || fail "the auto server has no TCP listener on 51820"
WG_IF="$(unique_ifname c)"
wg_start b "$WG_IF"
wg_up b "$WG_IF" --key cli --address 10.82.0.2/24 --port 51821 --peer srv --allowed 10.82.0.0/24 \
    --endpoint "$UNDERLAY_A:51820" --keepalive 25

wait_for "b -> 10.82.0.1" 15 ping_ok b 10.82.0.1 1
ping_ok a 10.82.0.2 5
wg_handshake_done "$WG_IF" || fail "ping worked but wg shows no handshake on $WG_IF"
transfer_check b a 10.82.0.1 "$BYTES" 90
transfer_check a b 10.82.0.2 "$BYTES" 90
vpnd_json_ok srv 'peer["transport"] == "udp" and peer["handshakes"] >= 1' \
    || fail "the auto server's peer: transport $(vpnd_json srv 'peer["transport"]'), handshakes $(vpnd_json srv 'peer["handshakes"]')"
vpnd_json_ok srv 'tcp["accepted"] == 0' || fail "the auto server accepted TCP connections: $(vpnd_json srv 'tcp')"
vpnd_json_ok srv 'peer["transport_switches"] is None' || fail "a server counts no moves of its own"
log "interop-wg-auto passed"
