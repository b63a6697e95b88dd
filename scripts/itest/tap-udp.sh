#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vpnd <-> vpnd in tap mode over UDP: the two tap interfaces form one Ethernet segment. ARP resolves
# across it (ping works, and each side's neighbour entry holds the other tap's MAC address), a frame
# with a non-IP ethertype (0x88b5, local experimental) crosses it, and 100 MB (VPND_ITEST_BYTES)
# arrive intact in each direction.
#
#   a: vpnd --server, tap vpn0 10.9.0.1/24, listens on 198.18.0.1:51820
#   b: vpnd --client, tap vpn0 10.9.0.2/24, endpoint 198.18.0.1:51820
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"

bytes="${VPND_ITEST_BYTES:-100M}"
ethframe="$VPND_REPO/scripts/lib/ethframe.py"

ns_pair a b
vpnd_keypair server
vpnd_keypair client
vpnd_config server --key server --peer client --address 10.9.0.1/24 --port 51820 --mode tap --ifname vpn0
vpnd_config client --key client --peer server --address 10.9.0.2/24 --endpoint "$UNDERLAY_A:51820" \
    --mode tap --ifname vpn0

vpnd_start a server vpn0 --server --config "$(vpnd_conf_file server)"
server_pid=$VPND_PID
vpnd_start b client vpn0 --client --config "$(vpnd_conf_file client)"
client_pid=$VPND_PID
on_failure_show in_ns a ip -d link show vpn0
on_failure_show in_ns b ip -d link show vpn0
on_failure_show in_ns a ip neigh show dev vpn0
on_failure_show in_ns b ip neigh show dev vpn0

mac_of() { in_ns "$1" --timeout 5 cat /sys/class/net/vpn0/address; }
mac_a="$(mac_of a)"
mac_b="$(mac_of b)"
in_ns a --timeout 5 ip -d link show vpn0 | grep_q 'tun type tap' || fail "vpn0 in a is not a tap device"
[ "$mac_a" != "$mac_b" ] || fail "both taps have MAC address $mac_a"
log "taps: a $mac_a, b $mac_b"

log "ping b -> a, a -> b (ARP across the tunnel)"
ping_ok b 10.9.0.1 10
ping_ok a 10.9.0.2 10
neigh_mac() { in_ns "$1" --timeout 5 ip neigh show "$2" dev vpn0 | sed -n 's/.*lladdr \([0-9a-f:]*\).*/\1/p'; }
got="$(neigh_mac a 10.9.0.2)"
[ "$got" = "$mac_b" ] || fail "a's neighbour entry for 10.9.0.2 is [$got], expected b's tap MAC $mac_b"
got="$(neigh_mac b 10.9.0.1)"
[ "$got" = "$mac_a" ] || fail "b's neighbour entry for 10.9.0.1 is [$got], expected a's tap MAC $mac_a"
log "ARP resolved: a sees 10.9.0.2 at $mac_b, b sees 10.9.0.1 at $mac_a"

# A non-IP frame, each way: unicast a -> b, broadcast b -> a.
raw_frame() {
    local from="$1" to="$2" dst="$3" payload="vpnd-itest-$RANDOM" ready="$VPND_ITEST_DIR/ethframe-$1-$2.ready"
    ns_spawn "$to" "ethframe-recv-$to" timeout --kill-after=2 15 python3 "$ethframe" recv --ifname vpn0 \
        --ethertype 0x88b5 --payload "$payload" --timeout 10 --ready-file "$ready"
    local rpid=$SPAWNED_PID
    wait_for "ethframe receiver in $to" 10 test -e "$ready"
    in_ns "$from" --timeout 10 python3 "$ethframe" send --ifname vpn0 --ethertype 0x88b5 --dst "$dst" \
        --payload "$payload" --count 5 >/dev/null
    wait "$rpid" || fail "no ethertype 0x88b5 frame from $from arrived in $to: $(cat "$VPND_ITEST_DIR/ethframe-recv-$to.log")"
    local line
    line="$(cat "$VPND_ITEST_DIR/ethframe-recv-$to.log")"
    local src_mac
    src_mac="$(mac_of "$from")"
    case "$line" in
        *"from $src_mac:"*) log "$from -> $to: $line" ;;
        *) fail "frame in $to has an unexpected source: [$line], expected $src_mac" ;;
    esac
}
raw_frame a b "$mac_b"
raw_frame b a ff:ff:ff:ff:ff:ff

log "transfers of $bytes"
start=$SECONDS
transfer_check b a 10.9.0.1 "$bytes" 150
log "b -> a took $((SECONDS - start)) s"
start=$SECONDS
transfer_check a b 10.9.0.2 "$bytes" 150
log "a -> b took $((SECONDS - start)) s"

vpnd_alive "$server_pid" "vpnd server"
vpnd_alive "$client_pid" "vpnd client"
log "tap-udp passed"
