#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A table of broken configurations and command lines. For each row, vpnd must exit 1 within a few
# seconds, print nothing on stdout and exactly one line on stderr that matches the row's pattern (the
# file name and line where one line is at fault, what is wrong and a hint), and leave the namespace's
# links and its run directory as they were (no interface, no control socket).
#
#   x: one namespace (lo, eth0 198.18.0.1/24 to y); every row runs there, one after the other.
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"

ns_pair x y
CASES="$VPND_ITEST_DIR/cases"
mkdir -p "$CASES"
vpnd_keypair me
vpnd_keypair peer
vpnd_keypair peer2
cp "$(vpnd_key_file me)" "$CASES/me.key"
chmod 600 "$CASES/me.key"
cp "$(vpnd_key_file me)" "$CASES/open.key"
chmod 644 "$CASES/open.key"
ME_PRIV="$(cat "$CASES/me.key")"
PEER="$(vpnd_pub peer)"
PEER2="$(vpnd_pub peer2)"

# conf NAME: writes $CASES/NAME.conf from stdin.
conf() { cat >"$CASES/$1.conf"; }

links() { ip -n "$(ns x)" -o link show | awk -F': ' '{print $2}' | sort | tr '\n' ' '; }
LINKS0="$(links)"
ROWS=0

# row NAME ROLE PATTERN [vpnd args...]: runs `vpnd --ROLE --config NAME.conf ARGS` in $CASES (so the
# message names the file as NAME.conf) and checks the outcome; PATTERN is an extended regex for the
# single stderr line, matched after the logger's "... error vpnd: [VPNCommands] " prefix.
row() {
    local name="$1" role="$2" pattern="$3"
    shift 3
    local run="$VPND_ITEST_DIR/run-$name" out="$VPND_ITEST_DIR/$name.out" err="$VPND_ITEST_DIR/$name.err"
    local rc start ms line
    mkdir -p "$run"
    start="$(date +%s%N)"
    set +e
    (cd "$CASES" && in_ns x --timeout 20 env VPND_RUN_DIR="$run" "$VPND" "--$role" --config "$name.conf" "$@" \
        >"$out" 2>"$err")
    rc=$?
    set -e
    ms=$((($(date +%s%N) - start) / 1000000))
    [ "$rc" -eq 1 ] || fail "$name: exit status $rc, expected 1; stderr: $(cat "$err")"
    [ "$ms" -lt 5000 ] || fail "$name: took $ms ms to fail, expected under 5 s"
    [ ! -s "$out" ] || fail "$name: printed on stdout: $(cat "$out")"
    [ "$(grep -c '' "$err")" -eq 1 ] || fail "$name: expected exactly one stderr line, got: $(cat "$err")"
    line="$(sed 's/^.* error vpnd: \[VPNCommands\] //' "$err")"
    [[ "$line" =~ $pattern ]] || fail "$name: stderr line '$line' does not match /$pattern/"
    [ "$(links)" = "$LINKS0" ] || fail "$name: links changed: [$LINKS0] -> [$(links)]"
    [ -z "$(ls -A "$run")" ] || fail "$name: left files in its run directory: $(ls -A "$run")"
    ROWS=$((ROWS + 1))
    printf '  %-22s %4d ms  %s\n' "$name" "$ms" "$line"
}

log "broken config files"

conf unknown-key <<EOF
[Interface]
PrivateKeyFile = me.key
Adress = 10.90.0.1/24
ListenPort = 51820
[Peer]
PublicKey = $PEER
EOF
row unknown-key server '^unknown-key\.conf:3: unknown key "Adress" in \[Interface\] \(did you mean "Address"\?\)$'

conf bad-base64 <<EOF
[Interface]
PrivateKeyFile = me.key
ListenPort = 51820
[Peer]
PublicKey = this is not base64 at all!!!!!!!!!!!!!!!!!=
EOF
row bad-base64 server '^bad-base64\.conf:5: PublicKey .*base64.*(wg genkey|wg pubkey|vpnd-keygen)'

conf key-length <<EOF
[Interface]
PrivateKeyFile = me.key
ListenPort = 51820
[Peer]
PublicKey = AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
EOF
row key-length server '^key-length\.conf:5: PublicKey .*(32 bytes|44 characters)'

conf port-70000 <<EOF
[Interface]
PrivateKeyFile = me.key
ListenPort = 70000
[Peer]
PublicKey = $PEER
EOF
row port-70000 server '^port-70000\.conf:3: ListenPort "70000" is not a port number \(1-65535\)$'

conf mtu-100 <<EOF
[Interface]
PrivateKeyFile = me.key
ListenPort = 51820
MTU = 100
[Peer]
PublicKey = $PEER
EOF
row mtu-100 server '^mtu-100\.conf:4: MTU "100" .*576.*65535'

conf mtu-tcp <<EOF
[Interface]
PrivateKeyFile = me.key
ListenPort = 51820
Transport = tcp
MTU = 65490
[Peer]
PublicKey = $PEER
EOF
row mtu-tcp server '^mtu-tcp\.conf:5: MTU 65490 is too large for Transport = tcp \(at most 65489: .*\); lower MTU or use Transport = udp$'

conf mode-foo <<EOF
[Interface]
PrivateKeyFile = me.key
ListenPort = 51820
Mode = foo
[Peer]
PublicKey = $PEER
EOF
row mode-foo server '^mode-foo\.conf:4: Mode "foo" .*tun.*tap'

conf two-interfaces <<EOF
[Interface]
PrivateKeyFile = me.key
ListenPort = 51820
[Interface]
ListenPort = 51821
[Peer]
PublicKey = $PEER
EOF
row two-interfaces server '^two-interfaces\.conf:4: .*\[Interface\].*'

conf key-before-section <<EOF
# a comment is fine
ListenPort = 51820
[Interface]
PrivateKeyFile = me.key
[Peer]
PublicKey = $PEER
EOF
row key-before-section server '^key-before-section\.conf:2: .*ListenPort.*(section|\[Interface\])'

conf bridge-in-tun <<EOF
[Interface]
PrivateKeyFile = me.key
ListenPort = 51820
Bridge = br0
[Peer]
PublicKey = $PEER
EOF
row bridge-in-tun server '^bridge-in-tun\.conf(:4)?: .*Bridge.*Mode = tap'

conf tap-two-peers <<EOF
[Interface]
PrivateKeyFile = me.key
ListenPort = 51820
Mode = tap
[Peer]
PublicKey = $PEER
[Peer]
PublicKey = $PEER2
EOF
row tap-two-peers server '^tap-two-peers\.conf(:[0-9]+)?: .*tap.*(one|1) .*[Pp]eer'

conf missing-publickey <<EOF
[Interface]
PrivateKeyFile = me.key
ListenPort = 51820
[Peer]
AllowedIPs = 10.90.0.2/32
EOF
row missing-publickey server '^missing-publickey\.conf:4: \[Peer\] has no PublicKey'

conf bad-allowedips <<EOF
[Interface]
PrivateKeyFile = me.key
ListenPort = 51820
[Peer]
PublicKey = $PEER
AllowedIPs = 10.90.0.0/33
EOF
row bad-allowedips server '^bad-allowedips\.conf:6: AllowedIPs .*10\.90\.0\.0/33.*32'

conf bad-endpoint <<EOF
[Interface]
PrivateKeyFile = me.key
[Peer]
PublicKey = $PEER
AllowedIPs = 10.90.0.0/24
Endpoint = 198.18.0.2
EOF
row bad-endpoint client '^bad-endpoint\.conf:6: Endpoint "198\.18\.0\.2" .*port'

conf missing-key-file <<EOF
[Interface]
PrivateKeyFile = nothere.key
ListenPort = 51820
[Peer]
PublicKey = $PEER
EOF
row missing-key-file server 'nothere\.key.*(does not exist|no such file|No such file)'

conf key-file-0644 <<EOF
[Interface]
PrivateKeyFile = open.key
ListenPort = 51820
[Peer]
PublicKey = $PEER
EOF
row key-file-0644 server 'open\.key .*group or others.*chmod 600 .*open\.key$'

row missing-config server '^config file missing-config\.conf does not exist$'

conf wg-quick-saveconfig <<EOF
[Interface]
PrivateKeyFile = me.key
ListenPort = 51820
SaveConfig = true
[Peer]
PublicKey = $PEER
EOF
row wg-quick-saveconfig server '^wg-quick-saveconfig\.conf:4: SaveConfig = true is not supported: .*remove the line'

conf both-private-keys <<EOF
[Interface]
PrivateKey = $ME_PRIV
PrivateKeyFile = me.key
ListenPort = 51820
[Peer]
PublicKey = $PEER
EOF
row both-private-keys server '^both-private-keys\.conf:3: PrivateKeyFile and PrivateKey \(line 2\) are both set; keep one$'
grep -qF "$ME_PRIV" "$VPND_ITEST_DIR/both-private-keys.err" && fail "both-private-keys: the message repeats the private key"

conf no-peer <<EOF
[Interface]
PrivateKeyFile = me.key
ListenPort = 51820
EOF
row no-peer server '^no-peer\.conf: .*\[Peer\]'

conf same-allowedips <<EOF
[Interface]
PrivateKeyFile = me.key
ListenPort = 51820
[Peer]
PublicKey = $PEER
AllowedIPs = 10.90.0.2/32
[Peer]
PublicKey = $PEER2
AllowedIPs = 10.90.0.2/32
EOF
row same-allowedips server '^same-allowedips\.conf:9: .*10\.90\.0\.2/32'

conf server-no-port <<EOF
[Interface]
PrivateKeyFile = me.key
[Peer]
PublicKey = $PEER
EOF
row server-no-port server '^server-no-port\.conf: .*ListenPort.*--listen-port'

conf client-no-endpoint <<EOF
[Interface]
PrivateKeyFile = me.key
[Peer]
PublicKey = $PEER
AllowedIPs = 10.90.0.0/24
EOF
row client-no-endpoint client '^client-no-endpoint\.conf: .*Endpoint'

log "broken command lines (the file itself is valid)"
conf good-server <<EOF
[Interface]
PrivateKeyFile = me.key
Address = 10.90.0.1/24
ListenPort = 51820
[Peer]
PublicKey = $PEER
AllowedIPs = 10.90.0.2/32
EOF
cp "$CASES/good-server.conf" "$CASES/listen-port-abc.conf"
row listen-port-abc server '^--listen-port: "abc" is not a port number \(1-65535\)$' --listen-port abc
cp "$CASES/good-server.conf" "$CASES/mtu-flag.conf"
row mtu-flag server '^--mtu: "9" .*576.*65535' --mtu 9
cp "$CASES/good-server.conf" "$CASES/mtu-tcp-flag.conf"
row mtu-tcp-flag server '^--mtu: 65535 is too large for Transport = tcp \(at most 65489: .*\); lower it or use Transport = udp$' \
    --transport tcp --mtu 65535
cp "$CASES/good-server.conf" "$CASES/mode-flag.conf"
row mode-flag server '^--mode: "ethernet" .*tun.*tap' --mode ethernet

log "host steps that cannot be done (or undone)"
conf masquerade-tunnel <<EOF
[Interface]
PrivateKeyFile = me.key
ListenPort = 51820
Forward = on
Masquerade = vpnd0
[Peer]
PublicKey = $PEER
EOF
row masquerade-tunnel server '^Masquerade = vpnd0 is the tunnel itself; name the interface toward the network behind this host'
conf kill-switch-no-net-admin <<EOF
[Interface]
PrivateKeyFile = me.key
ListenPort = 51820
KillSwitch = on
User = nobody
KeepNetAdmin = no
[Peer]
PublicKey = $PEER
EOF
row kill-switch-no-net-admin server '^KillSwitch = on with User and KeepNetAdmin = no: vpnd could not undo it .*set KeepNetAdmin = yes$'

log "port in use"
cp "$CASES/good-server.conf" "$CASES/port-in-use.conf"
ns_spawn x udp-holder python3 -c '
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 51820))
print("bound", flush=True)
time.sleep(120)'
wait_for "a UDP socket on port 51820 in x" 10 grep -q '^bound' "$VPND_ITEST_DIR/udp-holder.log"
row port-in-use server '51820.*(in use|EADDRINUSE)'
kill "$SPAWNED_PID"

log "bad-config passed: $ROWS rows"
