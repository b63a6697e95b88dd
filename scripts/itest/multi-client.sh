#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# One vpnd server, two vpnd clients (tun/UDP). Each client reaches the server; with ip_forward on in the
# server namespace, client1 and client2 reach each other through it (the server routes by AllowedIPs).
# Then client1 forges client2's inner source address: the server must drop it (source-not-allowed) and
# write nothing into its tun.
#
#   c1: 198.18.1.1 (eth0) --veth-- srv eth-1 198.18.1.254           srv: vpnd --server, 10.77.0.1/24,
#   c2: 198.18.2.1 (eth0) --veth-- srv eth-2 198.18.2.254                listens on :51820
#   c1 vpnd 10.77.0.2/24, endpoint 198.18.1.254:51820    server side: AllowedIPs c1 10.77.0.2/32
#   c2 vpnd 10.77.0.3/24, endpoint 198.18.2.254:51820                 AllowedIPs c2 10.77.0.3/32
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"

# Packets the kernel received from vpnd's tun in the server namespace (what vpnd delivered).
server_tun_rx() { in_ns srv --timeout 5 cat /sys/class/net/vpnd0/statistics/rx_packets; }

ns_create srv
ns_create c1
ns_create c2
ns_link c1 eth0 198.18.1.1/24 srv eth-1 198.18.1.254/24
ns_link c2 eth0 198.18.2.1/24 srv eth-2 198.18.2.254/24
# Forwarding between the underlay subnets is off: the only path between the clients is the tunnel.
in_ns srv --timeout 5 sysctl -qw net.ipv4.ip_forward=0

vpnd_keypair srv
vpnd_keypair c1
vpnd_keypair c2
K="$VPND_ITEST_DIR/keys"
cat >"$VPND_ITEST_DIR/srv.conf" <<EOF
[Interface]
PrivateKeyFile = $K/srv.key
Address = 10.77.0.1/24
ListenPort = 51820

[Peer]
# client1
PublicKey = $(vpnd_pub c1)
AllowedIPs = 10.77.0.2/32

[Peer]
# client2
PublicKey = $(vpnd_pub c2)
AllowedIPs = 10.77.0.3/32
EOF
for c in 1 2; do
    cat >"$VPND_ITEST_DIR/c$c.conf" <<EOF
[Interface]
PrivateKeyFile = $K/c$c.key
Address = 10.77.0.$((c + 1))/24

[Peer]
PublicKey = $(vpnd_pub srv)
AllowedIPs = 10.77.0.0/24
Endpoint = 198.18.$c.254:51820
PersistentKeepalive = 25
EOF
done

vpnd_start srv srv vpnd0 --server --config "$VPND_ITEST_DIR/srv.conf"
vpnd_start c1 c1 vpnd0 --client --config "$VPND_ITEST_DIR/c1.conf"
vpnd_start c2 c2 vpnd0 --client --config "$VPND_ITEST_DIR/c2.conf"

log "each client reaches the server"
wait_for "c1 -> server" 15 ping_ok c1 10.77.0.1 1
wait_for "c2 -> server" 15 ping_ok c2 10.77.0.1 1
ping_ok srv 10.77.0.2 5
ping_ok srv 10.77.0.3 5

log "without ip_forward in the server, client1 cannot reach client2"
if ping_ok c1 10.77.0.3 2 2>/dev/null; then fail "c1 reached c2 with forwarding off in the server"; fi

log "with ip_forward in the server, the clients reach each other through it"
in_ns srv --timeout 5 sysctl -qw net.ipv4.ip_forward=1
wait_for "c1 -> c2 via the server" 10 ping_ok c1 10.77.0.3 1
ping_ok c2 10.77.0.2 5
transfer_check c1 c2 10.77.0.3 5M 60
transfer_check c2 c1 10.77.0.2 5M 60

log "client1 forges client2's source address: the server drops it"
before_drops="$(vpnd_drops srv source-not-allowed)"
before_rx="$(server_tun_rx)"
in_ns c1 --timeout 5 ip addr add 10.77.0.3/32 dev vpnd0
if in_ns c1 --timeout 10 ping -n -q -c 5 -i 0.2 -W 1 -I 10.77.0.3 10.77.0.1 >/dev/null 2>&1; then
    fail "a ping from c1 with c2's source address 10.77.0.3 was answered"
fi
after_drops="$(vpnd_drops srv source-not-allowed)"
after_rx="$(server_tun_rx)"
log "server: source-not-allowed $before_drops -> $after_drops, tun rx packets $before_rx -> $after_rx"
[ "$after_drops" -eq $((before_drops + 5)) ] \
    || fail "server dropped $((after_drops - before_drops)) forged packets as source-not-allowed, expected 5 (one per ping)"
[ "$after_rx" -eq "$before_rx" ] || fail "forged packets reached the server's tun ($before_rx -> $after_rx)"

log "client1's own address still works"
in_ns c1 --timeout 5 ip addr del 10.77.0.3/32 dev vpnd0
ping_ok c1 10.77.0.1 5
log "multi-client passed"
