#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A client in one command: `vpnd peer add` on a running server while client 1 (bob, in the file
# from the start) moves a checksummed transfer:
#   - alice: the printed config (vpnd's form, with a PSK) brings up a real vpnd client that reaches
#     the server; the server's file gains exactly the new block (every old byte kept, mode kept);
#   - carol: `--format wg-quick --qr` draws a QR code that zbarimg decodes (from a PNG rendering)
#     back to a config that also works, and whose key is the one kept by --keep-key (0600);
#   - `vpnd peer list` names both with a handshake; `vpnd peer remove alice` cuts alice only;
#   - refusals change nothing: a taken name, a bad --endpoint, and a file the daemon refuses to
#     reload (an MSSClamp edit) leave the file byte for byte as it was, with exit status 1 and one line;
#   - bob's transfer completes with his single handshake.
#
#   c1 (bob):   198.18.1.1 --veth-- srv 198.18.1.254      srv: vpnd --server IF, 10.77.0.1/24, fd77::1/64, :51820
#   c2 (alice): 198.18.2.1 --veth-- srv 198.18.2.254
#   c3 (carol): 198.18.3.1 --veth-- srv 198.18.3.254
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"
command -v zbarimg >/dev/null || fail "zbarimg not found; install zbar-tools (scripts/lib/packages.sh does)"

IF="$(unique_ifname p)"
track_socket "/var/run/wireguard/$IF.sock"
CONF="$VPND_ITEST_DIR/srv.conf"
peer() { VPND_RUN_DIR="$(vpnd_run_dir srv)" timeout 20 ip netns exec "$(ns srv)" "$VPND" peer "$@"; }
handshakes_of() { vpnd_json srv "[p for p in peers if p['public_key'] == '$1'][0]['handshakes']"; }

ns_create srv
for c in 1 2 3; do
    ns_create "c$c"
    ns_link "c$c" eth0 "198.18.$c.1/24" srv "eth-$c" "198.18.$c.254/24"
done
vpnd_keypair srv
vpnd_keypair c1
K="$VPND_ITEST_DIR/keys"
(
    umask 077
    cat >"$CONF" <<EOF
# The office server (this comment, the odd spacing and the trailing spaces must survive)
[Interface]
Name = $IF
PrivateKeyFile = $K/srv.key
Address   = 10.77.0.1/24
Address = fd77::1/64  
ListenPort = 51820

[Peer]
# bob
PublicKey = $(vpnd_pub c1)
AllowedIPs = 10.77.0.2/32
EOF
)
cat >"$VPND_ITEST_DIR/c1.conf" <<EOF
[Interface]
Name = vpnd0
PrivateKeyFile = $K/c1.key
Address = 10.77.0.2/24

[Peer]
PublicKey = $(vpnd_pub srv)
AllowedIPs = 10.77.0.0/24
Endpoint = 198.18.1.254:51820
EOF

vpnd_start srv srv "$IF" --server --config "$CONF"
SRV_PID=$VPND_PID
vpnd_start c1 c1 vpnd0 --client --config "$VPND_ITEST_DIR/c1.conf"
wait_for "bob -> server" 15 ping_ok c1 10.77.0.1 1
BOB="$(vpnd_pub c1)"

log "bob's transfer runs while peers come and go"
transfer_check c1 srv 10.77.0.1 300M 150 5201 >"$VPND_ITEST_DIR/c1-transfer.out" 2>&1 &
XFER_PID=$!
wait_for "bob's transfer under way" 10 sh -c "ip netns exec $(ns srv) ss -Htn 'sport = :5201' | grep -q ESTAB"

log "vpnd peer add alice (vpnd's form, with a PSK; the config file is the running daemon's)"
cp "$CONF" "$VPND_ITEST_DIR/srv.conf.before"
(umask 077; peer add alice --endpoint 198.18.2.254:51820 --psk >"$VPND_ITEST_DIR/alice.conf" 2>"$VPND_ITEST_DIR/alice.err") \
    || fail "vpnd peer add alice failed: $(cat "$VPND_ITEST_DIR/alice.err")"
log "peer add: $(cat "$VPND_ITEST_DIR/alice.err")"
grep -q "added to $CONF; $IF: 1 peer(s) added" "$VPND_ITEST_DIR/alice.err" || fail "peer add did not say it applied"
cmp -s "$VPND_ITEST_DIR/srv.conf.before" <(head -c "$(stat -c %s "$VPND_ITEST_DIR/srv.conf.before")" "$CONF") \
    || fail "peer add changed the server's existing lines"
[ "$(stat -c %a "$CONF")" = 600 ] || fail "peer add changed the file's mode to $(stat -c %a "$CONF")"
tail -n +"$(($(wc -l <"$VPND_ITEST_DIR/srv.conf.before") + 1))" "$CONF" | grep_q "^# alice$" || fail "no '# alice' block appended: $(cat "$CONF")"
grep -q "^Address = 10.77.0.3/24, fd77::2/64$" "$VPND_ITEST_DIR/alice.conf" || fail "alice got the wrong addresses: $(cat "$VPND_ITEST_DIR/alice.conf")"
grep -q "^PresharedKey = " "$VPND_ITEST_DIR/alice.conf" || fail "alice's config has no PSK"
sed -i 's/^\[Interface\]$/[Interface]\nName = vpnd0/' "$VPND_ITEST_DIR/alice.conf"
vpnd_start c2 alice vpnd0 --client --config "$VPND_ITEST_DIR/alice.conf"
wait_for "alice -> server" 15 ping_ok c2 10.77.0.1 1
in_ns c2 --timeout 5 ping -6 -c 1 -W 2 fd77::1 >/dev/null || fail "alice has no IPv6 through the tunnel"
ALICE="$(vpnd_json alice 'doc["public_key"]')"
vpnd_json_ok srv "len(peers) == 2 and [p for p in peers if p['public_key'] == '$ALICE'][0]['has_session']" \
    || fail "the server has no session with alice"

log "vpnd peer add carol --format wg-quick --qr --keep-key: the QR code decodes to a working config"
peer add carol --config "$CONF" --endpoint 198.18.3.254:51820 --format wg-quick --qr --keep-key "$VPND_ITEST_DIR/kept" \
    >"$VPND_ITEST_DIR/carol.qr" 2>"$VPND_ITEST_DIR/carol.err" || fail "vpnd peer add carol failed: $(cat "$VPND_ITEST_DIR/carol.err")"
python3 "$VPND_REPO/scripts/lib/qr_png.py" "$VPND_ITEST_DIR/carol.qr" "$VPND_ITEST_DIR/carol.png"
(umask 077; zbarimg -q --raw "$VPND_ITEST_DIR/carol.png" 2>/dev/null >"$VPND_ITEST_DIR/carol.conf") || fail "zbarimg could not decode the QR code"
grep -q "^PrivateKey = $(cat "$VPND_ITEST_DIR/kept/carol.key")$" "$VPND_ITEST_DIR/carol.conf" \
    || fail "the QR code's private key is not the kept one: $(cat "$VPND_ITEST_DIR/carol.conf")"
[ "$(stat -c %a "$VPND_ITEST_DIR/kept/carol.key")" = 600 ] || fail "the kept key is not mode 0600"
grep -q "^AllowedIPs = 10.77.0.4/32, fd77::3/128$" "$CONF" || fail "carol's server block is wrong: $(cat "$CONF")"
vpnd_start c3 carol vpnd0 --client --config "$VPND_ITEST_DIR/carol.conf"
wait_for "carol -> server" 15 ping_ok c3 10.77.0.1 1

log "vpnd peer list"
peer list >"$VPND_ITEST_DIR/list.out" || fail "vpnd peer list failed"
cat "$VPND_ITEST_DIR/list.out"
for who in bob alice carol; do
    grep -E "^$who +[A-Za-z0-9+/=]{44} .* ago " "$VPND_ITEST_DIR/list.out" >/dev/null || fail "peer list shows no handshake for $who"
done

log "refusals change nothing"
cp "$CONF" "$VPND_ITEST_DIR/srv.conf.good"
refused() {  # refused WHAT PHRASE ARGS...: peer ARGS fails with one line containing PHRASE, file unchanged
    local what="$1" phrase="$2" out
    shift 2
    if out="$(peer "$@" 2>&1 >/dev/null)"; then fail "$what was accepted"; fi
    [ "$(wc -l <<<"$out")" -eq 1 ] || fail "$what: expected one line, got: $out"
    grep -qF -- "$phrase" <<<"$out" || fail "$what: the line does not say '$phrase': $out"
    cmp -s "$CONF" "$VPND_ITEST_DIR/srv.conf.good" || fail "$what changed the file"
    log "$what: $out"
}
refused "a taken name" "already has a peer named alice" add alice --endpoint 198.18.2.254:51820
refused "a bad endpoint" "is not HOST:PORT" add dave --endpoint nowhere
refused "an unknown peer" "has no peer named zed" remove zed
sed -i 's/^ListenPort = 51820$/ListenPort = 51820\nMSSClamp = off/' "$CONF"
cp "$CONF" "$VPND_ITEST_DIR/srv.conf.good"
refused "a file the daemon cannot reload" "back as it was" add dave --endpoint 198.18.2.254:51820
sed -i '/^MSSClamp = off$/d' "$CONF"

log "vpnd peer remove alice: alice is cut, bob and carol are not"
peer remove alice || fail "vpnd peer remove alice failed"
! grep -q "^# alice$" "$CONF" || fail "alice's block is still in the file"
wait_for "alice gone from the server" 10 vpnd_json_ok srv 'len(peers) == 2' || fail "remove did not reach the daemon"
if ping_ok c2 10.77.0.1 2 2>/dev/null; then fail "alice still reaches the server"; fi
ping_ok c3 10.77.0.1 3 || fail "carol lost the server"

wait "$XFER_PID" || fail "bob's transfer was interrupted: $(cat "$VPND_ITEST_DIR/c1-transfer.out")"
cat "$VPND_ITEST_DIR/c1-transfer.out"
[ "$(handshakes_of "$BOB")" -eq 1 ] || fail "bob made $(handshakes_of "$BOB") handshakes, expected 1"
vpnd_alive "$SRV_PID" "vpnd server"
log "peer-add: all checks passed"
