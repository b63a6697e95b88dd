#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# KillSwitch and AllowLAN, and `vpnd down`. The client has two ways to net: the tunnel (its
# AllowedIPs hold 203.0.113.0/24, a route more specific than its default) and a bypass veth that
# its default route uses (192.0.2.1 on net is reachable only that way; 198.51.100.0/24 is the
# bypass's directly connected subnet). The server forwards (sysctl set by this script: forward.sh
# tests Forward). A TCP listener on each of net's addresses prints who connects.
#  1. KillSwitch = on: 203.0.113.1 answers through the tunnel (net sees 10.9.0.2); the bypass and
#     the connected subnet do not (ping and TCP); `vpnd down` is refused while vpnd runs.
#  2. Server stopped: still nothing through the bypass, and the kill switch counted the drops;
#     the server back: through the tunnel again.
#  3. Clean stop: the table is gone, the bypass works.
#  4. AllowLAN = on: the connected subnet works, the bypass to 192.0.2.1 still does not.
#  5. KillSwitch = persistent: after kill -9 the bypass stays blocked; a restart replaces the
#     table and the tunnel works; a clean stop keeps it; `vpnd down vpn0` removes it (the bypass
#     works), a second `vpnd down` has nothing to remove (exit 0 both).
#  6. Transport = tcp, kill switch on both ends: the tunnel works; the server's own traffic to net
#     is blocked while what it forwards from the tunnel is not (the kill switch is about output).
#  Through all of it the root namespace's ruleset, routes, rules, forwarding and resolv.conf stay
#  byte for byte the same. Takes about a minute.
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"
source "$VPND_REPO/scripts/lib/firewall.sh"

fw_host_snapshot "$VPND_ITEST_DIR/host"
fw_topology
fw_bypass
in_ns server --timeout 5 sysctl -qw net.ipv4.ip_forward=1
timeout 10 ip -n "$(ns net)" route add 10.9.0.0/24 via "$FW_SERVER_NET"
fw_listen net internet "$FW_INTERNET" 8080
fw_listen net net "$FW_NET" 8080
fw_listen net lan "$FW_LAN_PEER" 8080
on_failure_show ip netns exec "$(ns client)" nft list ruleset
on_failure_show ip netns exec "$(ns client)" ip route

vpnd_keypair server
vpnd_keypair client
vpnd_config server --key server --peer client --address 10.9.0.1/24 --port 51820 --allowed 10.9.0.2/32 --ifname vpn0
vpnd_config client --key client --peer server --address 10.9.0.2/24 --allowed "10.9.0.1/32, 203.0.113.0/24" \
    --endpoint "$UNDERLAY_B:51820" --ifname vpn0
server_conf="$(vpnd_conf_file server)"
client_conf="$(vpnd_conf_file client)"

log "0. without vpnd: the bypass reaches net"
fw_expect_open client "$FW_INTERNET" 8080 "before vpnd"
fw_expect_open client "$FW_LAN_PEER" 8080 "before vpnd"

log "1. KillSwitch = on"
fw_conf_set client KillSwitch on
vpnd_start server server vpn0 --server --config "$server_conf"
server_pid=$VPND_PID
# Its own WireGuard socket directory: the server, started first, holds /var/run/wireguard/vpn0.sock.
WG_DIR="$VPND_ITEST_DIR/wg-client"
mkdir -p -m 700 "$WG_DIR"
VPND_EXTRA_ENV="VPND_WG_SOCKET_DIR=$WG_DIR" vpnd_start client client vpn0 --client --config "$client_conf"
client_pid=$VPND_PID
wait_for "ping client -> server through the tunnel" 15 ping_ok client 10.9.0.1 1
fw_tables client | grep_q -x "inet vpnd-vpn0" || fail "no table inet vpnd-vpn0 in the client: $(fw_tables client)"
fw_expect_open client "$FW_NET" 8080 "203.0.113.1 through the tunnel"
seen="$(fw_seen_as client "$FW_NET" 8080 net)" || fail "no TCP connection to net through the tunnel"
[ "$seen" = 10.9.0.2 ] || fail "net saw $seen connect, not the client's tunnel address 10.9.0.2"
fw_expect_blocked client "$FW_INTERNET" 8080 "KillSwitch = on, the bypass"
fw_expect_blocked client "$FW_LAN_PEER" 8080 "KillSwitch = on without AllowLAN, the connected subnet"
if fw_down client client vpn0; then fail "vpnd down vpn0 succeeded while vpnd runs"; fi
grep -q "is running" <<<"$FW_DOWN_OUT" || fail "vpnd down while vpnd runs does not say so"
[ "$(printf '%s\n' "$FW_DOWN_OUT" | wc -l)" -eq 1 ] || fail "vpnd down's refusal is not one line"
fw_tables client | grep_q -x "inet vpnd-vpn0" || fail "the refused vpnd down removed the table"
# A UAPI set (what wg set sends) to an endpoint the kill switch does not let out is refused (its
# packets would be dropped).
server_key="$(vpnd_json client 'peer["public_key"]')"
out="$(in_ns client --timeout 10 python3 -c '
import base64, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
key = base64.b64decode(sys.argv[2]).hex()
s.sendall(f"set=1\npublic_key={key}\nendpoint=192.0.2.77:51820\n\n".encode())
print(s.recv(4096).decode().strip())
' "$WG_DIR/vpn0.sock" "$server_key")" || fail "the UAPI exchange with the client failed"
[ "$out" != "errno=0" ] || fail "a set to an endpoint the kill switch blocks was accepted"
[ "$(vpnd_json client 'peer["endpoint"]')" = "$UNDERLAY_B:51820" ] || fail "the refused wg set changed the endpoint"
grep -q "endpoint 192.0.2.77:51820: the kill switch lets out only the endpoints vpnd started with" "$(vpnd_log_file client)" \
    || fail "no line in the client's log for the refused wg set"
log "   a UAPI set (wg set) to an endpoint the kill switch blocks: refused ($out)"

log "2. server stopped: the client cannot get out by the bypass"
kill -TERM "$server_pid"
wait "$server_pid" || fail "the server did not exit cleanly"
dropped=$(fw_dropped client vpn0)
fw_expect_blocked client "$FW_INTERNET" 8080 "server down, the bypass"
fw_expect_blocked client "$FW_NET" 8080 "server down, 203.0.113.1"
now_dropped=$(fw_dropped client vpn0)
[ "$now_dropped" -gt "$dropped" ] || fail "the kill switch's drop counter did not move ($dropped, then $now_dropped)"
log "   the kill switch dropped $((now_dropped - dropped)) packets meanwhile"
vpnd_alive "$client_pid" "the client while the server is down"
vpnd_start server server-again vpn0 --server --config "$server_conf"
server_pid=$VPND_PID
wait_for "203.0.113.1 through the tunnel after the server's restart" 20 ping_ok client "$FW_NET" 1
seen="$(fw_seen_as client "$FW_NET" 8080 net)" || fail "no TCP connection through the tunnel after the server's restart"
[ "$seen" = 10.9.0.2 ] || fail "net saw $seen after the restart, not 10.9.0.2"
fw_expect_blocked client "$FW_INTERNET" 8080 "server back, the bypass"

log "3. clean stop: no table, the bypass works"
kill -TERM "$client_pid"
wait "$client_pid" || fail "the client did not exit cleanly"
[ -z "$(fw_tables client | grep vpnd- || true)" ] || fail "tables left after a clean stop: $(fw_tables client)"
[ ! -e "$(vpnd_run_dir client)/vpn0.nftables" ] || fail "vpn0.nftables is left after a clean stop"
fw_expect_open client "$FW_INTERNET" 8080 "after a clean stop, the bypass"

log "4. AllowLAN = on"
fw_conf_set client AllowLAN on
vpnd_start client client-lan vpn0 --client --config "$client_conf"
client_pid=$VPND_PID
wait_for "ping through the tunnel" 15 ping_ok client 10.9.0.1 1
fw_expect_open client "$FW_LAN_PEER" 8080 "AllowLAN, the connected subnet 198.51.100.0/24"
fw_expect_blocked client "$FW_INTERNET" 8080 "AllowLAN, the bypass to 192.0.2.1"
fw_expect_open client "$FW_NET" 8080 "AllowLAN, 203.0.113.1 through the tunnel"
kill -TERM "$client_pid"
wait "$client_pid" || fail "the client did not exit cleanly"
fw_conf_set client AllowLAN ""

log "5. KillSwitch = persistent"
fw_conf_set client KillSwitch persistent
vpnd_start client client-persistent vpn0 --client --config "$client_conf"
client_pid=$VPND_PID
wait_for "ping through the tunnel" 15 ping_ok client 10.9.0.1 1
kill -KILL "$client_pid"
wait "$client_pid" 2>/dev/null || true
wait_for "vpn0 gone with the killed client's tun" 10 fw_link_gone client vpn0
fw_tables client | grep_q -x "inet vpnd-vpn0" || fail "kill -9 took the persistent table with it"
fw_expect_blocked client "$FW_INTERNET" 8080 "persistent, after kill -9"
vpnd_start client client-restart vpn0 --client --config "$client_conf"
client_pid=$VPND_PID
wait_for "ping through the tunnel after the restart" 15 ping_ok client 10.9.0.1 1
[ "$(fw_tables client | grep -c vpnd-)" -eq 1 ] || fail "not exactly one vpnd table after the restart: $(fw_tables client)"
fw_expect_open client "$FW_NET" 8080 "persistent, restarted, through the tunnel"
kill -TERM "$client_pid"
wait "$client_pid" || fail "the client did not exit cleanly"
fw_tables client | grep_q -x "inet vpnd-vpn0" || fail "a clean stop removed the persistent table"
[ -e "$(vpnd_run_dir client-restart)/vpn0.nftables" ] || fail "no vpn0.nftables beside the persistent table"
fw_expect_blocked client "$FW_INTERNET" 8080 "persistent, after a clean stop"
fw_down client client-restart vpn0 || fail "vpnd down vpn0 exited non-zero"
[ "$FW_DOWN_OUT" = "vpn0: removed table inet vpnd-vpn0" ] || fail "vpnd down printed: $FW_DOWN_OUT"
[ -z "$(fw_tables client | grep vpnd- || true)" ] || fail "vpnd down left $(fw_tables client)"
[ ! -e "$(vpnd_run_dir client-restart)/vpn0.nftables" ] || fail "vpnd down left vpn0.nftables"
fw_expect_open client "$FW_INTERNET" 8080 "after vpnd down, the bypass"
fw_down client client-restart vpn0 || fail "a second vpnd down vpn0 exited non-zero"
[ "$FW_DOWN_OUT" = "vpn0: nothing to remove" ] || fail "a second vpnd down printed: $FW_DOWN_OUT"
fw_down client client-restart || fail "vpnd down without a name exited non-zero"
[ "$FW_DOWN_OUT" = "nothing to remove" ] || fail "vpnd down without a name printed: $FW_DOWN_OUT"

log "6. Transport = tcp, KillSwitch = on at both ends"
fw_conf_set client KillSwitch on
fw_conf_set client Transport tcp
fw_conf_set server KillSwitch on
fw_conf_set server Transport tcp
kill -TERM "$server_pid"
wait "$server_pid" || fail "the server did not exit cleanly"
vpnd_start server server-tcp vpn0 --server --config "$server_conf"
server_pid=$VPND_PID
vpnd_start client client-tcp vpn0 --client --config "$client_conf"
client_pid=$VPND_PID
wait_for "ping through the TCP tunnel" 20 ping_ok client 10.9.0.1 1
fw_expect_open client "$FW_NET" 8080 "TCP, through the tunnel and the server's forwarding"
seen="$(fw_seen_as client "$FW_NET" 8080 net)" || fail "no TCP connection to net over the TCP tunnel"
[ "$seen" = 10.9.0.2 ] || fail "net saw $seen, not 10.9.0.2"
fw_expect_blocked client "$FW_INTERNET" 8080 "TCP, the client's bypass"
fw_expect_blocked server "$FW_NET" 8080 "TCP, the server's own traffic to net"
kill -TERM "$client_pid" "$server_pid"
wait "$client_pid" || fail "the client did not exit cleanly"
wait "$server_pid" || fail "the server did not exit cleanly"
[ -z "$( (fw_tables client; fw_tables server) | grep vpnd- || true)" ] || fail "tables left: $(fw_tables client) / $(fw_tables server)"

fw_host_unchanged "$VPND_ITEST_DIR/host"
log "kill-switch passed"
