#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Debian's wg-quick with WG_QUICK_USERSPACE_IMPLEMENTATION=vpnd-wg, against a vpnd server:
#   1. split tunnel (AllowedIPs = the tunnel subnet): wg-quick up starts vpnd-wg in the background,
#      ping and a checksummed transfer; wg-quick down leaves no interface, socket or process;
#   2. full tunnel (AllowedIPs = 0.0.0.0/0, ::/0): wg-quick routes everything through the tunnel
#      with fwmark, `ip rule ... suppress_prefixlength 0` and nftables; the client reaches a third
#      namespace standing for the internet behind the server (which forwards and masquerades), the
#      underlay to the server stays outside the tunnel (vpnd-wg's SO_MARK); wg-quick down leaves
#      no interface, rule, route, nftables table or socket behind.
#
#   cli: 198.18.3.1 --veth-- srv 198.18.3.254      srv: vpnd --server, 10.78.0.1/24, :51820
#   srv: 203.0.113.1 --veth-- inet 203.0.113.2     inet: the "internet" (no route back to 10.78.0.0/24)
#   cli: wg-quick up IF (vpnd-wg), 10.78.0.2/24
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"
command -v wg-quick >/dev/null || fail "wg-quick (wireguard-tools) is not installed"
command -v nft >/dev/null || fail "nft (nftables) is not installed: wg-quick's full tunnel needs it"
VPND_WG="$(require_bin vpnd-wg)"

IF="$(unique_ifname q)"
SOCK="/var/run/wireguard/$IF.sock"
track_socket "$SOCK"
CONF_DIR="$VPND_ITEST_DIR/wg-quick"
mkdir -p "$CONF_DIR" && chmod 700 "$CONF_DIR"
# LOG_LEVEL: vpnd-wg keeps this log as its stderr in the background (as wireguard-go does).
quick() { in_ns cli --timeout 30 env LOG_LEVEL=info WG_QUICK_USERSPACE_IMPLEMENTATION="$VPND_WG" wg-quick "$@" "$CONF_DIR/$IF.conf"; }
rules() { in_ns cli --timeout 5 ip "$1" rule show; }

ns_create srv
ns_create cli
ns_create inet
ns_link cli eth0 198.18.3.1/24 srv eth-c 198.18.3.254/24
ns_link srv eth-i 203.0.113.1/24 inet eth0 203.0.113.2/24
in_ns srv --timeout 5 sysctl -qw net.ipv4.ip_forward=1
in_ns srv --timeout 5 nft -f - <<'EOF'
table ip nat {
    chain postrouting { type nat hook postrouting priority 100; oifname "eth-i" masquerade; }
}
EOF
RULES4_BEFORE="$(rules -4)"
RULES6_BEFORE="$(rules -6)"

vpnd_keypair srv
vpnd_keypair cli
vpnd_config srv --key srv --peer cli --address 10.78.0.1/24 --allowed 10.78.0.2/32 --port 51820
vpnd_start srv srv vpnd0 --server --config "$(vpnd_conf_file srv)"
client_conf() {
    (umask 077 && cat >"$CONF_DIR/$IF.conf" <<EOF
[Interface]
PrivateKey = $(cat "$(vpnd_key_file cli)")
Address = 10.78.0.2/24

[Peer]
PublicKey = $(vpnd_pub srv)
Endpoint = 198.18.3.254:51820
AllowedIPs = $1
PersistentKeepalive = 25
EOF
    )
}
# Nothing of IF is left in cli: interface, socket, process, rules, nftables table.
nothing_left() {
    ! in_ns cli --timeout 5 ip link show "$IF" >/dev/null 2>&1 || fail "$1: interface $IF is still there"
    wait_for "$1: $SOCK removed" 5 test ! -e "$SOCK" || fail "$1: $SOCK is still there"
    wait_for "$1: vpnd-wg gone" 5 sh -c "! pgrep -f '[v]pnd-wg --foreground $IF\$' >/dev/null" || fail "$1: vpnd-wg still runs"
    [ "$(rules -4)" = "$RULES4_BEFORE" ] || fail "$1: IPv4 rules left behind: $(rules -4)"
    [ "$(rules -6)" = "$RULES6_BEFORE" ] || fail "$1: IPv6 rules left behind: $(rules -6)"
    ! in_ns cli --timeout 5 nft list tables | grep_q "wg-quick-$IF" || fail "$1: nftables table wg-quick-$IF left behind"
    [ -z "$(in_ns cli --timeout 5 ip route show table all dev "$IF" 2>/dev/null)" ] || fail "$1: routes left behind"
}

log "1. split tunnel: wg-quick up with vpnd-wg"
client_conf 10.78.0.0/24
quick up || fail "wg-quick up failed"
pgrep -f "[v]pnd-wg --foreground $IF\$" >/dev/null || fail "wg-quick did not start vpnd-wg (a kernel WireGuard module would be used instead)"
test -S "$SOCK" || fail "$SOCK is missing"
wait_for "cli -> server through vpnd-wg" 15 ping_ok cli 10.78.0.1 1
ping_ok srv 10.78.0.2 5
transfer_check cli srv 10.78.0.1 20M 60
transfer_check srv cli 10.78.0.2 20M 60
[ "$(in_ns cli --timeout 5 wg show "$IF" peers)" = "$(vpnd_pub srv)" ] || fail "wg show $IF lists another peer"
quick down || fail "wg-quick down failed"
nothing_left "split tunnel, after wg-quick down"

log "2. full tunnel: AllowedIPs = 0.0.0.0/0, ::/0"
client_conf "0.0.0.0/0, ::/0"
quick up || fail "wg-quick up (full tunnel) failed"
mark="$(in_ns cli --timeout 5 wg show "$IF" fwmark)"
[ "$mark" != off ] || fail "wg-quick set no fwmark"
rules -4 | grep_q "suppress_prefixlength 0" || fail "no suppress_prefixlength rule: $(rules -4)"
wait_for "cli -> the internet through the tunnel" 15 ping_ok cli 203.0.113.2 1
rx_before="$(vpnd_json srv 'peer["rx_bytes"]')"
transfer_check cli inet 203.0.113.2 5M 60
if ping_ok inet 10.78.0.2 2 2>/dev/null; then fail "the internet reached the client's tunnel address: no masquerading?"; fi
rx_after="$(vpnd_json srv 'peer["rx_bytes"]')"
[ "$rx_after" -gt $((rx_before + 5000000)) ] || fail "the transfer did not go through the tunnel (server rx $rx_before -> $rx_after)"
# The underlay stays outside the tunnel: vpnd-wg's datagrams carry the mark and leave by eth0.
[ "$(vpnd_json srv 'peer["endpoint"]')" = "198.18.3.1:$(in_ns cli --timeout 5 wg show "$IF" listen-port)" ] \
    || fail "the server sees the client at $(vpnd_json srv 'peer["endpoint"]'), not its underlay address"
hs="$(in_ns cli --timeout 5 wg show "$IF" latest-handshakes | cut -f2)"
[ "$hs" -gt 0 ] || fail "no handshake on $IF"
quick down || fail "wg-quick down (full tunnel) failed"
nothing_left "full tunnel, after wg-quick down"
ping_ok cli 198.18.3.254 3 || fail "the underlay is broken after wg-quick down"
log "wg-quick passed"
