#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Two daemons with the same Name in two network namespaces of one host, with the default run
# directory (no VPND_RUN_DIR): both start, the tunnel between them works, and `vpnd show` in each
# namespace shows that namespace's daemon (its control socket is /run/vpnd/netns/NS/NAME.sock).
# WireGuard's socket path is fixed (/var/run/wireguard/NAME.sock): the first daemon serves it, the
# second says so in one info line (not a warning) and runs on; `wg show NAME` reaches the first.
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/vpnd.sh"

NAME="$(unique_ifname n)"
track_socket "/var/run/wireguard/$NAME.sock"
show_in() { in_ns "$1" --timeout 10 env -u VPND_RUN_DIR "$VPND" show "$NAME" --json; }
key_in() { show_in "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["public_key"])'; }
run_dir_of() { printf '/run/vpnd/netns/%s' "$(ns "$1")"; }

ns_pair a b
vpnd_keypair a
vpnd_keypair b
vpnd_config a --key a --peer b --address 10.79.0.1/24 --allowed 10.79.0.2/32 --port 51820 --ifname "$NAME"
vpnd_config b --key b --peer a --address 10.79.0.2/24 --allowed 10.79.0.0/24 --endpoint "$UNDERLAY_A:51820" --ifname "$NAME"
for side in a b; do
    ns_spawn "$side" "vpnd-$side" env -u VPND_RUN_DIR "$VPND" "$([ $side = a ] && echo --server || echo --client)" \
        --config "$(vpnd_conf_file $side)"
    dir="$(run_dir_of $side)"
    track_socket "$dir/$NAME.sock"
    track_socket "$dir/$NAME.endpoints"
    on_failure_show ls -la "$dir"
    wait_for "vpnd in $side (socket in $dir)" 15 test -S "$dir/$NAME.sock" || fail "no control socket in $dir"
    sleep 0.5
done
wait_for "a tunnel between the two $NAME" 15 ping_ok b 10.79.0.1 1
ping_ok a 10.79.0.2 5
transfer_check b a 10.79.0.1 5M 60

[ "$(key_in a)" = "$(vpnd_pub a)" ] || fail "vpnd show in a shows $(key_in a), not a's key"
[ "$(key_in b)" = "$(vpnd_pub b)" ] || fail "vpnd show in b shows $(key_in b), not b's key"
[ "$(run_dir_of a)" != "$(run_dir_of b)" ] || fail "both namespaces use one run directory"
first="$VPND_ITEST_DIR/vpnd-a.log"
second="$VPND_ITEST_DIR/vpnd-b.log"
grep -q "info .*is served by another daemon named $NAME" "$second" \
    || fail "the second daemon did not say (info) that the wg socket is taken: $(tail -n 5 "$second")"
! grep -q "warning\|error" "$first" "$second" || fail "a warning or error was logged: $(grep -h 'warning\|error' "$first" "$second")"
[ "$(in_ns b --timeout 5 wg show "$NAME" public-key)" = "$(vpnd_pub a)" ] || fail "wg show $NAME does not reach the first daemon"
log "same-name passed"
