#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A 1280-byte underlay (the veth MTU on both sides). First with the tunnel MTU docs/operations.md gives
# for tun over IPv4 (1280 - 20 - 8 - 32 = 1220): the largest ping that fits (1192 bytes of ICMP data,
# DF set) passes, one byte more is refused locally, and a checksummed transfer is intact, with no
# outer fragment. Then with the default MTU 1420 over the same underlay: vpnd's path MTU discovery
# (DF on every datagram, the local EMSGSIZE and the probes) makes the tunnel carry inner packets of at
# most 1220 bytes to the peer, so there is no outer fragment either; a 1392-byte DF ping gets "frag
# needed" naming 1220 from the tunnel, 1192 bytes pass, transfers are intact. With
# PathMTUDiscovery = off the kernel fragments the 1480-byte outer datagrams instead, and traffic still
# flows (ping up to 1392 bytes). Offloads on and off (VPND_ITEST_OFFLOADS). The outer fragments are
# counted (IP reassembly statistics in the receiving namespace) and printed. Last, the 1280-byte link
# behind a router (c -- hub -- d): the hub's ICMP and the probes give the client the path.
#
#   a: vpnd --server 10.9.0.1/24 on 198.18.0.1:51820     b: vpnd --client 10.9.0.2/24
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"
source "$VPND_REPO/scripts/lib/faults.sh"

bytes="${VPND_ITEST_BYTES:-20M}"
ns_pair a b
timeout 5 ip -n "$(ns a)" link set eth0 mtu 1280
timeout 5 ip -n "$(ns b)" link set eth0 mtu 1280
vpnd_keypair server
vpnd_keypair client

# IP reassemblies done in NS so far (each is one datagram that arrived fragmented).
reassembled() {
    in_ns "$1" --timeout 5 awk '/^Ip: [A-Z]/ { for (i = 2; i <= NF; i++) if ($i == "ReasmOKs") c = i }
        /^Ip: [0-9]/ { print $c }' /proc/net/snmp
}
# Large pings (DF set, so the inner packet is never fragmented by the inner stack): ping_size NS ADDR SIZE
ping_size() { in_ns "$1" --timeout 8 ping -n -q -c 3 -i 0.2 -W 2 -M do -s "$3" "$2" >/dev/null 2>&1; }

# path_mtu of LOG's (only) peer in `vpnd show --json`.
path_mtu() { vpnd_json "$1" 'peer["path_mtu"]'; }

run_pass() {
    local mtu="$1" offload="$2" pmtud="${3:-on}" tag="$1-$2-${3:-on}" flags=() before_a before_b frag_a frag_b
    [ "$offload" = on ] || flags=(--no-offload)
    vpnd_config "server-$tag" --key server --peer client --address 10.9.0.1/24 --port 51820 \
        --allowed 10.9.0.2/32 --ifname vpn0 --mtu "$mtu"
    vpnd_config "client-$tag" --key client --peer server --address 10.9.0.2/24 --allowed 10.9.0.0/24 \
        --endpoint "$UNDERLAY_A:51820" --ifname vpn0 --mtu "$mtu"
    if [ "$pmtud" = off ]; then
        sed -i 's/^\[Interface\]$/[Interface]\nPathMTUDiscovery = off/' \
            "$(vpnd_conf_file "server-$tag")" "$(vpnd_conf_file "client-$tag")"
    fi
    vpnd_start a "server-$tag" vpn0 --server --config "$(vpnd_conf_file "server-$tag")" "${flags[@]}"
    local server_pid=$VPND_PID
    vpnd_start b "client-$tag" vpn0 --client --config "$(vpnd_conf_file "client-$tag")" "${flags[@]}"
    local client_pid=$VPND_PID
    wait_for "ping b -> a" 15 ping_ok b 10.9.0.1 1
    before_a=$(reassembled a)
    before_b=$(reassembled b)

    local carried=$mtu
    if [ "$pmtud" = on ] && [ "$mtu" -gt 1220 ]; then
        # Discovery: the tunnel carries 1220 bytes to its peer, and tells senders of more so.
        carried=1220
        local out
        out="$(in_ns b --timeout 10 ping -n -c 2 -i 0.3 -W 1 -M do -s $((mtu - 28)) 10.9.0.1 2>&1 || true)"
        grep -Eq 'mtu ?= ?1220' <<<"$out" || fail "MTU $mtu, offloads $offload: no 'frag needed' naming 1220 for a $((mtu - 28))-byte ping: $out"
        [ "$(path_mtu "server-$tag")" = 1220 ] && [ "$(path_mtu "client-$tag")" = 1220 ] \
            || fail "MTU $mtu, offloads $offload: path MTU server $(path_mtu "server-$tag"), client $(path_mtu "client-$tag"), expected 1220"
    fi
    local largest=$((carried - 28))
    ping_size b 10.9.0.1 "$largest" || fail "MTU $mtu, offloads $offload: a $largest-byte ping (an inner packet of $carried) b -> a failed"
    ping_size a 10.9.0.2 "$largest" || fail "MTU $mtu, offloads $offload: a $largest-byte ping a -> b failed"
    ! ping_size b 10.9.0.1 $((largest + 1)) || fail "MTU $mtu: a $((largest + 1))-byte ping with DF passed a tunnel carrying $carried"
    transfer_check b a 10.9.0.1 "$bytes" 90
    transfer_check a b 10.9.0.2 "$bytes" 90
    iperf3_check b a 10.9.0.1 3
    local mbps=$IPERF3_MBPS
    frag_a=$(($(reassembled a) - before_a))
    frag_b=$(($(reassembled b) - before_b))
    log "MTU $mtu over a 1280 underlay, offloads $offload, discovery $pmtud: pings of $largest bytes and $bytes each way intact;" \
        "outer datagrams reassembled: $frag_a at the server, $frag_b at the client"
    log "  iperf3 b -> a: $mbps Mbit/s; server drops: $(vpnd_drops_summary "server-$tag"); client drops: $(vpnd_drops_summary "client-$tag")"
    if [ "$carried" -le 1220 ]; then
        [ "$frag_a" -eq 0 ] && [ "$frag_b" -eq 0 ] || fail "the tunnel carries $carried, which fits a 1280 underlay, yet outer datagrams were fragmented"
    else
        [ "$frag_a" -gt 0 ] && [ "$frag_b" -gt 0 ] || fail "MTU $mtu over a 1280 underlay without fragments: what carried the large packets?"
    fi
    vpnd_alive "$server_pid" "vpnd server"
    vpnd_alive "$client_pid" "vpnd client"
    kill -TERM "$server_pid" "$client_pid"
    wait "$server_pid" || true
    wait "$client_pid" || true
}

for offload in ${VPND_ITEST_OFFLOADS:-on off}; do
    run_pass 1220 "$offload"
    run_pass 1420 "$offload"
    run_pass 1420 "$offload" off
done

# The small link further along the path: c (MTU 1500) -- hub -- d (the hub's side towards d and d itself
# at 1280). The client's 1480-byte datagrams leave with DF, the hub answers "fragmentation needed",
# which the client's vpnd reads from its socket (and its probes confirm); d learns its own link's MTU
# locally. Both then carry 1220-byte inner packets, and answer larger ones with "frag needed".
log "default MTU 1420, 1500-byte client link, 1280-byte link behind a router (path MTU discovery)"
ns_routed c hub d
timeout 5 ip -n "$(ns hub)" link set eth-b mtu 1280
timeout 5 ip -n "$(ns d)" link set eth0 mtu 1280
vpnd_config server-path --key server --peer client --address 10.9.0.1/24 --port 51820 --allowed 10.9.0.2/32 --ifname vpn0
vpnd_config client-path --key client --peer server --address 10.9.0.2/24 --allowed 10.9.0.0/24 \
    --endpoint "198.18.2.1:51820" --ifname vpn0
vpnd_start d server-path vpn0 --server --config "$(vpnd_conf_file server-path)"
vpnd_start c client-path vpn0 --client --config "$(vpnd_conf_file client-path)"
wait_for "ping c -> d" 15 ping_ok c 10.9.0.1 1
wait_for "a 1192-byte ping c -> d after path MTU discovery" 10 ping_size c 10.9.0.1 1192 \
    || fail "path MTU 1280 behind a router: 1192-byte pings through an MTU 1420 tunnel never pass"
ping_size d 10.9.0.2 1192 || fail "path MTU 1280 behind a router: a 1192-byte ping d -> c failed"
out="$(in_ns c --timeout 10 ping -n -c 2 -i 0.3 -W 1 -M do -s 1392 10.9.0.1 2>&1 || true)"
grep -Eq 'mtu ?= ?1220' <<<"$out" || fail "path MTU 1280 behind a router: no 'frag needed' naming 1220: $out"
[ "$(path_mtu client-path)" = 1220 ] && [ "$(path_mtu server-path)" = 1220 ] \
    || fail "path MTU behind a router: client $(path_mtu client-path), server $(path_mtu server-path), expected 1220"
transfer_check c d 10.9.0.1 "$bytes" 90
transfer_check d c 10.9.0.2 "$bytes" 90
pmtu="$(in_ns c --timeout 5 ip route get 198.18.2.1 | sed -n 's/.* mtu \([0-9]*\).*/\1/p')"
log "path MTU the client's kernel learned for the server: ${pmtu:-none}; server reassembled $(reassembled d) datagrams"
[ "$pmtu" = 1280 ] || fail "the client's kernel did not learn the path MTU 1280 (route: $(in_ns c --timeout 5 ip route get 198.18.2.1))"
log "underlay-mtu-1280 passed"
