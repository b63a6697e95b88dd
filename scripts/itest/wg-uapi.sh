#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# WireGuard's own tool (Debian's wireguard-tools) drives a running vpnd server through the
# cross-platform UAPI socket /var/run/wireguard/IF.sock:
#   - wg show / showconf / show dump list what the config says;
#   - wg set adds a second client at runtime, which passes a checksummed transfer while the first
#     client's transfer runs on, without a new handshake for the first client;
#   - wg set ... remove cuts exactly that client; wg syncconf brings it back with the minimal change;
#   - malformed and hostile set=1 requests change nothing and the daemon stays up.
#
#   c1: 198.18.1.1 --veth-- srv 198.18.1.254      srv: vpnd --server IF, 10.77.0.1/24, :51820
#   c2: 198.18.2.1 --veth-- srv 198.18.2.254      c1 10.77.0.2 (in the config), c2 10.77.0.3 (added by wg set)
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"
command -v wg >/dev/null || fail "wg (wireguard-tools) is not installed"

IF="$(unique_ifname w)"
SOCK="/var/run/wireguard/$IF.sock"
track_socket "$SOCK"
wg_srv() { in_ns srv --timeout 10 wg "$@"; }
# A raw UAPI exchange: sends stdin to the socket, prints the answer.
uapi_raw() { in_ns srv --timeout 20 python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(15)
s.connect(sys.argv[1])
data = sys.stdin.buffer.read()
try:
    s.sendall(data)
except (BrokenPipeError, ConnectionResetError):
    pass
s.shutdown(socket.SHUT_WR)
out = b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
except (ConnectionResetError, socket.timeout):
    pass
sys.stdout.write(out.decode(errors="replace"))
' "$SOCK"; }
# A base64 key as the UAPI's hex.
hexkey() { base64 -d <<<"$1" | od -An -tx1 -v | tr -d ' \n'; }
# The latest-handshake field of PUB in `wg show IF dump` (0: none).
wg_handshake_of() { wg_srv show "$IF" dump | awk -F'\t' -v k="$1" '$1 == k { print $5 }'; }

ns_create srv
ns_create c1
ns_create c2
ns_link c1 eth0 198.18.1.1/24 srv eth-1 198.18.1.254/24
ns_link c2 eth0 198.18.2.1/24 srv eth-2 198.18.2.254/24

vpnd_keypair srv
vpnd_keypair c1
vpnd_keypair c2
K="$VPND_ITEST_DIR/keys"
cat >"$VPND_ITEST_DIR/srv.conf" <<EOF
[Interface]
Name = $IF
PrivateKeyFile = $K/srv.key
Address = 10.77.0.1/24
ListenPort = 51820

[Peer]
PublicKey = $(vpnd_pub c1)
AllowedIPs = 10.77.0.2/32
EOF
for c in 1 2; do
    cat >"$VPND_ITEST_DIR/c$c.conf" <<EOF
[Interface]
Name = vpnd0
PrivateKeyFile = $K/c$c.key
Address = 10.77.0.$((c + 1))/24

[Peer]
PublicKey = $(vpnd_pub srv)
AllowedIPs = 10.77.0.0/24
Endpoint = 198.18.$c.254:51820
EOF
done

vpnd_start srv srv "$IF" --server --config "$VPND_ITEST_DIR/srv.conf"
SRV_PID=$VPND_PID
vpnd_start c1 c1 vpnd0 --client --config "$VPND_ITEST_DIR/c1.conf"
wait_for "c1 -> server" 15 ping_ok c1 10.77.0.1 1

log "wg show, showconf and dump list the configuration"
test -S "$SOCK" || fail "$SOCK is missing"
[ "$(stat -c %a "$SOCK")" = 600 ] || fail "$SOCK has mode $(stat -c %a "$SOCK"), expected 600"
shown="$(wg_srv show "$IF")" || fail "wg show $IF failed"
echo "$shown"
grep -q "listening port: 51820" <<<"$shown" || fail "wg show lacks the listening port"
grep -q "peer: $(vpnd_pub c1)" <<<"$shown" || fail "wg show lacks client 1"
grep -q "allowed ips: 10.77.0.2/32" <<<"$shown" || fail "wg show lacks client 1's allowed ips"
conf="$(wg_srv showconf "$IF")" || fail "wg showconf failed"
grep -qx "PrivateKey = $(cat "$K/srv.key")" <<<"$conf" || fail "wg showconf: private key differs"
grep -qx "ListenPort = 51820" <<<"$conf" || fail "wg showconf: no ListenPort"
dump="$(wg_srv show "$IF" dump)"
[ "$(wc -l <<<"$dump")" -eq 2 ] || fail "wg show dump: expected 2 lines, got: $dump"
[ "$(head -n1 <<<"$dump" | cut -f2)" = "$(vpnd_pub srv)" ] || fail "wg show dump: wrong public key"
[ "$(wg_srv show "$IF" public-key)" = "$(vpnd_pub srv)" ] || fail "wg show public-key differs"
c1_handshake="$(wg_handshake_of "$(vpnd_pub c1)")"
[ "$c1_handshake" -gt 0 ] || fail "client 1 shows no latest handshake in wg show dump"
wg_srv show all dump | grep_q "^$IF	" || fail "wg show all dump does not list $IF"

log "wg set adds client 2 while client 1's transfer runs"
transfer_check c1 srv 10.77.0.1 400M 120 5201 >"$VPND_ITEST_DIR/c1-transfer.out" 2>&1 &
XFER_PID=$!
wait_for "client 1's transfer under way" 10 sh -c "ip netns exec $(ns srv) ss -Htn 'sport = :5201' | grep -q ESTAB"
wg_srv set "$IF" peer "$(vpnd_pub c2)" allowed-ips 10.77.0.3/32 || fail "wg set (add client 2) failed"
kill -0 "$XFER_PID" 2>/dev/null || fail "client 1's transfer ended before wg set: it proves nothing"
vpnd_start c2 c2 vpnd0 --client --config "$VPND_ITEST_DIR/c2.conf"
wait_for "c2 -> server" 15 ping_ok c2 10.77.0.1 1
transfer_check c2 srv 10.77.0.1 5M 60 5202 || fail "client 2's transfer failed"
kill -0 "$XFER_PID" 2>/dev/null || log "(client 1's transfer ended while client 2 was brought up)"
ip -n "$(ns srv)" route show dev "$IF" | grep_q "10.77.0.0/24" || fail "interface route missing"
wait "$XFER_PID" || fail "client 1's transfer was interrupted: $(cat "$VPND_ITEST_DIR/c1-transfer.out")"
cat "$VPND_ITEST_DIR/c1-transfer.out"
[ "$(wg_handshake_of "$(vpnd_pub c1)")" = "$c1_handshake" ] || fail "client 1 made a new handshake"
[ "$(vpnd_json srv "[p for p in peers if p['public_key'] == '$(vpnd_pub c1)'][0]['handshakes']")" -eq 1 ] \
    || fail "client 1 has more than one session"

log "wg set ... remove cuts exactly client 2"
wg_srv set "$IF" peer "$(vpnd_pub c2)" remove || fail "wg set remove failed"
if ping_ok c2 10.77.0.1 3 2>/dev/null; then fail "client 2 still reaches the server after its removal"; fi
ping_ok c1 10.77.0.1 5 || fail "client 1 lost the server when client 2 was removed"
[ "$(vpnd_json srv 'len(peers)')" -eq 1 ] || fail "the server still lists client 2"

log "wg syncconf with an edited file brings client 2 back, client 1 untouched"
wg_srv showconf "$IF" >"$VPND_ITEST_DIR/sync.conf"
printf '\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.77.0.3/32\n' "$(vpnd_pub c2)" >>"$VPND_ITEST_DIR/sync.conf"
wg_srv syncconf "$IF" "$VPND_ITEST_DIR/sync.conf" || fail "wg syncconf failed"
wait_for "c2 -> server after syncconf" 30 ping_ok c2 10.77.0.1 1
[ "$(wg_handshake_of "$(vpnd_pub c1)")" = "$c1_handshake" ] || fail "syncconf made client 1 handshake again"
wg_srv syncconf "$IF" "$VPND_ITEST_DIR/sync.conf" || fail "a second, identical wg syncconf failed"
wg_srv setconf "$IF" "$VPND_ITEST_DIR/sync.conf" || fail "wg setconf of the running configuration failed"
[ "$(wg_handshake_of "$(vpnd_pub c1)")" = "$c1_handshake" ] || fail "setconf of the same configuration made client 1 handshake again"
ping_ok c1 10.77.0.1 5 && ping_ok c2 10.77.0.1 5

log "wg set listen-port rebinds; a port in use is refused and changes nothing; fwmark sets SO_MARK"
wg_srv set "$IF" listen-port 51821 || fail "wg set listen-port 51821 failed"
[ "$(wg_srv show "$IF" listen-port)" = 51821 ] || fail "listen port is $(wg_srv show "$IF" listen-port), expected 51821"
in_ns srv --timeout 5 ss -Hlun 'sport = :51821' | grep_q . || fail "nothing listens on :51821"
! in_ns srv --timeout 5 ss -Hlun 'sport = :51820' | grep_q . || fail ":51820 is still bound"
# The server's next packet comes from :51821 and client 1 follows it (roaming).
wait_for "server -> c1 from the new port" 30 ping_ok srv 10.77.0.2 1
ns_spawn srv udp-holder python3 -c 'import socket, time; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 51830)); time.sleep(120)'
wait_for "a UDP socket on :51830" 5 sh -c "ip netns exec $(ns srv) ss -Hlun 'sport = :51830' | grep -q ."
if wg_srv set "$IF" listen-port 51830 2>"$VPND_ITEST_DIR/inuse.err"; then fail "wg set listen-port to a port in use succeeded"; fi
log "wg says: $(cat "$VPND_ITEST_DIR/inuse.err")"
[ "$(wg_srv show "$IF" listen-port)" = 51821 ] || fail "a refused listen-port changed the port"
wg_srv set "$IF" listen-port 51820 || fail "wg set listen-port 51820 failed"
wait_for "server -> c1 from :51820 again" 30 ping_ok srv 10.77.0.2 1
wg_srv set "$IF" fwmark 0x1234 || fail "wg set fwmark failed"
[ "$(wg_srv show "$IF" fwmark)" = 0x1234 ] || fail "fwmark is $(wg_srv show "$IF" fwmark), expected 0x1234"
in_ns srv --timeout 5 ss -Hulne 'sport = :51820' | grep_q "fwmark:0x1234" \
    || fail "the socket carries no SO_MARK 0x1234: $(in_ns srv --timeout 5 ss -Hulne 'sport = :51820')"
wg_srv set "$IF" fwmark 0 || fail "wg set fwmark 0 failed"
[ "$(wg_srv show "$IF" fwmark)" = off ] || fail "fwmark 0 did not clear the mark"
! in_ns srv --timeout 5 ss -Hulne 'sport = :51820' | grep_q "fwmark:" || fail "the socket still carries a mark"
ping_ok c1 10.77.0.1 5 && ping_ok c2 10.77.0.1 5

log "vpnd show dump prints wg show dump's lines (secrets hidden)"
wg_dump="$(wg_srv show "$IF" dump)"
vpnd_dump="$(vpnd_show srv "$IF" dump)" || fail "vpnd show $IF dump failed"
echo "$vpnd_dump"
# Columns 2.. of the interface line (the private key is hidden) and every peer column but the
# pre-shared key, the counters and the handshake time (which move between the two reads).
strip() { awk -F'\t' 'NR == 1 { print $2 "\t" $3 "\t" $4; next } { print $1 "\t" $3 "\t" $4 "\t" $8 }'; }
[ "$(strip <<<"$vpnd_dump")" = "$(strip <<<"$wg_dump")" ] \
    || fail "vpnd show dump differs from wg show dump: [$vpnd_dump] vs [$wg_dump]"
[ "$(head -n1 <<<"$vpnd_dump" | cut -f1)" = "(hidden)" ] || fail "vpnd show dump printed the private key"
vpnd_show srv dump | grep_q "^$IF	$(vpnd_pub c1)	" || fail "vpnd show dump (all) lacks the interface column"
[ "$(vpnd_show srv dump | wc -l)" -eq 3 ] || fail "vpnd show dump: expected 3 lines"

log "malformed and hostile set=1 requests change nothing"
before="$(wg_srv showconf "$IF")"
expect_errno() {
    local want="$1" what="$2" got
    got="$(uapi_raw)"
    grep -q "^errno=$want$" <<<"$got" || fail "$what: expected errno=$want, got [$(head -c 200 <<<"$got")]"
}
printf 'set=1\nbogus_key=1\n\n' | expect_errno -22 "an unknown key"
C1HEX="$(hexkey "$(vpnd_pub c1)")"
printf 'set=1\npublic_key=%s\nallowed_ip=10.99.0.0/16\npreshared_key=zz\n\n' "$C1HEX" | expect_errno -22 "bad hex"
printf 'set=1\npublic_key=%s\nallowed_ip=10.99.0.0/16\npersistent_keepalive_interval=70000\n\n' "$C1HEX" \
    | expect_errno -22 "a keepalive out of range after a valid line"
printf 'set=1\nallowed_ip=10.99.0.0/16\n\n' | expect_errno -22 "an allowed_ip before public_key"
printf 'set=1\npublic_key=%s\nallowed_ip=10.98.0.0/16\n' "$C1HEX" | uapi_raw >/dev/null  # truncated: no blank line
printf 'get=2\n\n' | expect_errno -22 "an unknown operation"
python3 -c 'import sys; sys.stdout.write("set=1\n" + "public_key=%s\nallowed_ip=10.97.0.0/16\n" % sys.argv[1] * 300000 + "\n")' \
    "$C1HEX" | expect_errno -22 "10 MB of lines"
python3 -c 'import sys; sys.stdout.write("set=1\nlisten_port=" + "9" * 100000 + "\n\n")' | expect_errno -22 "a 100 kB line"
[ "$(wg_srv showconf "$IF")" = "$before" ] || fail "a refused request changed the configuration"
vpnd_alive "$SRV_PID" "vpnd server"
ping_ok c1 10.77.0.1 5 && ping_ok c2 10.77.0.1 5
[ "$(wg_handshake_of "$(vpnd_pub c1)")" = "$c1_handshake" ] || fail "client 1 handshook again"
log "wg-uapi passed"
