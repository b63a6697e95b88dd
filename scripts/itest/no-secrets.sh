#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# No secret in any output: both ends run at debug level (-v) with a pre-shared key and test timers
# (VPND_TEST_REKEY_AFTER_SECONDS=2, so several rekeys happen), carry ping and TCP traffic both ways,
# answer `vpnd show` and `vpnd show --json`, and stop on SIGTERM. Then every secret the test knows
# (both private keys and the PSK) is searched for in both logs, every show output and the endpoint
# memory files: as base64 (with and without padding, standard and URL-safe), as hex (lower and upper
# case) and as raw bytes. The public keys are searched the same way and must be found, so the search
# itself is shown to work.
#
#   a: vpnd --server -v, 10.9.0.1/24, listens on 198.18.0.1:51820, PSK
#   b: vpnd --client -v, 10.9.0.2/24, endpoint 198.18.0.1:51820, PSK
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"

rekey=2
ns_pair a b
vpnd_keypair server
vpnd_keypair client
vpnd_psk shared
vpnd_config server --key server --peer client --address 10.9.0.1/24 --port 51820 --allowed 10.9.0.2/32 \
    --ifname vpn0 --psk shared
vpnd_config client --key client --peer server --address 10.9.0.2/24 --allowed 10.9.0.0/24 \
    --endpoint "$UNDERLAY_A:51820" --ifname vpn0 --psk shared --keepalive 1

VPND_EXTRA_ENV="VPND_TEST_REKEY_AFTER_SECONDS=$rekey"
vpnd_start a server vpn0 --server -v --config "$(vpnd_conf_file server)"
server_pid=$VPND_PID
vpnd_start b client vpn0 --client -v --config "$(vpnd_conf_file client)"
client_pid=$VPND_PID
VPND_EXTRA_ENV=""
vpnd_json_watch server server-handshakes 'handshake_at'
vpnd_json_watch client client-handshakes 'handshake_at'

ping_ok b 10.9.0.1 10
ping_ok a 10.9.0.2 10
outputs=()
round=0
deadline=$((SECONDS + 5 * rekey + 2))
while [ "$SECONDS" -lt "$deadline" ] || [ "$round" -lt 2 ]; do
    round=$((round + 1))
    transfer_check b a 10.9.0.1 2M 30 $((5300 + round))
    transfer_check a b 10.9.0.2 2M 30 $((5400 + round))
    for side in server client; do
        vpnd_show "$side" vpn0 >"$VPND_ITEST_DIR/show-$side-$round.txt" || fail "vpnd show ($side) failed"
        vpnd_show "$side" vpn0 --json >"$VPND_ITEST_DIR/show-$side-$round.json" || fail "vpnd show --json ($side) failed"
        outputs+=("$VPND_ITEST_DIR/show-$side-$round.txt" "$VPND_ITEST_DIR/show-$side-$round.json")
    done
    sleep 1
done

for side in server client; do
    vpnd_json_watch_stop "$side-handshakes"
    n="$(vpnd_handshakes_seen "$side-handshakes")"
    log "$side: $n handshakes seen in show --json, $(wc -l <"$(vpnd_log_file "$side")") log lines"
    [ "$n" -ge 3 ] || fail "$side: vpnd show saw $n handshakes; expected at least 3 (rekeys every $rekey s)"
done
for side in server client; do
    pid_var="${side}_pid"
    kill -TERM "${!pid_var}"
    wait "${!pid_var}" || fail "vpnd $side exited with an error after SIGTERM"
done
for side in server client; do
    f="$(vpnd_run_dir "$side")/vpn0.endpoints"
    [ -f "$f" ] && outputs+=("$f")
done

python3 - "$VPND_ITEST_DIR/keys" "$(vpnd_log_file server)" "$(vpnd_log_file client)" "${outputs[@]}" <<'PY' \
    || fail "a secret appears in the output (see above)"
import base64, pathlib, sys
keys = pathlib.Path(sys.argv[1])
files = {p: pathlib.Path(p).read_bytes() for p in sys.argv[2:]}
def forms(raw):
    b64 = base64.b64encode(raw)
    url = base64.urlsafe_b64encode(raw)
    return {"base64": b64, "base64 unpadded": b64.rstrip(b"="), "base64url": url.rstrip(b"="),
            "base64 first 16 chars": b64[:16], "hex": raw.hex().encode(), "HEX": raw.hex().upper().encode(),
            "hex first 16 digits": raw.hex()[:16].encode(), "raw bytes": raw}
def decode(path):
    return base64.b64decode(path.read_text().strip())
secrets = {"server private key": decode(keys / "server.key"), "client private key": decode(keys / "client.key"),
           "pre-shared key": decode(keys / "shared.psk")}
publics = {"server public key": decode(keys / "server.pub"), "client public key": decode(keys / "client.pub")}
bad = 0
for name, raw in secrets.items():
    assert len(raw) == 32, name
    for form, needle in forms(raw).items():
        for path, data in files.items():
            if needle in data:
                print(f"SECRET FOUND: {name} as {form} in {path}")
                bad += 1
for name, raw in publics.items():
    if not any(base64.b64encode(raw) in data for data in files.values()):
        print(f"control failed: {name} (base64) appears nowhere, so the search proves nothing")
        bad += 1
total = sum(len(d) for d in files.values())
print(f"== searched {len(files)} files ({total} bytes) for {len(secrets)} secrets in 8 forms each: {bad} problems")
sys.exit(1 if bad else 0)
PY
log "no-secrets passed"
