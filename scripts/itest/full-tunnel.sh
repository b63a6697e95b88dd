#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Full tunnel, as wg-quick does it: a client with AllowedIPs = 0.0.0.0/0 (Table = auto) sends
# everything through the server, over UDP (as root) and over TCP (as User = nobody, which keeps
# CAP_NET_ADMIN to remove its rules). Each run proves:
# - the client reaches net (203.0.113.2) through the tunnel: a TTL-1 ping expires at the server's
#   tunnel address 10.8.0.1, and net counts the echo requests from the client's tunnel address;
# - the underlay keeps working: the server's endpoint 198.51.100.1 is reachable only by the
#   client's default route, so an unmarked packet to it would enter the tunnel (`ip route get`
#   says so) while vpnd's marked ones (`mark 0xca6c`) leave by eth0; the session holds that
#   endpoint and carries a checksummed transfer;
# - IPv6 does not leak: with only 0.0.0.0/0 routed, an IPv6 ping to net (which the client reaches
#   over its IPv6 default route outside the tunnel) fails at once, while its on-link IPv6 LAN still
#   answers; after stop it works again;
# - `ip rule` and `ip route show table all` (IPv4 and IPv6) in the client are exactly as before
#   after a clean stop, and after kill -9 (rules and the marker file stay), restart (one info
#   line: what the marker listed is removed) and stop;
# - `wg show fwmark` reports the mark and `wg set fwmark` to another one is refused;
# - tables ip and ip6 vpnd-IF (wg-quick's conntrack marks and anti-spoofing rule) exist while up,
#   once each after a crash and restart, and not after stop.
# Strict rp_filter (1) on the client: the session and a transfer still work (the restored mark);
# after kill -9, `vpnd down` removes the rules, routes and conntrack tables.
# Then: Table = 1234 puts the routes (0.0.0.0/0 too) in table 1234 and adds no rule; Table = off
# and FwMark = 0x99 add no route and no rule, and mark the socket; a full tunnel with User = and
# KeepNetAdmin = no, and a Table name no rt_tables file has, are refused with one line each and
# leave nothing. With /proc/sys read-only (systemd's ProtectKernelTunables) the full tunnel works,
# src_valid_mark unset with one info line. A damaged marker file stops the start with one line;
# one owned by another user is ignored (its rules stay) and removed.
#
#   client: eth0 10.0.0.2/24 fd00:1::2/64, default via 10.0.0.1 and fd00:1::1; tunnel 10.8.0.2/24
#   server: eth0 10.0.0.1/24 fd00:1::1/64, lo 198.51.100.1 (the Endpoint, and the source of what it
#           sends to the client); eth1 203.0.113.1/24 2001:db8:113::1/64; forwards IPv4 and IPv6;
#           tunnel 10.8.0.1/24
#   net:    eth0 203.0.113.2/24 2001:db8:113::2/64, default via the server (so the tunnel subnet
#           routes back without NAT)
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"

nobody_uid="$(id -u nobody)" || fail "this host has no user nobody"
SIF="$(unique_ifname s)"
CIF="$(unique_ifname c)"
track_socket "/var/run/wireguard/$SIF.sock"
track_socket "/var/run/wireguard/$CIF.sock"
ENDPOINT=198.51.100.1
NET4=203.0.113.2
NET6=2001:db8:113::2

ns_create client
ns_create server
ns_create net
ns_link client eth0 10.0.0.2/24 server eth0 10.0.0.1/24
ns_link server eth1 203.0.113.1/24 net eth0 203.0.113.2/24
ip -n "$(ns client)" addr add fd00:1::2/64 dev eth0 nodad
ip -n "$(ns server)" addr add fd00:1::1/64 dev eth0 nodad
ip -n "$(ns server)" addr add 2001:db8:113::1/64 dev eth1 nodad
ip -n "$(ns net)" addr add 2001:db8:113::2/64 dev eth0 nodad
ip -n "$(ns server)" addr add $ENDPOINT/32 dev lo
# The server answers the client from its endpoint address (vpnd has no sticky source address).
ip -n "$(ns server)" route replace 10.0.0.0/24 dev eth0 proto kernel scope link src $ENDPOINT
in_ns server --timeout 5 sysctl -qw net.ipv4.ip_forward=1
in_ns server --timeout 5 sysctl -qw net.ipv6.conf.all.forwarding=1
ip -n "$(ns client)" route add default via 10.0.0.1
ip -n "$(ns client)" -6 route add default via fd00:1::1
ip -n "$(ns net)" route add default via 203.0.113.1
ip -n "$(ns net)" -6 route add default via 2001:db8:113::1
# net counts the echo requests it gets, by source.
in_ns net --timeout 5 nft -f - <<'EOF'
table inet seen {
    chain input {
        type filter hook input priority 0; policy accept;
        ip saddr 10.8.0.2 icmp type echo-request counter
        ip saddr 10.0.0.2 icmp type echo-request counter
    }
}
EOF
# Echo requests net counted from SOURCE:   seen SOURCE
seen() { in_ns net --timeout 5 nft list table inet seen | sed -n "s/.*ip saddr $1 .*counter packets \([0-9]*\).*/\1/p"; }

on_failure_show ip -n "$(ns client)" -4 rule show
on_failure_show ip -n "$(ns client)" -6 rule show
on_failure_show ip -n "$(ns client)" -4 route show table all
on_failure_show ip -n "$(ns client)" -6 route show table 51820

# Everything the routing of the client holds: its rules and every table, both families.
client_state() {
    for family in -4 -6; do
        in_ns client --timeout 5 ip $family rule show
        in_ns client --timeout 5 ip $family route show table all
    done
}
ping6_fails() { ! in_ns client --timeout 5 ping -6 -n -c 1 -W 2 "$1" >/dev/null 2>&1; }
# The source of the ICMP error that a TTL-1 ping to net gets.
first_hop() { in_ns client --timeout 5 ping -n -c 1 -t 1 -W 2 $NET4 2>&1 | sed -n 's/^From \([0-9.]*\).*/\1/p' | head -n 1; }

# Underlay reachable before any tunnel, IPv4 and IPv6; the first hop is the server's underlay.
ping_ok client $NET4 5
in_ns client --timeout 5 ping -6 -n -c 1 -W 3 $NET6 >/dev/null || fail "no IPv6 path from client to net before the tunnel"
[ "$(first_hop)" = "$ENDPOINT" ] || fail "the first hop without the tunnel is $(first_hop), not the server's underlay $ENDPOINT"
baseline="$(client_state)"
grep -q '^32766:' <<<"$baseline" || fail "no rules in the baseline: $baseline"

vpnd_keypair server
vpnd_keypair client
chmod 711 "$VPND_ITEST_DIR"

stop_daemon() { # PID WHAT
    kill -TERM "$1"
    timeout 10 tail --pid="$1" -f /dev/null || fail "$2 did not exit within 10 s of SIGTERM"
    local rc=0
    wait "$1" || rc=$?
    [ "$rc" = 0 ] || fail "$2 exited with status $rc after SIGTERM"
}
same_as_baseline() { # WHEN
    local now
    now="$(client_state)"
    [ "$now" = "$baseline" ] || fail "$1: the client's rules and routes differ from before: $(diff <(printf '%s\n' "$baseline") <(printf '%s\n' "$now") | head -n 20)"
}

# One full-tunnel run:   full_tunnel TRANSPORT [USER]
full_tunnel() {
    local transport="$1" user="${2:-}" tag="$1" marker before after
    vpnd_config "server-$tag" --key server --peer client --address 10.8.0.1/24 --port 51820 --allowed 10.8.0.2/32 \
        --transport "$transport" --ifname "$SIF"
    vpnd_config "client-$tag" --key client --peer server --address 10.8.0.2/24 --allowed 0.0.0.0/0 \
        --endpoint "$ENDPOINT:51820" --transport "$transport" --ifname "$CIF"
    [ -z "$user" ] || sed -i "/^\[Interface\]/a User = $user" "$(vpnd_conf_file "client-$tag")"
    mkdir -m 700 "$(vpnd_run_dir "client-$tag")"
    marker="$(vpnd_run_dir "client-$tag")/$CIF.host"
    vpnd_start server "server-$tag" "$SIF" --server --config "$(vpnd_conf_file "server-$tag")"
    local server_pid=$VPND_PID
    vpnd_start client "client-$tag" "$CIF" --client --config "$(vpnd_conf_file "client-$tag")"
    local client_pid=$VPND_PID
    wait_for "$tag: a session" 15 vpnd_json_ok "client-$tag" 'peer["has_session"]' || fail "$tag: no session through the full tunnel"
    grep -q "full tunnel: IPv4 through the tunnel by policy routing (table 51820, rules at priorities 32764 and 32765); the underlay sockets carry mark 0xca6c; IPv6 is blocked outside the tunnel" \
        "$(vpnd_log_file "client-$tag")" || fail "$tag: no full-tunnel line in the client's log"
    [ -z "$user" ] || grep -q "switched to user $user" "$(vpnd_log_file "client-$tag")" || fail "$tag: the client did not switch to $user"

    # What is installed.
    grep -qx '32764:	from all lookup main suppress_prefixlength 0' <<<"$(in_ns client --timeout 5 ip -4 rule show)" || fail "$tag: no IPv4 suppress rule"
    grep -qx '32765:	not from all fwmark 0xca6c lookup 51820' <<<"$(in_ns client --timeout 5 ip -4 rule show)" || fail "$tag: no IPv4 fwmark rule"
    grep -qx '32765:	not from all fwmark 0xca6c lookup 51820' <<<"$(in_ns client --timeout 5 ip -6 rule show)" || fail "$tag: no IPv6 fwmark rule"
    grep -q "^default dev $CIF" <<<"$(in_ns client --timeout 5 ip -4 route show table 51820)" || fail "$tag: no IPv4 default route in table 51820"
    grep -q '^unreachable default' <<<"$(in_ns client --timeout 5 ip -6 route show table 51820)" || fail "$tag: no IPv6 unreachable route in table 51820"
    [ "$(in_ns client --timeout 5 sysctl -n net.ipv4.conf.all.src_valid_mark)" = 1 ] || fail "$tag: src_valid_mark is not 1"
    [ "$(stat -c %a "$marker")" = 600 ] || fail "$tag: the marker $marker is not mode 600"
    grep -q "dev $CIF" <<<"$(in_ns client --timeout 5 ip route get $ENDPOINT)" || fail "$tag: an unmarked packet to the endpoint would not enter the tunnel: $(in_ns client ip route get $ENDPOINT)"
    grep -q "via 10.0.0.1 dev eth0" <<<"$(in_ns client --timeout 5 ip route get $ENDPOINT mark 0xca6c)" || fail "$tag: a marked packet to the endpoint does not leave by eth0"
    [ "$(in_ns client --timeout 5 wg show "$CIF" fwmark)" = 0xca6c ] || fail "$tag: wg show fwmark says $(in_ns client wg show "$CIF" fwmark)"
    if in_ns client --timeout 10 wg set "$CIF" fwmark 1234 2>/dev/null; then fail "$tag: wg set fwmark 1234 was accepted under a full tunnel"; fi
    [ "$(in_ns client --timeout 5 wg show "$CIF" fwmark)" = 0xca6c ] || fail "$tag: the refused fwmark changed the mark"

    # Through the tunnel to net; the underlay endpoint holds.
    before="$(seen 10.8.0.2)"
    ping_ok client $NET4 5
    [ "$(first_hop)" = 10.8.0.1 ] || fail "$tag: the first hop to net is $(first_hop), not the server's tunnel address 10.8.0.1"
    after="$(seen 10.8.0.2)"
    [ "$after" -gt "$before" ] || fail "$tag: net counted no echo request from the tunnel address 10.8.0.2"
    transfer_check client net $NET4 2M 60
    [ "$(vpnd_json "client-$tag" 'peer["endpoint"]')" = "$ENDPOINT:51820" ] || fail "$tag: the client's endpoint is $(vpnd_json "client-$tag" 'peer["endpoint"]')"
    # IPv6: blocked outside the tunnel, the LAN still on-link.
    ping6_fails $NET6 || fail "$tag: IPv6 to net leaks outside the tunnel"
    in_ns client --timeout 5 ping -6 -n -c 1 -W 3 fd00:1::1 >/dev/null || fail "$tag: the on-link IPv6 LAN is unreachable"
    log "$tag: through the tunnel (first hop 10.8.0.1, net saw $((after - before)) from 10.8.0.2), IPv6 blocked, underlay on $ENDPOINT"

    # A clean stop: everything as before.
    stop_daemon "$client_pid" "$tag client"
    same_as_baseline "$tag, after a clean stop"
    [ ! -e "$marker" ] || fail "$tag: the marker $marker outlived a clean stop"
    ! grep -q "vpnd-$CIF" <<<"$(in_ns client --timeout 5 nft list tables)" || fail "$tag: vpnd's conntrack tables outlived a clean stop: $(in_ns client nft list tables)"
    in_ns client --timeout 5 ping -6 -n -c 1 -W 3 $NET6 >/dev/null || fail "$tag: IPv6 to net does not work again after stop"
    before="$(seen 10.0.0.2)"
    ping_ok client $NET4 5
    [ "$(seen 10.0.0.2)" -gt "$before" ] || fail "$tag: after stop, net counted nothing from the underlay address"

    # kill -9: the rules and the marker stay; the next start removes them first.
    vpnd_start client "client-$tag" "$CIF" --client --config "$(vpnd_conf_file "client-$tag")"
    client_pid=$VPND_PID
    wait_for "$tag: a session again" 15 vpnd_json_ok "client-$tag" 'peer["has_session"]' || fail "$tag: no session after restart"
    kill -KILL "$client_pid"
    wait "$client_pid" 2>/dev/null || true
    wait_for "$tag: the killed client's interface to go" 5 sh -c "! ip -n $(ns client) link show $CIF >/dev/null 2>&1"
    [ "$(client_state)" != "$baseline" ] || fail "$tag: kill -9 left nothing behind (the test proves nothing)"
    grep -q 'fwmark 0xca6c lookup 51820' <<<"$(in_ns client --timeout 5 ip -4 rule show)" || fail "$tag: the rules went with kill -9?"
    [ -f "$marker" ] || fail "$tag: no marker after kill -9"
    vpnd_start client "client-$tag" "$CIF" --client --config "$(vpnd_conf_file "client-$tag")"
    client_pid=$VPND_PID
    [ "$(vpnd_log_count "client-$tag" "a vpnd with interface $CIF did not stop cleanly: removed the 6 rules and routes it had installed ($marker)")" = 1 ] \
        || fail "$tag: no recovery line in the client's log"
    wait_for "$tag: a session after the crash" 15 vpnd_json_ok "client-$tag" 'peer["has_session"]' || fail "$tag: no session after the crash"
    ping_ok client $NET4 5
    [ "$(grep -c 'fwmark 0xca6c lookup 51820' <<<"$(in_ns client --timeout 5 ip -4 rule show)")" = 1 ] || fail "$tag: the rule is there twice after recovery"
    [ "$(in_ns client --timeout 5 nft list tables | grep -c "vpnd-$CIF")" = 2 ] || fail "$tag: tables ip and ip6 vpnd-$CIF are not there once each after recovery"
    stop_daemon "$client_pid" "$tag client"
    same_as_baseline "$tag, after kill -9, restart and stop"
    ! grep -q "vpnd-$CIF" <<<"$(in_ns client --timeout 5 nft list tables)" || fail "$tag: vpnd's conntrack tables outlived kill -9, restart and stop"
    stop_daemon "$server_pid" "$tag server"
    # The refused wg set is the one warning expected.
    grep -E ' (error|warning) ' "$(vpnd_log_file "client-$tag")" | grep -v "wg set on $CIF refused, nothing changed: fwmark 1234: the full tunnel's policy routing" \
        && fail "$tag: error or warning lines in the client's log"
    log "$tag: clean stop and kill -9 + restart + stop leave the client's rules and routes as they were"
}

full_tunnel udp
full_tunnel tcp nobody
full_tunnel auto

# Strict reverse-path filtering (rp_filter = 1) on the client: the server's packets arrive on eth0
# while an unmarked lookup of their source points into the tunnel; the conntrack mark restored by
# vpnd's nftables rules (and src_valid_mark) lets them in, as with wg-quick.
old_all="$(in_ns client --timeout 5 sysctl -n net.ipv4.conf.all.rp_filter)"
old_eth0="$(in_ns client --timeout 5 sysctl -n net.ipv4.conf.eth0.rp_filter)"
in_ns client --timeout 5 sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.eth0.rp_filter=1
vpnd_config server-rp --key server --peer client --address 10.8.0.1/24 --port 51820 --allowed 10.8.0.2/32 --ifname "$SIF"
vpnd_start server server-rp "$SIF" --server --config "$(vpnd_conf_file server-rp)"
server_pid=$VPND_PID
vpnd_config client-rp --key client --peer server --address 10.8.0.2/24 --allowed 0.0.0.0/0 \
    --endpoint "$ENDPOINT:51820" --ifname "$CIF"
vpnd_start client client-rp "$CIF" --client --config "$(vpnd_conf_file client-rp)"
pid=$VPND_PID
wait_for "strict rp_filter: a session" 15 vpnd_json_ok client-rp 'peer["has_session"]' || fail "strict rp_filter: no session (the server's replies were dropped?)"
transfer_check client net $NET4 2M 60 || fail "strict rp_filter: the transfer through the tunnel failed"
grep -q "meta mark set ct mark" <<<"$(in_ns client --timeout 5 nft list table ip "vpnd-$CIF")" || fail "strict rp_filter: no conntrack mark rule"
# kill -9, then `vpnd down` instead of a restart: the rules, routes and conntrack tables go.
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
wait_for "the killed client's interface to go" 5 sh -c "! ip -n $(ns client) link show $CIF >/dev/null 2>&1"
[ "$(in_ns client --timeout 5 nft list tables | grep -c "vpnd-$CIF")" = 2 ] || fail "kill -9 took the conntrack tables with it?"
down="$(VPND_RUN_DIR="$(vpnd_run_dir client-rp)" in_ns client --timeout 20 "$VPND" down "$CIF" 2>&1)" || fail "vpnd down failed: $down"
grep -q "^$CIF: removed the full tunnel's rules and routes" <<<"$down" || fail "vpnd down did not remove the rules: $down"
grep -q "^$CIF: removed tables ip and ip6 vpnd-$CIF$" <<<"$down" || fail "vpnd down did not remove the conntrack tables: $down"
! grep -q "vpnd-$CIF" <<<"$(in_ns client --timeout 5 nft list tables)" || fail "vpnd down left a conntrack table"
[ "$(VPND_RUN_DIR="$(vpnd_run_dir client-rp)" in_ns client --timeout 20 "$VPND" down "$CIF")" = "$CIF: nothing to remove" ] \
    || fail "a second vpnd down found something to remove"
log "vpnd down after kill -9: $(tr '\n' ';' <<<"$down")"
stop_daemon "$server_pid" "the strict rp_filter server"
in_ns client --timeout 5 sysctl -qw net.ipv4.conf.all.rp_filter="$old_all" net.ipv4.conf.eth0.rp_filter="$old_eth0"
same_as_baseline "strict rp_filter, after stop"
log "strict rp_filter: the session and a transfer work through vpnd's conntrack marks"

# Table = 1234: the routes there, 0.0.0.0/0 included, and no rule. Table = off with FwMark: no
# route, no rule, the socket marked.
vpnd_config server-t --key server --peer client --address 10.8.0.1/24 --port 51820 --allowed 10.8.0.2/32 --ifname "$SIF"
vpnd_start server server-t "$SIF" --server --config "$(vpnd_conf_file server-t)"
server_pid=$VPND_PID
for table in 1234 off; do
    vpnd_config "client-$table" --key client --peer server --address 10.8.0.2/24 --allowed 0.0.0.0/0,10.77.0.0/24 \
        --endpoint "$ENDPOINT:51820" --ifname "$CIF"
    sed -i "/^\[Interface\]/a Table = $table" "$(vpnd_conf_file "client-$table")"
    [ "$table" != off ] || sed -i "/^\[Interface\]/a FwMark = 0x99" "$(vpnd_conf_file "client-$table")"
    vpnd_start client "client-$table" "$CIF" --client --config "$(vpnd_conf_file "client-$table")"
    pid=$VPND_PID
    wait_for "Table = $table: a session" 15 vpnd_json_ok "client-$table" 'peer["has_session"]' || fail "Table = $table: no session"
    rules="$(for f in -4 -6; do in_ns client --timeout 5 ip $f rule show; done)"
    [ "$rules" = "$(printf '%s\n' "$baseline" | grep -E '^[0-9]+:')" ] || fail "Table = $table added rules: $rules"
    if [ "$table" = 1234 ]; then
        grep -q "^default dev $CIF" <<<"$(in_ns client --timeout 5 ip route show table 1234)" || fail "Table = 1234: no default route there"
        grep -q "^10.77.0.0/24 dev $CIF" <<<"$(in_ns client --timeout 5 ip route show table 1234)" || fail "Table = 1234: no 10.77.0.0/24 there"
        [ -z "$(in_ns client --timeout 5 ip route show table main 10.77.0.0/24)" ] || fail "Table = 1234: a route in main"
        [ "$(in_ns client --timeout 5 wg show "$CIF" fwmark)" = off ] || fail "Table = 1234 marked the socket"
    else
        [ -z "$(in_ns client --timeout 5 ip route show table all | grep 10.77.0.0)" ] || fail "Table = off: a route to 10.77.0.0/24"
        [ -z "$(in_ns client --timeout 5 ip route show table all | grep "^default dev $CIF")" ] || fail "Table = off: a default route"
        [ "$(in_ns client --timeout 5 wg show "$CIF" fwmark)" = 0x99 ] || fail "FwMark = 0x99: wg show fwmark says $(in_ns client wg show "$CIF" fwmark)"
    fi
    stop_daemon "$pid" "Table = $table client"
    same_as_baseline "Table = $table, after stop"
    log "Table = $table: routes where it says, no rules$([ "$table" = off ] && echo ', socket marked 0x99')"
done

# /proc/sys read-only, as under the systemd units (ProtectKernelTunables=yes): src_valid_mark stays
# 0 with one info line, and the full tunnel works and goes as before.
in_ns client --timeout 5 sysctl -qw net.ipv4.conf.all.src_valid_mark=0
vpnd_config client-ro --key client --peer server --address 10.8.0.2/24 --allowed 0.0.0.0/0 \
    --endpoint "$ENDPOINT:51820" --ifname "$CIF"
mkdir -m 700 "$(vpnd_run_dir client-ro)"
ip netns exec "$(ns client)" unshare --mount --propagation private sh -c \
    'mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys && exec "$@"' sh \
    env VPND_RUN_DIR="$(vpnd_run_dir client-ro)" "$VPND" --client --config "$(vpnd_conf_file client-ro)" \
    >>"$(vpnd_log_file client-ro)" 2>&1 &
pid=$!
_NS_PIDS+=("$pid")
wait_for "the client with a read-only /proc/sys" 15 vpnd_alive_and_listening "$pid" "$(vpnd_run_dir client-ro)" "$CIF" \
    || fail "the client with a read-only /proc/sys did not start: $(tail -n 3 "$(vpnd_log_file client-ro)")"
wait_for "read-only /proc/sys: a session" 15 vpnd_json_ok client-ro 'peer["has_session"]' || fail "read-only /proc/sys: no session"
[ "$(first_hop)" = 10.8.0.1 ] || fail "read-only /proc/sys: the first hop to net is $(first_hop), not 10.8.0.1"
[ "$(in_ns client --timeout 5 sysctl -n net.ipv4.conf.all.src_valid_mark)" = 0 ] || fail "read-only /proc/sys: src_valid_mark changed"
[ "$(vpnd_log_count client-ro "full tunnel: net.ipv4.conf.all.src_valid_mark stays 0 (sysctl -w net.ipv4.conf.all.src_valid_mark=1: read-only file system (EROFS)")" = 1 ] \
    || fail "read-only /proc/sys: no info line: $(grep src_valid_mark "$(vpnd_log_file client-ro)")"
stop_daemon "$pid" "the client with a read-only /proc/sys"
same_as_baseline "read-only /proc/sys, after stop"
log "read-only /proc/sys: the full tunnel works, src_valid_mark stays 0 with one info line"
stop_daemon "$server_pid" "server"

# A full tunnel whose rules a KeepNetAdmin = no client could not remove: refused, one line, nothing left.
vpnd_config client-noadmin --key client --peer server --address 10.8.0.2/24 --allowed 0.0.0.0/0 \
    --endpoint "$ENDPOINT:51820" --ifname "$CIF"
sed -i "/^\[Interface\]/a User = nobody\nKeepNetAdmin = no" "$(vpnd_conf_file client-noadmin)"
mkdir -m 700 "$(vpnd_run_dir client-noadmin)"
set +e
out="$(in_ns client --timeout 10 env VPND_RUN_DIR="$(vpnd_run_dir client-noadmin)" "$VPND" --client --config "$(vpnd_conf_file client-noadmin)" 2>&1)"
rc=$?
set -e
echo "    $out"
[ "$rc" = 1 ] || fail "KeepNetAdmin = no with a full tunnel: exit status $rc, expected 1"
[ "$(printf '%s\n' "$out" | wc -l)" = 1 ] || fail "KeepNetAdmin = no with a full tunnel: not one line: $out"
grep -q "client-noadmin.conf: a default route in AllowedIPs (Table = auto) makes a full tunnel, whose rules vpnd must remove when it stops, and with User = and KeepNetAdmin = no it could not; set KeepNetAdmin = yes" <<<"$out" \
    || fail "KeepNetAdmin = no with a full tunnel: unexpected message: $out"
in_ns client --timeout 5 ip link show "$CIF" >/dev/null 2>&1 && fail "the refused start left $CIF behind"
same_as_baseline "after the refused start"
[ -z "$(ls -A "$(vpnd_run_dir client-noadmin)")" ] || fail "the refused start left files in its run directory"

# A Table name that neither rt_tables file has: one line naming both files and the fix.
vpnd_config client-noname --key client --peer server --address 10.8.0.2/24 --allowed 0.0.0.0/0 \
    --endpoint "$ENDPOINT:51820" --ifname "$CIF"
sed -i "/^\[Interface\]/a Table = vpnd-no-such-table" "$(vpnd_conf_file client-noname)"
mkdir -m 700 "$(vpnd_run_dir client-noname)"
set +e
out="$(in_ns client --timeout 10 env VPND_RUN_DIR="$(vpnd_run_dir client-noname)" "$VPND" --client --config "$(vpnd_conf_file client-noname)" 2>&1)"
rc=$?
set -e
echo "    $out"
[ "$rc" = 1 ] && [ "$(printf '%s\n' "$out" | wc -l)" = 1 ] || fail "an unknown Table name: exit status $rc, or not one line: $out"
grep -q "client-noname.conf: Table = vpnd-no-such-table: no such routing table in /etc/iproute2/rt_tables or /usr/share/iproute2/rt_tables; add a line \"NUMBER vpnd-no-such-table\" to /etc/iproute2/rt_tables or give the table's number$" <<<"$out" \
    || fail "an unknown Table name: unexpected message: $out"
in_ns client --timeout 5 ip link show "$CIF" >/dev/null 2>&1 && fail "the unknown Table name left $CIF behind"
same_as_baseline "after the unknown Table name"

# Marker files vpnd did not write as they are: a damaged one stops the start with one line naming
# its line; one owned by another user is ignored and removed (one warning), and vpnd starts.
dir="$(vpnd_run_dir client-noname)"
sed -i '/^Table = /d' "$(vpnd_conf_file client-noname)"
printf 'vpnd-host 1\nrule ipv4 priority 32765 fwmark banana table 1\n' >"$dir/$CIF.host"
chmod 600 "$dir/$CIF.host"
set +e
out="$(in_ns client --timeout 10 env VPND_RUN_DIR="$dir" "$VPND" --client --config "$(vpnd_conf_file client-noname)" 2>&1)"
rc=$?
set -e
echo "    $out"
[ "$rc" = 1 ] && [ "$(printf '%s\n' "$out" | wc -l)" = 1 ] || fail "a damaged marker: exit status $rc, or not one line: $out"
grep -q "$dir/$CIF.host:2: \"rule ipv4 priority 32765 fwmark banana table 1\" is not an entry; it lists what a vpnd that did not stop cleanly installed: remove that by hand" <<<"$out" \
    || fail "a damaged marker: unexpected message: $out"
in_ns client --timeout 5 ip link show "$CIF" >/dev/null 2>&1 && fail "the damaged marker left $CIF behind"
printf 'vpnd-host 1\nrule ipv4 priority 32764 table 254 suppress_prefixlength 0\n' >"$dir/$CIF.host"
chown nobody "$dir/$CIF.host"
in_ns client --timeout 5 ip -4 rule add priority 32764 table main suppress_prefixlength 0
vpnd_start client client-noname "$CIF" --client --config "$(vpnd_conf_file client-noname)"
pid=$VPND_PID
[ "$(vpnd_log_count client-noname "$dir/$CIF.host was not written by this user (uid 0); ignored and removed")" = 1 ] \
    || fail "a foreign marker: no warning line"
# (The client's own full tunnel wrote a fresh one in its place.)
[ "$(stat -c %U "$dir/$CIF.host")" = root ] && grep -q "^route ipv4 default table 51820 dev $CIF$" "$dir/$CIF.host" \
    || fail "a foreign marker was not replaced by the client's own: $(stat -c %U "$dir/$CIF.host"): $(cat "$dir/$CIF.host")"
grep -q '^32764:' <<<"$(in_ns client --timeout 5 ip -4 rule show)" || fail "a foreign marker's rule was removed"
stop_daemon "$pid" "the client after a foreign marker"
in_ns client --timeout 5 ip -4 rule del priority 32764 table main suppress_prefixlength 0
same_as_baseline "after the marker cases"
log "a damaged marker stops the start with one line; a foreign one is ignored and removed"
log "full-tunnel passed"
