#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A client whose Endpoint is a host name, resolved through the client namespace's own /etc/hosts:
# `ip netns exec NS` bind-mounts /etc/netns/NS/* over /etc, so /etc/netns/<full ns name>/hosts maps
# the name to the server's underlay address (and nsswitch.conf there says "files" only, so nothing
# asks DNS). The tunnel works and `vpnd show` reports the resolved address. A name that does not
# resolve makes vpnd exit 1 with one "cannot resolve" line and no interface. With `--user nobody`
# the name is resolved by a child that has already switched to nobody: with the namespace's hosts
# file readable by root only, the name does not resolve for it (one line, exit 1, no interface),
# and once the file is readable the client runs as nobody and resolves it.
#
#   srv: eth0 198.18.0.1, vpnd tun 10.79.0.1/24, ListenPort 51820
#   cli: eth0 198.18.0.2, vpnd tun 10.79.0.2/24, Endpoint = vpn-server.itest.example:51820
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"

ETC_NETNS="/etc/netns/$(ns cli)"
ETC_NETNS_PARENT_NEW=0
[ -d /etc/netns ] || ETC_NETNS_PARENT_NEW=1
# netns.sh's trap deletes the namespaces; this one also removes the /etc/netns entry (and /etc/netns
# itself if this run created it and it is empty), keeping the exit status that ns_cleanup reports.
trap 'rc=$?; set +e; trap "" INT TERM; rm -rf "$ETC_NETNS"; [ "$ETC_NETNS_PARENT_NEW" = 0 ] || rmdir /etc/netns 2>/dev/null; (exit $rc); ns_cleanup' EXIT

ns_pair srv cli
[ ! -e "$ETC_NETNS" ] || fail "$ETC_NETNS already exists"
mkdir -p "$ETC_NETNS"
printf '127.0.0.1 localhost\n%s vpn-server.itest.example\n' "$UNDERLAY_A" >"$ETC_NETNS/hosts"
printf 'hosts: files\n' >"$ETC_NETNS/nsswitch.conf"
in_ns cli --timeout 5 getent hosts vpn-server.itest.example | grep_q "^$UNDERLAY_A " \
    || fail "the client namespace does not resolve vpn-server.itest.example through $ETC_NETNS/hosts"

vpnd_keypair srv
vpnd_keypair cli
vpnd_config srv --key srv --peer cli --address 10.79.0.1/24 --allowed 10.79.0.2/32 --port 51820
vpnd_config cli --key cli --peer srv --address 10.79.0.2/24 --allowed 10.79.0.0/24 \
    --endpoint vpn-server.itest.example:51820 --keepalive 25
vpnd_config bad --key cli --peer srv --address 10.79.0.2/24 --allowed 10.79.0.0/24 \
    --endpoint no-such-host.itest.invalid:51820

log "a name that does not resolve: exit 1, one line, no interface"
links_before="$(ip -n "$(ns cli)" -o link show | awk -F': ' '{print $2}' | sort | tr '\n' ' ')"
set +e
in_ns cli --timeout 20 env VPND_RUN_DIR="$(vpnd_run_dir bad)" "$VPND" --client --config "$(vpnd_conf_file bad)" \
    >"$VPND_ITEST_DIR/bad.out" 2>"$VPND_ITEST_DIR/bad.err"
rc=$?
set -e
links_after="$(ip -n "$(ns cli)" -o link show | awk -F': ' '{print $2}' | sort | tr '\n' ' ')"
[ "$rc" -eq 1 ] || fail "vpnd with an unresolvable Endpoint exited $rc, expected 1: $(cat "$VPND_ITEST_DIR/bad.err")"
[ "$(grep -c . "$VPND_ITEST_DIR/bad.err")" -eq 1 ] \
    || fail "expected exactly one error line, got: $(cat "$VPND_ITEST_DIR/bad.err")"
grep -q 'cannot resolve.*no-such-host\.itest\.invalid' "$VPND_ITEST_DIR/bad.err" \
    || fail "the error does not say 'cannot resolve' with the name: $(cat "$VPND_ITEST_DIR/bad.err")"
[ ! -s "$VPND_ITEST_DIR/bad.out" ] || fail "vpnd printed to stdout: $(cat "$VPND_ITEST_DIR/bad.out")"
[ "$links_before" = "$links_after" ] || fail "links changed: [$links_before] -> [$links_after]"
log "$(cat "$VPND_ITEST_DIR/bad.err")"

log "--user nobody: the name is resolved without privileges (a hosts file only root can read does not do)"
chmod 711 "$VPND_ITEST_DIR"
mkdir -m 700 "$(vpnd_run_dir cli)" "$(vpnd_run_dir unpriv)"
chmod 600 "$ETC_NETNS/hosts"
set +e
in_ns cli --timeout 20 env VPND_RUN_DIR="$(vpnd_run_dir unpriv)" "$VPND" --client --config "$(vpnd_conf_file cli)" \
    --user nobody >"$VPND_ITEST_DIR/unpriv.out" 2>"$VPND_ITEST_DIR/unpriv.err"
rc=$?
set -e
chmod 644 "$ETC_NETNS/hosts"
links_after="$(ip -n "$(ns cli)" -o link show | awk -F': ' '{print $2}' | sort | tr '\n' ' ')"
[ "$rc" -eq 1 ] || fail "vpnd --user nobody with a hosts file nobody cannot read exited $rc, expected 1: $(cat "$VPND_ITEST_DIR/unpriv.err")"
[ "$(grep -c . "$VPND_ITEST_DIR/unpriv.err")" -eq 1 ] \
    || fail "expected exactly one error line, got: $(cat "$VPND_ITEST_DIR/unpriv.err")"
grep -q 'cannot resolve.*vpn-server\.itest\.example' "$VPND_ITEST_DIR/unpriv.err" \
    || fail "the error does not say 'cannot resolve' with the name: $(cat "$VPND_ITEST_DIR/unpriv.err")"
[ "$links_before" = "$links_after" ] || fail "links changed: [$links_before] -> [$links_after]"
log "$(cat "$VPND_ITEST_DIR/unpriv.err")"

log "the tunnel with a host-name Endpoint (the client as nobody)"
vpnd_start srv srv vpnd0 --server --config "$(vpnd_conf_file srv)"
vpnd_start cli cli vpnd0 --client --config "$(vpnd_conf_file cli)" --user nobody
nobody_uid="$(id -u nobody)"
grep -Eq "^Uid:\s+$nobody_uid\s+$nobody_uid\s+$nobody_uid\s+$nobody_uid$" "/proc/$VPND_PID/status" \
    || fail "the client does not run as nobody (uid $nobody_uid): $(grep '^Uid:' "/proc/$VPND_PID/status")"
wait_for "cli -> srv" 15 ping_ok cli 10.79.0.1 1
ping_ok srv 10.79.0.2 5
endpoint="$(vpnd_json cli 'peer["endpoint"]')"
[ "$endpoint" = "$UNDERLAY_A:51820" ] || fail "the client's peer endpoint is $endpoint, expected $UNDERLAY_A:51820"
log "client's peer endpoint: $endpoint"
transfer_check cli srv 10.79.0.1 5M 60
log "hostname-endpoint passed"
