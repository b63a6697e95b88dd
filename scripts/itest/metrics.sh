#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `vpnd metrics` after traffic, parsed by the Prometheus client library's own text parser
# (Debian's python3-prometheus-client): every family parses, the counters agree with
# `vpnd show --json` (bytes, handshakes, handshake counters, peer count), labels carry interface,
# public_key and the peer's name (`# alice` on its [Peer] line; show prints it too, and a reload
# renames it). Then
# the server's MetricsListen on its namespace address, scraped with curl from inside the
# namespace: the same exposition, 404/405, an oversized request refused (431) with the server
# still serving, a silent connection closed after about 2 s, 20 idle connections that do not
# stop a scrape; the client's MetricsListen on [::1]; a port in use and an address that is not
# local stop start-up with one line; a changed MetricsListen is refused by reload.
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"
PY=/usr/bin/python3  # Debian's python3, which has python3-prometheus-client
"$PY" -c 'import prometheus_client.parser' 2>/dev/null || fail "python3-prometheus-client is not installed (scripts/lib/packages.sh)"
command -v curl >/dev/null || fail "curl is not installed (scripts/lib/packages.sh)"

ns_pair a b
vpnd_keypair srv
vpnd_keypair cli
vpnd_config srv --key srv --peer cli --address 10.82.0.1/24 --allowed 10.82.0.2/32 --port 51820
vpnd_config cli --key cli --peer srv --address 10.82.0.2/24 --allowed 10.82.0.0/24 --endpoint "$UNDERLAY_A:51820"
# The server's peer is named (the client's is not); the server serves its metrics over HTTP.
SRV_CONF="$(vpnd_conf_file srv)"
METRICS_URL="http://$UNDERLAY_A:9586/metrics"
sed -i -e 's/^\[Peer\]$/[Peer] # alice/' -e "s/^\[Interface\]\$/[Interface]\nMetricsListen = $UNDERLAY_A:9586/" "$SRV_CONF"
grep -qx "MetricsListen = $UNDERLAY_A:9586" "$SRV_CONF" && grep -qx "\[Peer\] # alice" "$SRV_CONF" || fail "config edit failed"
# The client serves on IPv6 loopback ([v6]:port).
sed -i 's/^\[Interface\]$/[Interface]\nMetricsListen = [::1]:9586/' "$(vpnd_conf_file cli)"
vpnd_start a srv vpnd0 --server --config "$(vpnd_conf_file srv)"
vpnd_start b cli vpnd0 --client --config "$(vpnd_conf_file cli)"
wait_for "b -> a" 15 ping_ok b 10.82.0.1 1
transfer_check b a 10.82.0.1 2M 60
sleep 1
VPND_RUN_DIR="$(vpnd_run_dir srv)" timeout 10 ip netns exec "$(ns a)" "$VPND" metrics >"$VPND_ITEST_DIR/metrics.txt" \
    || fail "vpnd metrics failed"
head -n 12 "$VPND_ITEST_DIR/metrics.txt"
json="$(vpnd_show srv vpnd0 --json)"
"$PY" - "$VPND_ITEST_DIR/metrics.txt" "$(vpnd_pub cli)" alice <<PYEOF || fail "the metrics do not parse or do not agree with vpnd show --json"
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
    assert values[0].labels["name"] == sys.argv[3], values[0].labels
    return values[0].value
peer = doc["peers"][0]
assert peer["name"] == sys.argv[3], peer
# Every per-peer sample of every family carries the name; the interface's load families are there.
for f in families.values():
    for s in f.samples:
        if "public_key" in s.labels:
            assert s.labels.get("name") == sys.argv[3], (f.name, s)
assert families["vpnd_dataplane_loop_seconds"].type == "histogram", families["vpnd_dataplane_loop_seconds"]
loops = {s.labels.get("le", s.name): s.value for s in families["vpnd_dataplane_loop_seconds"].samples}
assert loops["+Inf"] == loops["vpnd_dataplane_loop_seconds_count"] > 10, loops
assert families["vpnd_handshake_backlog"].samples[0].value >= 0
assert 0 < families["vpnd_dataplane_loop_max_seconds"].samples[0].value < 5, families["vpnd_dataplane_loop_max_seconds"]
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

log "vpnd show: the name next to the peer; none on the client's"
shown="$(vpnd_show srv vpnd0)"
grep -qx "  name: alice" <<<"$shown" || fail "vpnd show lacks the peer's name: $shown"
grep -qx "peer: $(vpnd_pub cli)" <<<"$shown" || fail "vpnd show's peer line changed: $shown"
[ "$(vpnd_json cli 'peer["name"]')" = "null" ] || fail "an unnamed peer's JSON name is not null"
client_metrics="$(VPND_RUN_DIR="$(vpnd_run_dir cli)" timeout 10 ip netns exec "$(ns b)" "$VPND" metrics vpnd0)"
grep -q "^vpnd_peer_session{interface=\"vpnd0\",public_key=\"$(vpnd_pub srv)\",name=\"\"} 1\$" <<<"$client_metrics" \
    || fail "the client's unnamed peer lacks name=\"\" in its metrics"
v6="$(timeout 10 ip netns exec "$(ns b)" curl -sS --max-time 5 -g 'http://[::1]:9586/metrics')" || fail "no scrape at [::1]:9586"
[ "$(grep '^vpnd_peer_session{' <<<"$v6")" = "$(grep '^vpnd_peer_session{' <<<"$client_metrics")" ] \
    || fail "[::1]:9586 does not serve what vpnd metrics prints: $(grep '^vpnd_peer_session{' <<<"$v6")"

log "MetricsListen: scrape over HTTP from inside the namespace"
a_curl() { timeout 10 ip netns exec "$(ns a)" curl -sS --max-time 5 "$@"; }
code="$(a_curl -o "$VPND_ITEST_DIR/http.txt" -D "$VPND_ITEST_DIR/http.head" -w '%{http_code}' "$METRICS_URL")"
[ "$code" = 200 ] || fail "GET /metrics answered $code"
grep -qi '^content-type: text/plain; version=0.0.4; charset=utf-8' "$VPND_ITEST_DIR/http.head" || fail "content type: $(cat "$VPND_ITEST_DIR/http.head")"
grep -qi '^connection: close' "$VPND_ITEST_DIR/http.head" || fail "no Connection: close"
length="$(grep -i '^content-length:' "$VPND_ITEST_DIR/http.head" | tr -dc 0-9)"
[ "$length" -eq "$(stat -c %s "$VPND_ITEST_DIR/http.txt")" ] || fail "Content-Length $length is not the body's size"
"$PY" - "$VPND_ITEST_DIR/http.txt" "$(vpnd_pub cli)" <<'PYEOF' || fail "the HTTP metrics do not parse or lack the peer's name"
import sys
from prometheus_client.parser import text_string_to_metric_families
families = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}
session = [s for s in families["vpnd_peer_session"].samples if s.labels["public_key"] == sys.argv[2]]
assert len(session) == 1 and session[0].labels["name"] == "alice" and session[0].value == 1, session
assert families["vpnd_dataplane_loop_seconds"].type == "histogram"
print("http metrics: %d families parsed" % len(families))
PYEOF
[ "$(a_curl -o /dev/null -w '%{http_code}' "http://$UNDERLAY_A:9586/")" = 404 ] || fail "GET / is not a 404"
[ "$(a_curl -o /dev/null -w '%{http_code}' "http://$UNDERLAY_A:9586/other")" = 404 ] || fail "GET /other is not a 404"
[ "$(a_curl -o /dev/null -w '%{http_code}' -X POST "$METRICS_URL")" = 405 ] || fail "POST /metrics is not a 405"
grep -q '^HTTP/1.1 200' <<<"$(a_curl -I "$METRICS_URL")" || fail "HEAD /metrics is not a 200"
big="$(head -c 5120 /dev/zero | tr '\0' a)"
[ "$(a_curl -o /dev/null -w '%{http_code}' -H "X-Big: $big" "$METRICS_URL")" = 431 ] || fail "5 KB of headers were not refused with 431"
[ "$(a_curl -o /dev/null -w '%{http_code}' "$METRICS_URL")" = 200 ] || fail "no scrape after the oversized request"

log "MetricsListen: a silent connection is closed after ~2 s; 20 idle ones do not stop a scrape"
timeout 30 ip netns exec "$(ns a)" "$PY" - "$UNDERLAY_A" <<'PYEOF' || fail "the metrics server can be held by idle clients"
import socket, sys, time, urllib.request
host = sys.argv[1]
silent = socket.create_connection((host, 9586), timeout=10)
start = time.monotonic()
assert silent.recv(1) == b"", "the server sent something to a silent client"
waited = time.monotonic() - start
assert 1.5 <= waited <= 4, "a silent connection was closed after %.2f s" % waited
idle = [socket.create_connection((host, 9586), timeout=10) for _ in range(20)]
time.sleep(0.2)
start = time.monotonic()
with urllib.request.urlopen("http://%s:9586/metrics" % host, timeout=5) as reply:
    assert reply.status == 200 and b"vpnd_peers" in reply.read()
took = time.monotonic() - start
assert took < 1.5, "the scrape took %.2f s with 20 idle connections" % took
print("silent connection closed after %.2f s; scrape with 20 idle connections in %.3f s" % (waited, took))
for s in idle: s.close()
PYEOF
kill -0 "$VPND_PID" || fail "the server died"

log "MetricsListen start-up errors: a port in use, an address that is not local"
refused_start() {  # CONF EXPECTED
    local out rc=0
    out="$(timeout 20 ip netns exec "$(ns a)" env VPND_RUN_DIR="$VPND_ITEST_DIR/run-refused" "$VPND" --server --config "$1" 2>&1)" || rc=$?
    [ "$rc" -ne 0 ] || fail "vpnd started with $(grep MetricsListen "$1")"
    [ "$(grep -c MetricsListen <<<"$out")" -eq 1 ] && grep -q "$2" <<<"$out" || fail "not one line naming MetricsListen and '$2': $out"
    log "refused: $(grep MetricsListen <<<"$out" | sed 's/^.*\] //')"
}
sed -e 's/^ListenPort = .*/ListenPort = 51821/' -e 's/^\[Interface\]$/[Interface]\nName = vpnd9/' "$SRV_CONF" >"$VPND_ITEST_DIR/inuse.conf"
refused_start "$VPND_ITEST_DIR/inuse.conf" "is in use"
sed -e 's/^MetricsListen = .*/MetricsListen = 192.0.2.99:9586/' "$VPND_ITEST_DIR/inuse.conf" >"$VPND_ITEST_DIR/notlocal.conf"
refused_start "$VPND_ITEST_DIR/notlocal.conf" "not an address of this host"
ip -n "$(ns a)" link show vpnd9 >/dev/null 2>&1 && fail "a refused start left interface vpnd9 behind"

log "reload: a new name applies at once; a changed MetricsListen is refused"
srv_reload() { VPND_RUN_DIR="$(vpnd_run_dir srv)" timeout 10 ip netns exec "$(ns a)" "$VPND" reload vpnd0; }
sed -i 's/^\[Peer\] # alice$/[Peer] # carol/' "$SRV_CONF"
srv_reload >/dev/null || fail "reload with a new peer name failed"
scraped="$(a_curl "$METRICS_URL")"
grep -q "^vpnd_peer_session{interface=\"vpnd0\",public_key=\"$(vpnd_pub cli)\",name=\"carol\"} 1\$" <<<"$scraped" \
    || fail "the metrics do not carry the new name after reload: $(grep vpnd_peer_session <<<"$scraped")"
grep -qx "  name: carol" <<<"$(vpnd_show srv vpnd0)" || fail "vpnd show does not print the new name"
sed -i 's/^MetricsListen = .*/MetricsListen = 127.0.0.1:9586/' "$SRV_CONF"
if out="$(srv_reload 2>&1)"; then fail "a changed MetricsListen was applied by reload: $out"; fi
grep -q "MetricsListen" <<<"$out" && grep -q "restart vpnd" <<<"$out" || fail "reload refusal does not name MetricsListen: $out"
[ "$(a_curl -o /dev/null -w '%{http_code}' "$METRICS_URL")" = 200 ] || fail "the metrics endpoint moved after a refused reload"
log "metrics passed"
