#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Privilege drop: the server runs with `--user nobody`, the client with `User = <nobody's uid>` and
# `KeepNetAdmin = no` in its config. Both switch to nobody after set-up: /proc/PID/status shows every
# uid and gid as nobody's and NoNewPrivs 1; the server keeps exactly CAP_NET_ADMIN (effective and
# permitted 0x1000, for wg set's routes and fwmark), the client no capability at all. The server
# then adds a route with `wg set` (CAP_NET_ADMIN at work); the client, without it, refuses a
# route change with errno=-1 and one line, while a keepalive change still applies.
# The tunnel still works (ping, 10 MB each way), `vpnd show` as root still works, and SIGTERM
# ends both with status 0: the interface, its addresses and its routes are gone (the kernel removes
# a tun when its descriptor closes, no netlink needed), the control socket is removed and the
# endpoint memory is written by nobody. Errors: a config with an inline private key that others can
# read is refused like a key file; a vpnd already running as nobody with an ambient CAP_NET_ADMIN
# loses that capability too; an unknown user stops start-up with one line before
# any interface exists; the client's MetricsListen on port 95, bound before the switch, answers; a run directory nobody cannot write stops start-up and leaves no interface.
#
#   a: vpnd --server --user nobody, 10.9.0.1/24, routes 10.77.0.0/24 (an extra AllowedIPs prefix)
#   b: vpnd --client (User = 65534), 10.9.0.2/24, endpoint 198.18.0.1:51820
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"

nobody_uid="$(id -u nobody)" || fail "this host has no user nobody"
# Names of their own: the wg socket (/var/run/wireguard/NAME.sock) is one per name on the host.
SIF="$(unique_ifname p)"
CIF="$(unique_ifname r)"
track_socket "/var/run/wireguard/$SIF.sock"
track_socket "/var/run/wireguard/$CIF.sock"
ifname_of() { [ "$1" = server ] && echo "$SIF" || echo "$CIF"; }
nobody_gid="$(id -g nobody)"

ns_pair a b
vpnd_keypair server
vpnd_keypair client
vpnd_config server --key server --peer client --address 10.9.0.1/24 --port 51820 \
    --allowed 10.9.0.2/32,10.77.0.0/24 --ifname $SIF
vpnd_config client --key client --peer server --address 10.9.0.2/24 --allowed 10.9.0.0/24 \
    --endpoint "$UNDERLAY_A:51820" --ifname $CIF
sed -i "/^\[Interface\]/a User = $nobody_uid\nKeepNetAdmin = no" "$(vpnd_conf_file client)"
# nobody must reach its run directory: the work directory is 0700 (root) from mktemp.
chmod 711 "$VPND_ITEST_DIR"
# Run directories as vpnd creates them (0700, root): vpnd hands them to nobody before switching.
mkdir -m 700 "$(vpnd_run_dir server)" "$(vpnd_run_dir client)"

# 0. A config that holds the private key inline is a key file: readable by others, it is refused.
inline="$VPND_ITEST_DIR/inline.conf"
{ echo "[Interface]"; echo "PrivateKey = $(cat "$(vpnd_key_file server)")"; echo "ListenPort = 51898"; echo "Name = vpn7"
  echo "[Peer]"; echo "PublicKey = $(vpnd_pub client)"; } >"$inline"
chmod 644 "$inline"
set +e
out="$(in_ns a --timeout 10 env VPND_RUN_DIR="$(vpnd_run_dir server)" "$VPND" --server --config "$inline" 2>&1)"
rc=$?
set -e
echo "    $out"
[ "$rc" = 1 ] || fail "an inline key in a 0644 config: exit status $rc, expected 1"
grep -q "inline.conf holds a PrivateKey and is readable by group or others (mode 0644); run: chmod 600 " <<<"$out" \
    || fail "an inline key in a 0644 config: unexpected message: $out"
grep -qF "$(cat "$(vpnd_key_file server)")" <<<"$out" && fail "the refusal repeats the private key"
in_ns a --timeout 5 ip link show vpn7 >/dev/null 2>&1 && fail "a refused config left interface vpn7 behind"

# 1. An unknown user: one line, exit 1, before any interface exists.
set +e
out="$(in_ns a --timeout 10 env VPND_RUN_DIR="$(vpnd_run_dir server)" "$VPND" --server \
    --config "$(vpnd_conf_file server)" --name vpn9 --user vpnd-no-such-user 2>&1)"
rc=$?
set -e
echo "    $out"
[ "$rc" = 1 ] || fail "an unknown user: exit status $rc, expected 1"
[ "$(printf '%s\n' "$out" | wc -l)" = 1 ] || fail "an unknown user: expected one line, got: $out"
grep -q "user vpnd-no-such-user: no such user in the password database; create it" <<<"$out" \
    || fail "an unknown user: unexpected message: $out"
in_ns a --timeout 5 ip link show vpn9 >/dev/null 2>&1 && fail "an unknown user left interface vpn9 behind"

# 2. A run directory nobody cannot write (shared, 0755, root's): exit 1, no interface left.
mkdir -m 755 "$VPND_ITEST_DIR/run-shared"
set +e
out="$(in_ns a --timeout 10 env VPND_RUN_DIR="$VPND_ITEST_DIR/run-shared" "$VPND" --server \
    --config "$(vpnd_conf_file server)" --name vpn8 --listen-port 51899 --user nobody 2>&1)"
rc=$?
set -e
printf '%s\n' "$out" | sed 's/^/    /'
[ "$rc" = 1 ] || fail "an unwritable run directory: exit status $rc, expected 1"
grep -q "the run directory $VPND_ITEST_DIR/run-shared is not writable or not reachable by it" <<<"$out" \
    || fail "an unwritable run directory: unexpected message: $out"
in_ns a --timeout 5 ip link show vpn8 >/dev/null 2>&1 && fail "an unwritable run directory left interface vpn8 behind"

# 2b. Already nobody, with only an ambient CAP_NET_ADMIN (systemd's User= with AmbientCapabilities=):
#     set-up works, then the capability goes too.
amb="$VPND_ITEST_DIR/ambient"
mkdir -m 711 "$amb"
mkdir -m 700 "$amb/run"
install -m 600 -o "$nobody_uid" "$(vpnd_key_file server)" "$amb/server.key"
sed -e "s|^PrivateKeyFile = .*|PrivateKeyFile = $amb/server.key|" -e 's/^ListenPort = .*/ListenPort = 51897/' \
    -e 's/^Name = .*/Name = vpn6/' "$(vpnd_conf_file server)" >"$amb/server.conf"
chown "$nobody_uid" "$amb/run"
# A stock /dev/net/tun is mode 0666 (the capability, not the file mode, guards TUNSETIFF); some
# containers make it 0600, which no capability but CAP_DAC_OVERRIDE opens. So this case runs in a
# private mount namespace whose /dev/net/tun is a 0666 node of the same device (10, 200) on a
# private tmpfs: the host's node is left alone, and the mount goes away with the process.
mkdir -m 700 "$amb/dev"
tun_mode=$(stat -c %a /dev/net/tun)
echo "    /dev/net/tun here: mode $tun_mode; the ambient case uses a private 0666 node"
ip netns exec "$(ns a)" unshare --mount --propagation private sh -c '
        mount -t tmpfs -o mode=0755,size=64k vpnd-itest-dev "$1" && mknod -m 0666 "$1/tun" c 10 200 &&
        mount --bind "$1/tun" /dev/net/tun && shift && exec "$@"' sh "$amb/dev" \
    env VPND_RUN_DIR="$amb/run" setpriv --reuid="$nobody_uid" --regid="$nobody_gid" --init-groups \
    --inh-caps=+net_admin --ambient-caps=+net_admin "$VPND" --server --config "$amb/server.conf" --user nobody \
    >"$VPND_ITEST_DIR/ambient.log" 2>&1 &
amb_pid=$!
_NS_PIDS+=("$amb_pid")
wait_for "vpnd with ambient CAP_NET_ADMIN" 15 vpnd_alive_and_listening "$amb_pid" "$amb/run" vpn6 \
    || fail "vpnd as nobody with ambient CAP_NET_ADMIN did not start: $(tail -n 3 "$VPND_ITEST_DIR/ambient.log")"
grep -E '^(Uid|CapEff|CapPrm|CapAmb):' "/proc/$amb_pid/status" | sed 's/^/    ambient: /'
grep -Eq '^CapAmb:\s+0000000000000000$' "/proc/$amb_pid/status" || fail "ambient: the ambient capability remains"
grep -Eq '^CapEff:\s+0000000000001000$' "/proc/$amb_pid/status" || fail "ambient: effective capabilities are not CAP_NET_ADMIN alone"
grep -q "switched to user nobody (uid $nobody_uid, gid $nobody_gid); capabilities: CAP_NET_ADMIN only" "$VPND_ITEST_DIR/ambient.log" \
    || fail "ambient: no switch line: $(tail -n 3 "$VPND_ITEST_DIR/ambient.log")"
kill -TERM "$amb_pid"
wait "$amb_pid" || fail "ambient: vpnd exited with an error after SIGTERM"
in_ns a --timeout 5 ip link show vpn6 >/dev/null 2>&1 && fail "ambient: vpn6 is still there after exit"

# 3. The real run. The client also serves its metrics on a port below 1024 (MetricsListen), which
# only works because the socket is bound before the switch to nobody (who has no capability).
sed -i "/^\[Interface\]/a MetricsListen = 127.0.0.1:95" "$(vpnd_conf_file client)"
vpnd_start a server $SIF --server -v --user nobody --config "$(vpnd_conf_file server)"
server_pid=$VPND_PID
vpnd_start b client $CIF --client -v --config "$(vpnd_conf_file client)"
client_pid=$VPND_PID

check_status() {
    local what="$1" pid="$2" caps="$3" status
    status="$(cat "/proc/$pid/status")"
    grep -E '^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapAmb|NoNewPrivs):' <<<"$status" | sed "s/^/    $what: /"
    grep -Eq "^Uid:\s+$nobody_uid\s+$nobody_uid\s+$nobody_uid\s+$nobody_uid$" <<<"$status" || fail "$what: Uid is not nobody's everywhere"
    grep -Eq "^Gid:\s+$nobody_gid\s+$nobody_gid\s+$nobody_gid\s+$nobody_gid$" <<<"$status" || fail "$what: Gid is not nobody's everywhere"
    grep -Eq '^Groups:.*\b0\b' <<<"$status" && fail "$what: still in group 0"
    grep -Eq "^CapEff:\s+$caps$" <<<"$status" || fail "$what: effective capabilities are not $caps"
    grep -Eq "^CapPrm:\s+$caps$" <<<"$status" || fail "$what: permitted capabilities are not $caps"
    grep -Eq '^CapAmb:\s+0000000000000000$' <<<"$status" || fail "$what: ambient capabilities remain"
    grep -Eq '^NoNewPrivs:\s+1$' <<<"$status" || fail "$what: NoNewPrivs is not set"
    # A process whose credentials changed is non-dumpable: its /proc files belong to root, not nobody.
    [ "$(stat -c %U "/proc/$pid/status")" = root ] || fail "$what: still dumpable (core dumps, ptrace by nobody)"
    return 0
}
check_status server "$server_pid" 0000000000001000
check_status client "$client_pid" 0000000000000000
grep -q "switched to user nobody (uid $nobody_uid, gid $nobody_gid); capabilities: CAP_NET_ADMIN only (KeepNetAdmin = yes)" "$(vpnd_log_file server)" \
    || fail "the server log does not report the switch"
grep -q "switched to user $nobody_uid (uid $nobody_uid, gid $nobody_gid); capabilities: none" "$(vpnd_log_file client)" \
    || fail "the client log does not report the switch (User = $nobody_uid)"
[ "$(stat -c %u "$(vpnd_run_dir server)")" = "$nobody_uid" ] || fail "the server's run directory was not handed to nobody"
[ "$(stat -c %U:%a "$(vpnd_run_dir server)/$SIF.sock")" = "root:600" ] || fail "the control socket is not root's, mode 600"

ping_ok b 10.9.0.1 10
ping_ok a 10.9.0.2 10
transfer_check b a 10.9.0.1 10M 60
transfer_check a b 10.9.0.2 10M 60 5202
vpnd_show server $SIF | sed 's/^/    /'
vpnd_show server $SIF | grep_q -x "peer: $(vpnd_pub client)" || fail "vpnd show (root) against the unprivileged server failed"
vpnd_json_ok client 'peer["has_session"]' || fail "vpnd show --json (root) against the unprivileged client failed"
in_ns a --timeout 5 ip route show 10.77.0.0/24 | grep_q "dev $SIF" || fail "the route to 10.77.0.0/24 is missing"
scraped="$(in_ns b --timeout 10 curl -sS --max-time 5 http://127.0.0.1:95/metrics)" || fail "no metrics from the unprivileged client on port 95"
grep -q "^vpnd_peer_session{interface=\"$CIF\",public_key=\"$(vpnd_pub server)\",name=\"\"} 1$" <<<"$scraped" \
    || fail "the unprivileged client's MetricsListen does not serve its metrics: $(head -c 300 <<<"$scraped")"

# 3b. Runtime changes as nobody: the server (CAP_NET_ADMIN kept) adds a route with wg set; the
#     client (KeepNetAdmin = no) refuses one with a one-line error and changes nothing, while a
#     change that needs no kernel call still applies.
in_ns a --timeout 10 wg set "$SIF" peer "$(vpnd_pub client)" allowed-ips 10.9.0.2/32,10.77.0.0/24,10.66.0.0/24 \
    || fail "wg set (a new route) on the server as nobody with CAP_NET_ADMIN failed"
in_ns a --timeout 5 ip route show 10.66.0.0/24 | grep_q "dev $SIF" || fail "wg set added no route to 10.66.0.0/24"
if in_ns b --timeout 10 wg set "$CIF" peer "$(vpnd_pub server)" allowed-ips 10.9.0.0/24,10.55.0.0/24 2>"$VPND_ITEST_DIR/noadmin.err"; then
    fail "wg set (a new route) on the client without CAP_NET_ADMIN succeeded"
fi
log "client without CAP_NET_ADMIN: wg says: $(cat "$VPND_ITEST_DIR/noadmin.err")"
[ "$(in_ns b --timeout 5 wg show "$CIF" allowed-ips | cut -f2)" = 10.9.0.0/24 ] || fail "the refused change altered the client's AllowedIPs"
grep -q "warning .*wg set on $CIF refused, nothing changed: route to 10.55.0.0/24: .*needs CAP_NET_ADMIN" "$(vpnd_log_file client)" \
    || fail "no one-line refusal in the client's log: $(tail -n 3 "$(vpnd_log_file client)")"
in_ns b --timeout 10 wg set "$CIF" peer "$(vpnd_pub server)" persistent-keepalive 15 \
    || fail "a keepalive change (no kernel call) on the client without CAP_NET_ADMIN failed"
[ "$(vpnd_json client 'peer["persistent_keepalive"]')" = 15 ] || fail "the keepalive change did not apply"
ping_ok b 10.9.0.1 5

# 4. SIGTERM: clean exit, interface and routes gone, socket removed, endpoints written by nobody.
for side in server client; do
    pid_var="${side}_pid"
    pid="${!pid_var}"
    kill -TERM "$pid"
    rc=0
    timeout 10 tail --pid="$pid" -f /dev/null || fail "vpnd $side did not exit within 10 s of SIGTERM"
    wait "$pid" || rc=$?
    [ "$rc" = 0 ] || fail "vpnd $side exited with status $rc after SIGTERM"
    grep -q "stopped; interface $(ifname_of "$side") removed" "$(vpnd_log_file "$side")" || fail "vpnd $side: no clean-stop line"
    [ -e "$(vpnd_run_dir "$side")/$(ifname_of "$side").sock" ] && fail "vpnd $side left its control socket behind"
done
in_ns a --timeout 5 ip link show $SIF >/dev/null 2>&1 && fail "the server's $SIF is still there after exit"
in_ns b --timeout 5 ip link show $CIF >/dev/null 2>&1 && fail "the client's $CIF is still there after exit"
[ -z "$(in_ns a --timeout 5 ip route show 10.77.0.0/24)" ] || fail "the route to 10.77.0.0/24 outlived the server"
[ -z "$(in_ns a --timeout 5 ip addr show to 10.9.0.1/24)" ] || fail "the server's address outlived it"
endpoints="$(vpnd_run_dir server)/$SIF.endpoints"
[ -f "$endpoints" ] || fail "the server (as nobody) did not write its endpoint memory"
[ "$(stat -c %u:%a "$endpoints")" = "$nobody_uid:600" ] || fail "the endpoint memory is not nobody's, mode 600: $(stat -c %U:%a "$endpoints")"
grep -Fq "$(vpnd_pub client) $UNDERLAY_B:" "$endpoints" || fail "the endpoint memory does not hold the client: $(cat "$endpoints")"
# (The refusal above is the one warning expected.)
grep -E ' (error|warning) ' "$(vpnd_log_file server)" "$(vpnd_log_file client)" | grep -v "wg set on $CIF refused" \
    && fail "error or warning lines in the logs"
log "privdrop passed"
