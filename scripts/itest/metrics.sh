#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `vpnd metrics` after traffic, parsed by the Prometheus client library's own text parser
# (Debian's python3-prometheus-client): every family parses, the counters agree with
# `vpnd show --json` (bytes, handshakes, handshake counters, peer count), labels carry interface and
# public_key.
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"
PY=/usr/bin/python3  # Debian's python3, which has python3-prometheus-client
"$PY" -c 'import prometheus_client.parser' 2>/dev/null || fail "python3-prometheus-client is not installed (scripts/lib/packages.sh)"

ns_pair a b
vpnd_keypair srv
vpnd_keypair cli
vpnd_config srv --key srv --peer cli --address 10.82.0.1/24 --allowed 10.82.0.2/32 --port 51820
vpnd_config cli --key cli --peer srv --address 10.82.0.2/24 --allowed 10.82.0.0/24 --endpoint "$UNDERLAY_A:51820"
vpnd_start a srv vpnd0 --server --config "$(vpnd_conf_file srv)"
vpnd_start b cli vpnd0 --client --config "$(vpnd_conf_file cli)"
wait_for "b -> a" 15 ping_ok b 10.82.0.1 1
transfer_check b a 10.82.0.1 2M 60
sleep 1
VPND_RUN_DIR="$(vpnd_run_dir srv)" timeout 10 ip netns exec "$(ns a)" "$VPND" metrics >"$VPND_ITEST_DIR/metrics.txt" \
    || fail "vpnd metrics failed"
head -n 12 "$VPND_ITEST_DIR/metrics.txt"
json="$(vpnd_show srv vpnd0 --json)"
"$PY" - "$VPND_ITEST_DIR/metrics.txt" "$(vpnd_pub cli)" <<PYEOF || fail "the metrics do not parse or do not agree with vpnd show --json"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1]).read()
peer_key = sys.argv[2]
doc = json.loads('''$json''')
families = {f.name: f for f in text_string_to_metric_families(text)}
def sample(family, suffix=""):
    f = families[family]
    values = [s for s in f.samples if s.name == family + suffix and s.labels.get("public_key") == peer_key]
    assert len(values) == 1, (family, f.samples)
    assert values[0].labels["interface"] == "vpnd0", values[0].labels
    return values[0].value
peer = doc["peers"][0]
# Counters only grow: what the metrics said (read first) is at most what show said a moment later.
rx = sample("vpnd_peer_receive_bytes", "_total")
assert 2_000_000 < rx <= peer["rx_bytes"], (rx, peer["rx_bytes"])
assert sample("vpnd_peer_handshakes", "_total") == peer["handshakes"] == 1
assert sample("vpnd_peer_session") == 1
assert sample("vpnd_peer_path_mtu_bytes") == peer["path_mtu"]
assert sample("vpnd_peer_latest_handshake_seconds") > 1_700_000_000
assert families["vpnd_peers"].samples[0].value == len(doc["peers"]) == 1
# The handshake counters behind vpnd doctor, on the server: it answered the client's one initiation.
assert sample("vpnd_peer_handshake_initiations_answered", "_total") == peer["handshake_initiations_answered"] == 1
assert sample("vpnd_peer_handshake_initiations", "_total") == peer["handshake_initiations_sent"] == 0
assert sample("vpnd_peer_handshake_responses", "_total") == peer["handshake_responses_received"] == 0
assert sample("vpnd_peer_handshake_failures", "_total") == peer["handshake_initiations_unanswered"] == 0
assert families["vpnd_unknown_initiator_initiations"].samples == [] and doc["unknown_initiators"] == []
print("metrics: %d families parsed, rx %d bytes" % (len(families), rx))
PYEOF
log "metrics passed"
