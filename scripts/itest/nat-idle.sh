#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# An idle client behind NAT stays reachable. The client sits behind a router namespace that
# masquerades its traffic (nftables) and forgets a UDP mapping after 5 s (nf_conntrack_udp_timeout
# and nf_conntrack_udp_timeout_stream, the latter governing flows that saw replies); the router
# refuses new connections from the server's side, as a home router does. The client has
# PersistentKeepalive = 2 and every WireGuard timer shortened (VPND_TEST_REKEY_AFTER_SECONDS=6:
# keys rejected after 9 s). After 40 s with no traffic at all, the server pings the client: its
# keepalives must have rekeyed the session (as WireGuard's do) and kept the mapping open.
#
#   a: vpnd --server 10.9.0.1 on 198.18.1.1:51820 -- hub (NAT, 5 s UDP timeouts) -- b: vpnd --client 10.9.0.2
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"
source "$VPND_REPO/scripts/lib/faults.sh"

idle="${VPND_ITEST_IDLE:-40}"
ns_routed a hub b
# The server has no route to the client's private subnet; it sees only the router's address.
timeout 10 ip -n "$(ns a)" route del default
in_ns hub --timeout 10 nft -f - <<'NFT'
table ip nat {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "eth-a" masquerade
    }
}
table ip filter {
    chain forward {
        type filter hook forward priority filter; policy accept;
        iifname "eth-a" ct state new drop
    }
}
NFT
in_ns hub --timeout 5 sysctl -qw net.netfilter.nf_conntrack_udp_timeout=5
in_ns hub --timeout 5 sysctl -qw net.netfilter.nf_conntrack_udp_timeout_stream=5
on_failure_show in_ns hub nft list ruleset

fault_configs "$UNDERLAY_A:51820" udp --keepalive 2
VPND_EXTRA_ENV="VPND_TEST_REKEY_AFTER_SECONDS=6"
vpnd_start a server vpn0 --server --config "$(vpnd_conf_file server)"
server_pid=$VPND_PID
vpnd_start b client vpn0 --client --config "$(vpnd_conf_file client)"
client_pid=$VPND_PID
VPND_EXTRA_ENV=""
wait_for "ping b -> a" 15 ping_ok b 10.9.0.1 1
endpoint="$(vpnd_json server 'peer["endpoint"]')"
[[ "$endpoint" == "$HUB_A:"* ]] || fail "the server sees the client at $endpoint, expected the router's $HUB_A:*"
log "client is behind NAT: the server sees it at $endpoint; now $idle s without traffic"

sleep "$idle"
# Read before the ping below, which would start a handshake if the session had lapsed: seconds, or null.
handshake_age="$(vpnd_json client 'peer["latest_handshake_seconds_ago"]')"
log "after $idle idle seconds: the client's latest handshake was $handshake_age s ago (keys rejected after 9 s)"
ping_ok a 10.9.0.2 5 || fail "the server cannot reach the idle client after $idle s (latest handshake $handshake_age s ago; the NAT mapping lapsed)"
awk -v age="$handshake_age" 'BEGIN { exit !(age != "null" && age < 9) }' \
    || fail "the idle client's session was not rekeyed by its keepalives (latest handshake $handshake_age s ago)"
transfer_check a b 10.9.0.2 2M 30 || fail "a transfer from the server to the idle client failed"
vpnd_alive "$server_pid" "vpnd server"
vpnd_alive "$client_pid" "vpnd client"
log "nat-idle passed"
