#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vpnd tap with `Bridge = br0`: the server's tap joins a Linux bridge that also holds a veth to a third
# namespace (lan), so the client and lan share one Ethernet segment across the tunnel: ARP resolves
# lan's MAC in the client, pings and a checksummed transfer cross it both ways.
#
#   cli: eth0 198.18.0.2 --veth-- srv eth0 198.18.0.1
#   cli: vpnd tap vpnd0 10.78.0.2/24, endpoint 198.18.0.1:51820
#   srv: vpnd tap vpnd0 (no address), ListenPort 51820, Bridge = br0
#   srv: br0 = { vpnd0, lan0 }   lan0 --veth-- lan eth0 10.78.0.3/24
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"

ns_pair srv cli
ns_create lan
timeout 10 ip -n "$(ns srv)" link add br0 type bridge forward_delay 0 stp_state 0
timeout 10 ip -n "$(ns srv)" link set br0 up
ns_link srv lan0 - lan eth0 10.78.0.3/24
timeout 10 ip -n "$(ns srv)" link set lan0 master br0
# The bridge's MTU is its smallest port's: keep lan's frames within the tap's MTU.
timeout 10 ip -n "$(ns lan)" link set eth0 mtu 1420
on_failure_show ip -n "$(ns srv)" -d link show master br0
on_failure_show ip -n "$(ns cli)" neigh

vpnd_keypair srv
vpnd_keypair cli
K="$VPND_ITEST_DIR/keys"
cat >"$VPND_ITEST_DIR/srv.conf" <<EOF
[Interface]
PrivateKeyFile = $K/srv.key
ListenPort = 51820
Mode = tap
Bridge = br0

[Peer]
PublicKey = $(vpnd_pub cli)
EOF
cat >"$VPND_ITEST_DIR/cli.conf" <<EOF
[Interface]
PrivateKeyFile = $K/cli.key
Address = 10.78.0.2/24
Mode = tap

[Peer]
PublicKey = $(vpnd_pub srv)
Endpoint = $UNDERLAY_A:51820
PersistentKeepalive = 25
EOF

vpnd_start srv srv vpnd0 --server --config "$VPND_ITEST_DIR/srv.conf"
vpnd_start cli cli vpnd0 --client --config "$VPND_ITEST_DIR/cli.conf"

master="$(ip -n "$(ns srv)" -o link show vpnd0 | sed -n 's/.* master \([^ ]*\) .*/\1/p')"
[ "$master" = br0 ] || fail "the server's tap vpnd0 did not join br0 (master: '${master:-none}')"
log "server's vpnd0 is a port of br0"

log "client -> lan over L2"
wait_for "cli -> lan 10.78.0.3" 15 ping_ok cli 10.78.0.3 1
lan_mac="$(in_ns lan --timeout 5 cat /sys/class/net/eth0/address)"
cli_mac="$(in_ns cli --timeout 5 cat /sys/class/net/vpnd0/address)"
neigh="$(in_ns cli --timeout 5 ip neigh show 10.78.0.3 dev vpnd0)"
case "$neigh" in
    *"lladdr $lan_mac "*) log "client's ARP entry: $neigh" ;;
    *) fail "client's neighbour entry for 10.78.0.3 is '$neigh', expected lladdr $lan_mac" ;;
esac
ping_ok lan 10.78.0.2 5
neigh="$(in_ns lan --timeout 5 ip neigh show 10.78.0.2 dev eth0)"
case "$neigh" in
    *"lladdr $cli_mac "*) log "lan's ARP entry: $neigh" ;;
    *) fail "lan's neighbour entry for 10.78.0.2 is '$neigh', expected lladdr $cli_mac" ;;
esac
# The bridge learned the client's MAC behind the tap (learning follows the frames; once in a full
# run the entry was not listed yet right after the pings, so give it a few seconds).
fdb_has_client() { timeout 5 bridge -n "$(ns srv)" fdb show br br0 dev vpnd0 | grep_q -i "^$cli_mac "; }
wait_for "br0 to list the client's MAC on vpnd0" 5 fdb_has_client \
    || fail "br0 has no forwarding entry for the client's MAC $cli_mac on vpnd0"

log "transfers"
transfer_check cli lan 10.78.0.3 20M 60
transfer_check lan cli 10.78.0.2 20M 60
log "tap-bridge passed"
