#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Reload without dropping anyone: a vpnd server's config file is edited while a checksummed
# transfer runs through client 1, and `vpnd reload` (then SIGHUP) applies the difference live:
#   - client 2 added (it then connects and passes a transfer), an AllowedIPs prefix added to
#     client 1 (its kernel route appears), an Address added (netlink); client 1's transfer
#     completes with no new handshake (`handshakes` stays 1);
#   - client 2 removed again by SIGHUP: it is cut, client 1 is not;
#   - a file with an error, and a change that cannot apply live (Mode), are refused with one line
#     each (exit 1) and change nothing (`wg showconf` byte for byte);
#   - MTU 1380 applies live (interface MTU, DF pings of 1380 pass and 1381 fail), MTU 1500 (above
#     the start MTU) is refused with one line, and 1420 comes back; client 1 keeps its handshake.
#
#   c1: 198.18.1.1 --veth-- srv 198.18.1.254      srv: vpnd --server IF, 10.76.0.1/24, :51820
#   c2: 198.18.2.1 --veth-- srv 198.18.2.254
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"

IF="$(unique_ifname l)"
track_socket "/var/run/wireguard/$IF.sock"
reload() { VPND_RUN_DIR="$(vpnd_run_dir srv)" timeout 20 ip netns exec "$(ns srv)" "$VPND" reload "$IF"; }
handshakes_of() { vpnd_json srv "[p for p in peers if p['public_key'] == '$(vpnd_pub "$1")'][0]['handshakes']"; }

ns_create srv
ns_create c1
ns_create c2
ns_link c1 eth0 198.18.1.1/24 srv eth-1 198.18.1.254/24
ns_link c2 eth0 198.18.2.1/24 srv eth-2 198.18.2.254/24
vpnd_keypair srv
vpnd_keypair c1
vpnd_keypair c2
K="$VPND_ITEST_DIR/keys"
CONF="$VPND_ITEST_DIR/srv.conf"
server_conf() {  # server_conf [with-c2] [extra-prefix] [extra-address] [mode]
    {
        echo "[Interface]"
        echo "Name = $IF"
        echo "PrivateKeyFile = $K/srv.key"
        echo "Address = 10.76.0.1/24"
        [ -z "${3:-}" ] || echo "Address = $3"
        echo "ListenPort = 51820"
        [ -z "${4:-}" ] || echo "Mode = $4"
        echo
        echo "[Peer]"
        echo "# client 1"
        echo "PublicKey = $(vpnd_pub c1)"
        echo "AllowedIPs = 10.76.0.2/32${2:+, $2}"
        if [ "${1:-}" = with-c2 ]; then
            echo
            echo "[Peer]"
            echo "# client 2"
            echo "PublicKey = $(vpnd_pub c2)"
            echo "AllowedIPs = 10.76.0.3/32"
        fi
    } >"$CONF.new"
    mv "$CONF.new" "$CONF"
}
for c in 1 2; do
    cat >"$VPND_ITEST_DIR/c$c.conf" <<EOF
[Interface]
Name = vpnd0
PrivateKeyFile = $K/c$c.key
Address = 10.76.0.$((c + 1))/24

[Peer]
PublicKey = $(vpnd_pub srv)
AllowedIPs = 10.76.0.0/24
Endpoint = 198.18.$c.254:51820
EOF
done

server_conf
vpnd_start srv srv "$IF" --server --config "$CONF"
SRV_PID=$VPND_PID
vpnd_start c1 c1 vpnd0 --client --config "$VPND_ITEST_DIR/c1.conf"
wait_for "c1 -> server" 15 ping_ok c1 10.76.0.1 1

log "vpnd reload while client 1's transfer runs: client 2, a route and an address added"
transfer_check c1 srv 10.76.0.1 400M 120 5201 >"$VPND_ITEST_DIR/c1-transfer.out" 2>&1 &
XFER_PID=$!
wait_for "client 1's transfer under way" 10 sh -c "ip netns exec $(ns srv) ss -Htn 'sport = :5201' | grep -q ESTAB"
server_conf with-c2 10.99.0.0/24 10.76.1.1/24
out="$(reload 2>&1)" || fail "vpnd reload failed: $out"
log "vpnd reload: $out"
kill -0 "$XFER_PID" 2>/dev/null || fail "client 1's transfer ended before the reload: it proves nothing"
vpnd_start c2 c2 vpnd0 --client --config "$VPND_ITEST_DIR/c2.conf"
wait_for "c2 -> server" 15 ping_ok c2 10.76.0.1 1
transfer_check c2 srv 10.76.0.1 5M 60 5202 || fail "client 2's transfer failed"
in_ns srv --timeout 5 ip route show 10.99.0.0/24 | grep_q "dev $IF" || fail "the reload added no route to 10.99.0.0/24"
in_ns srv --timeout 5 ip addr show dev "$IF" | grep_q "inet 10.76.1.1/24" || fail "the reload added no address 10.76.1.1/24"
wait "$XFER_PID" || fail "client 1's transfer was interrupted: $(cat "$VPND_ITEST_DIR/c1-transfer.out")"
cat "$VPND_ITEST_DIR/c1-transfer.out"
[ "$(handshakes_of c1)" -eq 1 ] || fail "client 1 made $(handshakes_of c1) handshakes, expected 1"
grep -q "reload (vpnd reload): 1 peer(s) added" "$(vpnd_log_file srv)" || fail "the server did not log the reload"

log "SIGHUP after removing client 2 from the file: it is cut, client 1 is not"
server_conf "" 10.99.0.0/24
kill -HUP "$SRV_PID"
wait_for "client 2 gone from the server" 10 vpnd_json_ok srv 'len(peers) == 1' || fail "SIGHUP did not remove client 2"
vpnd_alive "$SRV_PID" "vpnd server (after SIGHUP)"
if ping_ok c2 10.76.0.1 2 2>/dev/null; then fail "client 2 still reaches the server"; fi
ping_ok c1 10.76.0.1 5 || fail "client 1 lost the server"
! in_ns srv --timeout 5 ip addr show dev "$IF" | grep_q "10.76.1.1" || fail "the removed Address is still there"

log "a broken file and a Mode change are refused whole"
before="$(in_ns srv --timeout 5 wg showconf "$IF")"
cp "$CONF" "$CONF.good"
server_conf with-c2 10.98.0.0/24
echo "AllowedIPs = 10.500.0.0/24" >>"$CONF"
if out="$(reload 2>&1)"; then fail "a broken file was reloaded: $out"; fi
log "broken file: $out"
[ "$(wc -l <<<"$out")" -eq 1 ] || fail "expected one line for a broken file, got: $out"
grep -q "srv.conf:[0-9]*:" <<<"$out" || fail "the refusal does not name the line: $out"
server_conf "" 10.99.0.0/24 "" tap
if out="$(reload 2>&1)"; then fail "a Mode change was applied live: $out"; fi
log "Mode change: $out"
grep -q "Mode" <<<"$out" || fail "the refusal does not name Mode: $out"
[ "$(in_ns srv --timeout 5 wg showconf "$IF")" = "$before" ] || fail "a refused reload changed the running configuration"
cp "$CONF.good" "$CONF"
ping_ok c1 10.76.0.1 5
[ "$(handshakes_of c1)" -eq 1 ] || fail "client 1 handshook again"

log "MTU: lowered live (netlink and the tunnel), above the start MTU refused"
sed -i 's/^ListenPort = 51820$/ListenPort = 51820\nMTU = 1380/' "$CONF"
out="$(reload 2>&1)" || fail "an MTU change was refused: $out"
log "MTU 1380: $out"
grep -q "MTU 1420 -> 1380" <<<"$out" || fail "the reload does not say the MTU changed: $out"
in_ns srv --timeout 5 ip link show dev "$IF" | grep_q " mtu 1380 " || fail "the interface's MTU is not 1380: $(in_ns srv ip link show dev "$IF")"
in_ns srv --timeout 5 ping -M do -c 1 -W 2 -s 1352 10.76.0.2 >/dev/null || fail "a 1380-byte DF ping to client 1 failed"
if in_ns srv --timeout 5 ping -M do -c 1 -W 2 -s 1353 10.76.0.2 >/dev/null 2>&1; then fail "a 1381-byte DF ping passed an MTU of 1380"; fi
sed -i 's/^MTU = 1380$/MTU = 1500/' "$CONF"
if out="$(reload 2>&1)"; then fail "an MTU above the start MTU was applied: $out"; fi
log "MTU 1500: $out"
grep -q "above 1420" <<<"$out" || fail "the refusal does not explain the limit: $out"
in_ns srv --timeout 5 ip link show dev "$IF" | grep_q " mtu 1380 " || fail "a refused MTU changed the interface"
cp "$CONF.good" "$CONF"
out="$(reload 2>&1)" || fail "the MTU could not go back up to 1420: $out"
in_ns srv --timeout 5 ip link show dev "$IF" | grep_q " mtu 1420 " || fail "the interface's MTU is not back at 1420"
in_ns srv --timeout 5 ping -M do -c 1 -W 2 -s 1392 10.76.0.2 >/dev/null || fail "a 1420-byte DF ping failed after the MTU went back up"
[ "$(handshakes_of c1)" -eq 1 ] || fail "client 1 handshook again after the MTU changes"
vpnd_alive "$SRV_PID" "vpnd server"
log "reload passed"
