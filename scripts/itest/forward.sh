#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Forward and Masquerade on the server, and what vpnd down does after a crash. The client's
# AllowedIPs hold 203.0.113.0/24 (net, behind the server); net has no route back to the tunnel's
# 10.9.0.0/24, so only the server's masquerade brings the replies back. The server's namespace
# has a firewall of its own (table inet hostfw: forward policy drop, the tunnel accepted), which
# vpnd must warn about and leave alone. Both forwarding sysctls start at 0 (the tunnel carries
# IPv6 too, so IPv6 forwarding is vpnd's as well).
#  1. Running: both forwarding sysctls 1, their earlier values in the run directory
#     (vpn0.forwarding); ping and TCP from the client reach net, which sees 203.0.113.254 (the
#     server's address on net) as the source, never 10.9.0.2 (net's own nft counters and a
#     listener that prints the peer); the server logs that hostfw's forward chain drops.
#  2. Clean stop: the sysctls are back to 0, no record, no vpnd table (nor its note,
#     vpn0.nftables); hostfw byte for byte.
#  3. kill -9: sysctls left at 1, record and table left; `vpnd down vpn0` removes the table and
#     restores both (and says so), exit 0.
#  4. kill -9, then a restart: it takes the earlier values from the record, so a clean stop
#     restores 0, not the 1 the crashed one left.
#  5. kill -9, then a start without Forward and Masquerade: the leftovers are removed at start.
#  6. The server as User = nobody (CAP_NET_ADMIN kept) with the kill switch too: at its clean stop
#     the sysctls, the table and the record go all the same.
#  The root namespace's ruleset, routes, rules, forwarding and resolv.conf stay byte for byte.
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"
source "$VPND_REPO/scripts/lib/firewall.sh"

fw_host_snapshot "$VPND_ITEST_DIR/host"
fw_topology
in_ns server --timeout 5 sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0
in_ns server --timeout 5 nft -f - <<'NFT'
table inet hostfw {
    chain forward {
        type filter hook forward priority filter; policy drop;
        iifname "vpn0" accept
        oifname "vpn0" ct state established,related accept
    }
}
NFT
hostfw_before="$(in_ns server --timeout 5 nft list table inet hostfw)"
# net counts what arrives from where: masqueraded (the server's address) or not (the tunnel's).
in_ns net --timeout 5 nft -f - <<NFT
table inet watch {
    chain input {
        type filter hook input priority filter; policy accept;
        ip saddr $FW_SERVER_NET icmp type echo-request counter
        ip saddr 10.9.0.0/24 counter
    }
}
NFT
fw_listen net net "$FW_NET" 8080
on_failure_show ip netns exec "$(ns server)" nft list ruleset
on_failure_show ip netns exec "$(ns server)" sysctl net.ipv4.ip_forward net.ipv6.conf.all.forwarding

vpnd_keypair server
vpnd_keypair client
vpnd_config server --key server --peer client --address "10.9.0.1/24, fd09::1/64" --port 51820 \
    --allowed "10.9.0.2/32, fd09::2/128" --ifname vpn0
vpnd_config client --key client --peer server --address "10.9.0.2/24, fd09::2/64" \
    --allowed "10.9.0.1/32, fd09::1/128, 203.0.113.0/24" --endpoint "$UNDERLAY_B:51820" --ifname vpn0
fw_conf_set server Forward on
fw_conf_set server Masquerade eth1
server_conf="$(vpnd_conf_file server)"
record="$(vpnd_run_dir server)/vpn0.forwarding"
marker="$(vpnd_run_dir server)/vpn0.nftables"

forwarding() { in_ns server --timeout 5 cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv6/conf/all/forwarding | tr '\n' ' '; }
expect_forwarding() { [ "$(forwarding)" = "$1 " ] || fail "$2: forwarding sysctls are $(forwarding), expected $1"; }
no_vpnd_table() { [ -z "$(fw_tables server | grep vpnd- || true)" ] || fail "$1: tables left: $(fw_tables server)"; }
# Counter N (1: masqueraded pings, 2: anything from the tunnel's addresses) of net's watch table.
watch_counter() { in_ns net --timeout 5 nft list chain inet watch input | sed -n 's/.*counter packets \([0-9]*\).*/\1/p' | sed -n "$1p"; }

expect_forwarding "0 0" "before vpnd"

log "1. Forward = on, Masquerade = eth1"
vpnd_start server server vpn0 --server --config "$server_conf"
server_pid=$VPND_PID
vpnd_start client client vpn0 --client --config "$(vpnd_conf_file client)"
client_pid=$VPND_PID
wait_for "ping client -> server through the tunnel" 15 ping_ok client 10.9.0.1 1
expect_forwarding "1 1" "while vpnd runs"
[ "$(cat "$record")" = "$(printf 'net.ipv4.ip_forward=0\nnet.ipv6.conf.all.forwarding=0')" ] \
    || fail "the forwarding record holds: $(cat "$record")"
ping_ok client "$FW_NET" 5 || fail "no ping reply from net through the tunnel and the masquerade"
seen="$(fw_seen_as client "$FW_NET" 8080 net)" || fail "no TCP connection to net through the tunnel and the masquerade"
[ "$seen" = "$FW_SERVER_NET" ] || fail "net saw $seen connect, not the server's $FW_SERVER_NET"
[ "$(watch_counter 1)" -ge 1 ] || fail "net counted no echo request from $FW_SERVER_NET"
[ "$(watch_counter 2)" -eq 0 ] || fail "net received $(watch_counter 2) packets from the tunnel's own addresses (not masqueraded)"
log "   net saw the client as $seen; $(watch_counter 1) echo requests from $FW_SERVER_NET, none from 10.9.0.0/24"
grep -q 'chain inet hostfw forward drops forwarded packets by default; accept the tunnel.s there (iifname "vpn0" accept' "$(vpnd_log_file server)" \
    || fail "the server did not warn about hostfw's forward chain"

log "2. clean stop"
kill -TERM "$server_pid"
wait "$server_pid" || fail "the server did not exit cleanly"
expect_forwarding "0 0" "after a clean stop"
[ ! -e "$record" ] || fail "the forwarding record is left after a clean stop"
[ ! -e "$marker" ] || fail "vpn0.nftables is left after a clean stop"
no_vpnd_table "after a clean stop"
[ "$(in_ns server --timeout 5 nft list table inet hostfw)" = "$hostfw_before" ] || fail "table inet hostfw changed"

log "3. kill -9, then vpnd down"
vpnd_start server server vpn0 --server --config "$server_conf"
kill -KILL "$VPND_PID"
wait "$VPND_PID" 2>/dev/null || true
expect_forwarding "1 1" "after kill -9"
[ -e "$record" ] || fail "no forwarding record after kill -9"
[ -e "$marker" ] || fail "no vpn0.nftables after kill -9"
fw_tables server | grep_q -x "inet vpnd-vpn0" || fail "no table left after kill -9"
fw_down server server vpn0 || fail "vpnd down vpn0 exited non-zero"
[ "$FW_DOWN_OUT" = "vpn0: removed table inet vpnd-vpn0
vpn0: restored net.ipv4.ip_forward=0, net.ipv6.conf.all.forwarding=0 (from $record)" ] || fail "vpnd down printed: $FW_DOWN_OUT"
expect_forwarding "0 0" "after vpnd down"
[ ! -e "$record" ] || fail "vpnd down left the forwarding record"
[ ! -e "$marker" ] || fail "vpnd down left vpn0.nftables"
no_vpnd_table "after vpnd down"

log "4. kill -9, then a restart: the earlier values come from the record"
vpnd_start server server vpn0 --server --config "$server_conf"
kill -KILL "$VPND_PID"
wait "$VPND_PID" 2>/dev/null || true
expect_forwarding "1 1" "after the second kill -9"
vpnd_start server server vpn0 --server --config "$server_conf"
server_pid=$VPND_PID
wait_for "net through the restarted server" 20 tcp_ok client "$FW_NET" 8080
seen="$(fw_seen_as client "$FW_NET" 8080 net)" || fail "no TCP connection to net after the restart"
[ "$seen" = "$FW_SERVER_NET" ] || fail "net saw $seen after the restart"
kill -TERM "$server_pid"
wait "$server_pid" || fail "the restarted server did not exit cleanly"
expect_forwarding "0 0" "after the restarted server's clean stop"
no_vpnd_table "after the restarted server's clean stop"

log "5. kill -9, then a start without Forward and Masquerade"
vpnd_start server server vpn0 --server --config "$server_conf"
kill -KILL "$VPND_PID"
wait "$VPND_PID" 2>/dev/null || true
fw_conf_set server Masquerade ""
fw_conf_set server Forward ""
vpnd_start server server vpn0 --server --config "$server_conf"
server_pid=$VPND_PID
expect_forwarding "0 0" "a start without Forward after a crash"
[ ! -e "$record" ] || fail "the forwarding record is left after a start without Forward"
[ ! -e "$marker" ] || fail "vpn0.nftables is left after a start without Masquerade"
no_vpnd_table "a start without Masquerade after a crash"
kill -TERM "$server_pid"
wait "$server_pid" || fail "the server did not exit cleanly"

log "6. User = nobody (CAP_NET_ADMIN kept): the undo at stop works without root"
fw_conf_set server Forward on
fw_conf_set server Masquerade eth1
fw_conf_set server KillSwitch on
fw_conf_set server User nobody
chmod 711 "$VPND_ITEST_DIR"  # nobody reaches its run directory (vpnd hands a 0700 one over), and nothing else
mkdir -m 700 "$(vpnd_run_dir server-nobody)"
# The endpoint memory too, so the server handshakes with the client at once.
cp "$(vpnd_run_dir server)/vpn0.endpoints" "$(vpnd_run_dir server-nobody)/"
vpnd_start server server-nobody vpn0 --server --config "$server_conf"
server_pid=$VPND_PID
[ "$(awk '/^Uid:/ { print $3 }' "/proc/$server_pid/status")" = "$(id -u nobody)" ] || fail "the server did not switch to nobody"
wait_for "net through the server running as nobody" 30 tcp_ok client "$FW_NET" 8080
expect_forwarding "1 1" "as nobody"
kill -TERM "$server_pid"
wait "$server_pid" || fail "the server running as nobody did not exit cleanly"
expect_forwarding "0 0" "after the clean stop of the server running as nobody"
no_vpnd_table "after the clean stop of the server running as nobody"
[ ! -e "$(vpnd_run_dir server-nobody)/vpn0.forwarding" ] || fail "the forwarding record is left by the server running as nobody"
[ ! -e "$(vpnd_run_dir server-nobody)/vpn0.nftables" ] || fail "vpn0.nftables is left by the server running as nobody"
kill -TERM "$client_pid"
wait "$client_pid" || fail "the client did not exit cleanly"

[ "$(in_ns server --timeout 5 nft list table inet hostfw)" = "$hostfw_before" ] || fail "table inet hostfw changed"
fw_host_unchanged "$VPND_ITEST_DIR/host"
log "forward passed"
