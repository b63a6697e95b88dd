# SPDX-License-Identifier: MIT
# The kill switch and forwarding scenarios (kill-switch.sh, forward.sh): a client, a server and
# "net", the internet behind the server. Source netns.sh and vpnd.sh first.
#
#   +------ client ------+            +------ server -------+            +-------- net ---------+
#   | eth0 198.18.0.1/24 |<== veth ==>| eth0 198.18.0.2/24  |            |                      |
#   | vpn0 10.9.0.2/24   |            | vpn0 10.9.0.1/24    |            |                      |
#   |                    |            | eth1 203.0.113.254  |<== veth ==>| eth0 203.0.113.1/24  |
#   | byp0 198.51.100.2  |<========= veth (fw_bypass only) ===========>| byp0 198.51.100.1/24 |
#   |  default via .1    |                                               | lo 192.0.2.1/32      |
#   +--------------------+                                               +----------------------+
#
# fw_topology builds client, server and net; fw_bypass adds the client's own way to net that
# bypasses the tunnel: a second veth, the client's default route through it, and 192.0.2.1 on net
# (an "internet" address only that default route reaches).

FW_SERVER_NET=203.0.113.254
FW_NET=203.0.113.1
FW_INTERNET=192.0.2.1
FW_LAN_PEER=198.51.100.1

fw_topology() {
    ns_pair client server
    ns_create net
    ns_link server eth1 "$FW_SERVER_NET/24" net eth0 "$FW_NET/24"
}

fw_bypass() {
    ns_link client byp0 198.51.100.2/24 net byp0 "$FW_LAN_PEER/24"
    timeout 10 ip -n "$(ns client)" route add default via "$FW_LAN_PEER"
    timeout 10 ip -n "$(ns net)" addr add "$FW_INTERNET/32" dev lo
}

# Sets KEY = VALUE in [Interface] of config NAME ($VPND_ITEST_DIR/NAME.conf), replacing the key if
# it is there:   fw_conf_set NAME KEY VALUE     (an empty VALUE removes the key)
fw_conf_set() {
    local file
    file="$(vpnd_conf_file "$1")"
    sed -i "/^$2 = /d" "$file"
    [ -z "$3" ] || sed -i "/^\[Interface\]/a $2 = $3" "$file"
}

# Succeeds when a TCP connection from NS to ADDR:PORT opens within 3 s.
tcp_ok() { in_ns "$1" --timeout 5 bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null; }

# A TCP listener in NS on ADDR:PORT that writes each connecting peer's address, one line per
# connection, to $VPND_ITEST_DIR/LOG.log; waits until it listens.   fw_listen NS LOG ADDR PORT
fw_listen() {
    local ready="$VPND_ITEST_DIR/$2.ready"
    ns_spawn "$1" "$2" python3 -u -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(16)
open(sys.argv[3], "w").close()
while True:
    c, peer = s.accept()
    print(peer[0], flush=True)
    c.close()
' "$3" "$4" "$ready"
    wait_for "listener on $3:$4 in $1" 10 test -e "$ready"
}

# Connects from NS to ADDR:PORT, where the listener LOG (fw_listen) runs, and prints the peer
# address that listener saw for this connection; fails when the connection or the line does not
# come within 5 s.   fw_seen_as NS ADDR PORT LOG
fw_seen_as() {
    local file="$VPND_ITEST_DIR/$4.log" before
    before=$(wc -l <"$file")
    tcp_ok "$1" "$2" "$3" || { echo "no TCP connection from $1 to $2:$3" >&2; return 1; }
    wait_for "the listener's line for the connection" 5 test "$(wc -l <"$file")" -gt "$before" || return 1
    sed -n "$((before + 1))p" "$file"
}

# The names of the nftables tables in NS as "family name" lines (empty when there is none).
fw_tables() { in_ns "$1" --timeout 5 nft list tables | sed -n 's/^table //p'; }

# Packets the kill switch's final drop rule of IFNAME in NS has counted.
fw_dropped() {
    in_ns "$1" --timeout 5 nft list chain inet "vpnd-$2" killswitch | sed -n 's/.*counter packets \([0-9]*\) .*drop.*/\1/p'
}

# `vpnd down ARGS...` in NS against the run directory of the daemon started as LOG; its output in
# $FW_DOWN_OUT, its exit status returned.   fw_down NS LOG [INTERFACE]
fw_down() {
    local ns="$1" logname="$2" status=0
    shift 2
    FW_DOWN_OUT="$(in_ns "$ns" --timeout 10 env VPND_RUN_DIR="$(vpnd_run_dir "$logname")" "$VPND" down "$@" 2>&1)" || status=$?
    printf '%s\n' "$FW_DOWN_OUT" | sed 's/^/    /'
    return "$status"
}

# What the root namespace has that a scenario must leave alone (its ruleset, routes, rules,
# forwarding settings, resolv.conf), into FILE; compare the one from before with the one from after:
#   fw_host_snapshot FILE;  ...;  fw_host_unchanged FILE
fw_host_snapshot() {
    {
        timeout 5 nft list ruleset 2>&1 || true
        timeout 5 ip route show table all 2>&1 || true
        timeout 5 ip rule 2>&1 || true
        timeout 5 ip -6 rule 2>&1 || true
        cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv6/conf/all/forwarding 2>&1 || true
        cat /etc/resolv.conf 2>&1 || true
    } >"$1"
}
fw_host_unchanged() {
    fw_host_snapshot "$1.after"
    diff "$1" "$1.after" >&2 || fail "the root namespace's firewall, routes, forwarding or resolv.conf changed (diff above)"
}

# Fails unless NS reaches ADDR: a ping reply and a TCP connection to PORT.   fw_expect_open NS ADDR PORT WHY
fw_expect_open() {
    ping_ok "$1" "$2" 5 || fail "$4: no ping reply from $2 in $1"
    tcp_ok "$1" "$2" "$3" || fail "$4: no TCP connection to $2:$3 from $1"
}

# Fails if NS reaches ADDR by ping or by TCP to PORT.   fw_expect_blocked NS ADDR PORT WHY
fw_expect_blocked() {
    if in_ns "$1" --timeout 5 ping -n -q -c 1 -W 2 "$2" >/dev/null 2>&1; then fail "$4: $2 answers a ping from $1"; fi
    if tcp_ok "$1" "$2" "$3"; then fail "$4: a TCP connection from $1 to $2:$3 opens"; fi
}

# Succeeds once interface IFNAME no longer exists in NS.
fw_link_gone() { ! in_ns "$1" --timeout 5 ip link show "$2" >/dev/null 2>&1; }
