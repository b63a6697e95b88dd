#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Misconfigured pairs get no tunnel, both daemons stay up, and the logs and `vpnd doctor` say what to
# check:
#   (a) the client has a wrong public key for the server,
#   (b) the two ends have different pre-shared keys,
#   (c) a tun end against a tap end,
#   (d) the server has no [Peer] for the client's public key.
# Each case: ping fails, both processes are alive after ~8 s, the expected hint is in a log, neither end
# reports a session in `vpnd show --json`, the drop that stopped the handshake is counted there, and
# `vpnd doctor` on each end exits 1 with the sentence for that cause.
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
#   misconfigured CASE [--hint WHO HINT]... [--json WHO EXPR]... [--doctor WHO PHRASE]...
# The configs server-CASE.conf and client-CASE.conf must exist. Each --hint: WHO's (server or client)
# log must contain HINT (a fixed string, the sentence a user reads) within 10 s. Ping must fail, both
# daemons must still run after at least 8 s, neither end may report a session or a handshake in
# `vpnd show --json`, and each --json EXPR (see vpnd_json) must be true for WHO. `vpnd doctor` must
# exit 1 on both ends, and WHO's must print each of its PHRASEs (fixed strings).
misconfigured() {
    local name="$1"
    shift
    vpnd_start a "server-$name" vpn0 --server -v --config "$(vpnd_conf_file "server-$name")"
    local spid=$VPND_PID
    vpnd_start b "client-$name" vpn0 --client -v --config "$(vpnd_conf_file "client-$name")"
    local cpid=$VPND_PID
    local started=$SECONDS
    if ping_ok b 10.9.0.1 3 2>/dev/null; then fail "case $name: ping b -> a works with a broken configuration"; fi
    local checks=() server_says=() client_says=()
    while [ $# -gt 0 ]; do
        local kind="$1" who="$2" what="$3" logfile
        shift 3
        if [ "$kind" = --json ]; then checks+=("$who" "$what"); continue; fi
        if [ "$kind" = --doctor ]; then
            if [ "$who" = server ]; then server_says+=("$what"); else client_says+=("$what"); fi
            continue
        fi
        [ "$kind" = --hint ] || fail "misconfigured: unknown option $kind"
        logfile="$(vpnd_log_file "$who-$name")"
        local left=$((10 - (SECONDS - started)))
        [ "$left" -ge 1 ] || left=1
        wait_for "case $name: the $who's log to say \"$what\"" "$left" grep -qF -- "$what" "$logfile" \
            || fail "case $name: no hint in the $who's log within 10 s; it has: $(tail -n 5 "$logfile")"
        log "case $name, $who: $(grep -F -- "$what" "$logfile" | head -n 1 | sed 's/^[^ ]* //')"
    done
    local rest=$((8 - (SECONDS - started)))
    [ "$rest" -le 0 ] || sleep "$rest"
    vpnd_alive "$spid" "case $name: vpnd server"
    vpnd_alive "$cpid" "case $name: vpnd client"
    local who
    for who in server client; do
        vpnd_json_ok "$who-$name" 'not peer["has_session"] and peer["latest_handshake_seconds_ago"] is None' \
            || fail "case $name: the $who reports a session: $(vpnd_json "$who-$name" peer)"
    done
    set -- "${checks[@]}"
    while [ $# -gt 0 ]; do
        vpnd_json_ok "$1-$name" "$2" || fail "case $name: the $1's show --json is not $2: drops $(vpnd_drops_summary "$1-$name")"
        log "case $name, $1: show --json: $2 (drops $(vpnd_drops_summary "$1-$name"))"
        shift 2
    done
    log "case $name, server: vpnd doctor"
    vpnd_doctor_expect "server-$name" 1 "${server_says[@]}"
    log "case $name, client: vpnd doctor"
    vpnd_doctor_expect "client-$name" 1 "${client_says[@]}"
    kill -TERM "$spid" "$cpid"
    wait "$spid" || fail "case $name: vpnd server did not exit cleanly on SIGTERM"
    wait "$cpid" || fail "case $name: vpnd client did not exit cleanly on SIGTERM"
}

log "case a: the client has a wrong public key for the server"
vpnd_config server-a --key server --peer client --address 10.9.0.1/24 --port 51820 --allowed 10.9.0.2/32 --ifname vpn0
vpnd_config client-a --key client --peer stranger --address 10.9.0.2/24 --allowed 10.9.0.0/24 \
    --endpoint "$UNDERLAY_A:51820" --ifname vpn0
# The server drops the initiations on mac1 (computed with the public key the client believes in).
misconfigured a \
    --hint client "no valid handshake response after 5 s, still trying: check the peer's Endpoint and PublicKey" \
    --json server 'drops["invalid-mac1"] > 0' \
    --json client 'peer["handshake_initiations_unanswered"] >= 1 and peer["handshake_responses_received"] == 0' \
    --doctor server "failed mac1 here: the sender has the wrong public key for this end" \
    --doctor server "its [Peer] PublicKey for this end must be $(vpnd_pub server)" \
    --doctor client "went unanswered (and none ever was): either the Endpoint $UNDERLAY_A:51820 is wrong, or a firewall drops UDP to port 51820, or the server does not know us" \
    --doctor client "no [Peer] for our public key $(vpnd_pub client)"

log "case b: different pre-shared keys"
vpnd_config server-b --key server --peer client --address 10.9.0.1/24 --port 51820 --allowed 10.9.0.2/32 \
    --ifname vpn0 --psk psk1
vpnd_config client-b --key client --peer server --address 10.9.0.2/24 --allowed 10.9.0.0/24 \
    --endpoint "$UNDERLAY_A:51820" --ifname vpn0 --psk psk2
# The server answers (the PSK is mixed in after the initiation is accepted); its responses fail at the client.
misconfigured b \
    --hint client "did not authenticate: check both ends' keys, PresharedKey, Mode (tun/tap) and Cipher" \
    --json client 'drops["handshake-failed"] > 0' \
    --json server 'peer["handshake_initiations_answered"] > 0 and peer["handshakes"] == 0' \
    --doctor server "and it confirmed none: the two ends have different pre-shared keys" \
    --doctor client "did not authenticate: the two ends have different pre-shared keys"

log "case c: a tap server and a tun client"
vpnd_config server-c --key server --peer client --address 10.9.0.1/24 --port 51820 --ifname vpn0 --mode tap
vpnd_config client-c --key client --peer server --address 10.9.0.2/24 --allowed 10.9.0.0/24 \
    --endpoint "$UNDERLAY_A:51820" --ifname vpn0
misconfigured c \
    --hint server "did not decrypt: wrong key, or a peer in the other Mode (tun/tap)" \
    --hint client "no valid handshake response after 5 s" \
    --json server 'drops["handshake-failed"] > 0' \
    --doctor server "did not decrypt: wrong key, or a peer in the other Mode (tun/tap) or with another Cipher; this end runs Mode = tap" \
    --doctor client "or a firewall drops UDP to port 51820"

log "case d: the server has no [Peer] for the client (it has another client)"
vpnd_config server-d --key server --peer stranger --address 10.9.0.1/24 --port 51820 --allowed 10.9.0.2/32 --ifname vpn0
vpnd_config client-d --key client --peer server --address 10.9.0.2/24 --allowed 10.9.0.0/24 \
    --endpoint "$UNDERLAY_A:51820" --ifname vpn0
# The server decrypts the client's static key, finds no [Peer] for it, and keeps it for doctor.
misconfigured d \
    --hint server "by a public key that is not a [Peer] here: $(vpnd_pub client)" \
    --json server 'drops["unknown-peer"] > 0' \
    --json server "[u[\"public_key\"] for u in doc[\"unknown_initiators\"]] == [\"$(vpnd_pub client)\"]" \
    --doctor server "came from public key $(vpnd_pub client) (latest from $UNDERLAY_B:" \
    --doctor server "add a [Peer] with PublicKey = $(vpnd_pub client)" \
    --doctor client "or a firewall drops UDP to port 51820"

log "case e: an AES-256-GCM server and a ChaCha20-Poly1305 client"
vpnd_config server-e --key server --peer client --address 10.9.0.1/24 --port 51820 --allowed 10.9.0.2/32 --ifname vpn0 \
    --cipher aes256gcm
vpnd_config client-e --key client --peer server --address 10.9.0.2/24 --allowed 10.9.0.0/24 \
    --endpoint "$UNDERLAY_A:51820" --ifname vpn0 --cipher chacha20poly1305
misconfigured e \
    --hint server "did not decrypt: wrong key, or a peer in the other Mode (tun/tap) or with another Cipher" \
    --hint client "no valid handshake response after 5 s" \
    --json server 'drops["handshake-failed"] > 0 and doc["cipher"] == "aes256gcm"' \
    --json client 'doc["cipher"] == "chacha20poly1305"' \
    --doctor server "this end runs Mode = tun and Cipher = aes256gcm, and a tun end against a tap end, or ends with different Ciphers, fail so: set the same Mode and Cipher on both ends" \
    --doctor client "or a firewall drops UDP to port 51820"

log "wrong-keys passed"
