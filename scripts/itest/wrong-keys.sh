#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Misconfigured pairs get no tunnel, both daemons stay up, and the logs say what to check:
#   (a) the client has a wrong public key for the server,
#   (b) the two ends have different pre-shared keys,
#   (c) a tun end against a tap end.
# Each case: ping fails, both processes are alive after ~8 s, and the expected hint is in a log.
#
#   a: vpnd --server -v, 10.9.0.1/24, listens on 198.18.0.1:51820
#   b: vpnd --client -v, 10.9.0.2/24, endpoint 198.18.0.1:51820
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"

ns_pair a b
vpnd_keypair server
vpnd_keypair client
vpnd_keypair stranger
vpnd_psk psk1
vpnd_psk psk2

# Runs one misconfigured pair and checks it:
#   misconfigured CASE WHO HINT [WHO HINT...]
# The configs server-CASE.conf and client-CASE.conf must exist; each WHO (server or client) log must
# contain its HINT (a fixed string) within 10 s. Ping must fail, neither end may report a session,
# and both daemons must still run after at least 8 s.
misconfigured() {
    local name="$1"
    shift
    vpnd_start a "server-$name" vpn0 --server -v --config "$(vpnd_conf_file "server-$name")"
    local spid=$VPND_PID
    vpnd_start b "client-$name" vpn0 --client -v --config "$(vpnd_conf_file "client-$name")"
    local cpid=$VPND_PID
    local started=$SECONDS
    if ping_ok b 10.9.0.1 3 2>/dev/null; then fail "case $name: ping b -> a works with a broken configuration"; fi
    while [ $# -gt 0 ]; do
        local who="$1" hint="$2" logfile
        logfile="$(vpnd_log_file "$who-$name")"
        shift 2
        local left=$((10 - (SECONDS - started)))
        [ "$left" -ge 1 ] || left=1
        wait_for "case $name: the $who's log to say \"$hint\"" "$left" grep -qF -- "$hint" "$logfile" \
            || fail "case $name: no hint in the $who's log within 10 s; it has: $(tail -n 5 "$logfile")"
        log "case $name, $who: $(grep -F -- "$hint" "$logfile" | head -n 1 | sed 's/^[^ ]* //')"
    done
    local rest=$((8 - (SECONDS - started)))
    [ "$rest" -le 0 ] || sleep "$rest"
    vpnd_alive "$spid" "case $name: vpnd server"
    vpnd_alive "$cpid" "case $name: vpnd client"
    local who
    for who in server client; do
        vpnd_show "$who-$name" vpn0 --json >"$VPND_ITEST_DIR/show-$who-$name.json"
        python3 -c '
import json, sys
peer = json.load(open(sys.argv[1]))["peers"][0]
sys.exit(1 if peer["has_session"] or peer["latest_handshake_seconds_ago"] is not None else 0)' \
            "$VPND_ITEST_DIR/show-$who-$name.json" || fail "case $name: the $who reports a session"
    done
    kill -TERM "$spid" "$cpid"
    wait "$spid" || fail "case $name: vpnd server did not exit cleanly on SIGTERM"
    wait "$cpid" || fail "case $name: vpnd client did not exit cleanly on SIGTERM"
}

log "case a: the client has a wrong public key for the server"
vpnd_config server-a --key server --peer client --address 10.9.0.1/24 --port 51820 --allowed 10.9.0.2/32 --ifname vpn0
vpnd_config client-a --key client --peer stranger --address 10.9.0.2/24 --allowed 10.9.0.0/24 \
    --endpoint "$UNDERLAY_A:51820" --ifname vpn0
misconfigured a client "no valid handshake response after 5 s, still trying: check the peer's Endpoint and PublicKey"
# The server drops the initiations on mac1 (computed with the public key the client believes in).
python3 -c 'import json, sys; sys.exit(0 if json.load(open(sys.argv[1]))["drops"].get("invalid-mac1", 0) > 0 else 1)' \
    "$VPND_ITEST_DIR/show-server-a.json" || fail "case a: the server counted no invalidMAC1 drop: $(cat "$VPND_ITEST_DIR/show-server-a.json")"

log "case b: different pre-shared keys"
vpnd_config server-b --key server --peer client --address 10.9.0.1/24 --port 51820 --allowed 10.9.0.2/32 \
    --ifname vpn0 --psk psk1
vpnd_config client-b --key client --peer server --address 10.9.0.2/24 --allowed 10.9.0.0/24 \
    --endpoint "$UNDERLAY_A:51820" --ifname vpn0 --psk psk2
misconfigured b client "did not authenticate: check both ends' keys, PresharedKey and Mode" \
    server "answered handshake initiation"

log "case c: a tap server and a tun client"
vpnd_config server-c --key server --peer client --address 10.9.0.1/24 --port 51820 --ifname vpn0 --mode tap
vpnd_config client-c --key client --peer server --address 10.9.0.2/24 --allowed 10.9.0.0/24 \
    --endpoint "$UNDERLAY_A:51820" --ifname vpn0
misconfigured c server "did not decrypt: wrong key, or a peer in the other Mode (tun/tap)" \
    client "no valid handshake response after 5 s"

log "wrong-keys passed"
