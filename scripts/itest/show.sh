#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `vpnd show`: after a ping and a 1 MB transfer, `vpnd show` and `vpnd show --json` on both ends list
# the peer with its key, endpoint, a recent handshake and non-zero counters, and `vpnd doctor` says
# healthy (exit 0); `vpnd show` for an interface that does not run exits 1 with a one-line message,
# `vpnd doctor` exits 2.
#
#   a: vpnd --server, 10.9.0.1/24, listens on 198.18.0.1:51820
#   b: vpnd --client, 10.9.0.2/24, endpoint 198.18.0.1:51820
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"

ns_pair a b
vpnd_keypair server
vpnd_keypair client
vpnd_config server --key server --peer client --address 10.9.0.1/24 --port 51820 --allowed 10.9.0.2/32 --ifname vpn0
vpnd_config client --key client --peer server --address 10.9.0.2/24 --allowed 10.9.0.0/24 \
    --endpoint "$UNDERLAY_A:51820" --keepalive 25 --ifname vpn0
vpnd_start a server vpn0 --server --config "$(vpnd_conf_file server)"
vpnd_start b client vpn0 --client --config "$(vpnd_conf_file client)"

ping_ok b 10.9.0.1 10
transfer_check b a 10.9.0.1 1M 30

# Text: one block per peer, the other end's key, a handshake seconds ago, bytes both ways.
check_text() {
    local side="$1" peer="$2" endpoint="$3" out
    out="$(vpnd_show "$side" vpn0)" || fail "vpnd show vpn0 failed for the $side"
    printf '%s\n' "$out" | sed 's/^/    /'
    grep -qx "interface: vpn0" <<<"$out" || fail "$side: no 'interface: vpn0' line"
    grep -qx "  public key: $(vpnd_pub "$side")" <<<"$out" || fail "$side: its own public key is missing"
    grep -qx "peer: $(vpnd_pub "$peer")" <<<"$out" || fail "$side: the peer's public key is missing"
    grep -q "^  endpoint: $endpoint" <<<"$out" || fail "$side: the peer endpoint is not $endpoint"
    grep -Eq '^  latest handshake: [0-9]+ seconds? ago$' <<<"$out" || fail "$side: no recent handshake"
    grep -Eq '^  transfer: [0-9.]+ [KM]iB received, [0-9.]+ [KM]iB sent' <<<"$out" \
        || fail "$side: the transfer line does not show KiB/MiB both ways"
}
check_text server client "198.18.0.2:"
check_text client server "198.18.0.1:51820"

# JSON, parsed.
check_json() {
    local side="$1" peer="$2" endpoint="$3"
    vpnd_show "$side" vpn0 --json >"$VPND_ITEST_DIR/show-$side.json" || fail "vpnd show vpn0 --json failed for the $side"
    python3 - "$VPND_ITEST_DIR/show-$side.json" "$(vpnd_pub "$side")" "$(vpnd_pub "$peer")" "$endpoint" <<'PY' \
        || fail "$side: vpnd show --json is not as expected: $(cat "$VPND_ITEST_DIR/show-$side.json")"
import json, sys
path, own, other, endpoint = sys.argv[1:]
status = json.load(open(path))
assert status["interface"] == "vpn0", status["interface"]
assert status["public_key"] == own, "own public key"
assert status["mode"] == "tun" and status["transport"] == "udp", (status["mode"], status["transport"])
[peer] = status["peers"]
assert peer["public_key"] == other, "peer public key"
assert peer["endpoint"] and peer["endpoint"].startswith(endpoint), peer["endpoint"]
assert peer["has_session"] is True, "has_session"
ago = peer["latest_handshake_seconds_ago"]
assert ago is not None and 0 <= ago < 30, f"latest handshake {ago}"
for key in ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets"):
    assert isinstance(peer[key], int) and peer[key] > 0, f"{key} = {peer[key]}"
big = "rx_bytes" if "51820" not in endpoint else "tx_bytes"  # the 1 MB went client -> server
assert peer[big] >= 1 << 20, f"{big} = {peer[big]} after a 1 MiB transfer"
# The handshake counters (vpnd doctor's): the client dialled and was answered, the server answered.
assert status["mtu"] == 1420 and status["unknown_initiators"] == [], (status["mtu"], status["unknown_initiators"])
if "51820" in endpoint:
    assert peer["endpoint_configured"] is True, "the client's Endpoint is configured"
    assert peer["handshake_initiations_sent"] >= 1 and peer["handshake_responses_received"] >= 1, peer
    assert peer["handshake_initiations_answered"] == 0, peer
else:
    assert peer["endpoint_configured"] is False, "the server learnt the client's endpoint"
    assert peer["handshake_initiations_answered"] >= 1 and peer["handshake_initiations_sent"] == 0, peer
assert peer["handshake_initiations_unanswered_in_a_row"] == 0, peer
print(f"    json ok: handshake {ago:.1f} s ago, rx {peer['rx_bytes']} B / {peer['rx_packets']} packets, "
      f"tx {peer['tx_bytes']} B / {peer['tx_packets']} packets")
PY
}
check_json server client "198.18.0.2:"
check_json client server "198.18.0.1:51820"

# vpnd doctor: a healthy pair exits 0 and says so on both ends.
vpnd_doctor_expect server 0 "  healthy: session up, latest handshake" "vpn0: healthy"
vpnd_doctor_expect client 0 "  healthy: session up, latest handshake" "vpn0: healthy"

# Without an interface name: every running vpnd in the run directory.
vpnd_show client | grep_q -x "interface: vpn0" || fail "vpnd show without a name does not list vpn0"

# A missing interface: exit status 1 and one line on stderr naming it.
set +e
VPND_RUN_DIR="$(vpnd_run_dir client)" timeout 5 "$VPND" show nosuch0 >"$VPND_ITEST_DIR/missing.out" 2>"$VPND_ITEST_DIR/missing.err"
status=$?
set -e
[ "$status" = 1 ] || fail "vpnd show nosuch0 exited with $status, expected 1"
[ ! -s "$VPND_ITEST_DIR/missing.out" ] || fail "vpnd show nosuch0 printed to stdout: $(cat "$VPND_ITEST_DIR/missing.out")"
[ "$(wc -l <"$VPND_ITEST_DIR/missing.err")" = 1 ] || fail "vpnd show nosuch0 printed more than one line: $(cat "$VPND_ITEST_DIR/missing.err")"
grep -q "nosuch0" "$VPND_ITEST_DIR/missing.err" || fail "the message does not name nosuch0: $(cat "$VPND_ITEST_DIR/missing.err")"

# vpnd doctor for a daemon it cannot reach: exit status 2 and the same one line as vpnd show.
set +e
VPND_RUN_DIR="$(vpnd_run_dir client)" timeout 5 "$VPND" doctor nosuch0 >"$VPND_ITEST_DIR/doctor-missing.out" 2>"$VPND_ITEST_DIR/doctor-missing.err"
status=$?
set -e
[ "$status" = 2 ] || fail "vpnd doctor nosuch0 exited with $status, expected 2"
[ ! -s "$VPND_ITEST_DIR/doctor-missing.out" ] || fail "vpnd doctor nosuch0 printed to stdout"
grep -qx "vpnd doctor: cannot reach vpnd for nosuch0 at $(vpnd_run_dir client)/nosuch0.sock; is it running?" \
    "$VPND_ITEST_DIR/doctor-missing.err" || fail "vpnd doctor nosuch0 said: $(cat "$VPND_ITEST_DIR/doctor-missing.err")"
log "missing interface: exit 1, $(cat "$VPND_ITEST_DIR/missing.err")"

# An empty run directory: exit 1, one line.
mkdir -p "$VPND_ITEST_DIR/run-empty"
set +e
VPND_RUN_DIR="$VPND_ITEST_DIR/run-empty" timeout 5 "$VPND" show 2>"$VPND_ITEST_DIR/empty.err" >/dev/null
status=$?
set -e
[ "$status" = 1 ] && [ "$(wc -l <"$VPND_ITEST_DIR/empty.err")" = 1 ] \
    || fail "vpnd show with no running vpnd: exit $status, stderr: $(cat "$VPND_ITEST_DIR/empty.err")"
log "no vpnd running: exit 1, $(cat "$VPND_ITEST_DIR/empty.err")"
log "show passed"
