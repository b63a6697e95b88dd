# SPDX-License-Identifier: MIT
# Network-namespace harness for vpnd's integration scenarios (scripts/itest/*.sh). Sourced, never run.
#
# Topologies (addresses are the same in every run: each run has its own namespaces, so they cannot
# collide; the root namespace is never given an address, route or link):
#
#   ns_pair a b                   two endpoints joined by one veth pair
#
#     +---------- a ----------+                      +---------- b ----------+
#     | eth0  198.18.0.1/24   |<====== veth ========>| eth0  198.18.0.2/24   |
#     +-----------------------+                      +-----------------------+
#        UNDERLAY_A=198.18.0.1                          UNDERLAY_B=198.18.0.2
#
#   ns_routed a hub b             endpoints on two subnets, a middle namespace routes between them
#                                 (ip_forward on) and is where impairment lives: impair.py relays,
#                                 nft_loss drops
#
#     +---- a ----+                  +-------- hub --------+                  +---- b ----+
#     | eth0      |<===== veth =====>| eth-a       eth-b   |<===== veth =====>| eth0      |
#     | 198.18.1.1|                  | 198.18.1.254        |                  | 198.18.2.1|
#     +-----------+                  |        198.18.2.254 |                  +-----------+
#      default via HUB_A             +---------------------+                   default via HUB_B
#        UNDERLAY_A=198.18.1.1   HUB_A=198.18.1.254   HUB_B=198.18.2.254   UNDERLAY_B=198.18.2.1
#
# Names: every namespace is "vpnd-<RUN_ID>-<logical name>" (RUN_ID: 6 hex digits per run), and helpers
# take the logical name ("a", "b", "hub"). veth pairs are created directly inside their namespaces, so
# their names only have to be unique per namespace; names that are global (wireguard-go's control
# socket) come from `unique_ifname ROLE` (<= 15 characters).
#
# Cleanup: sourcing this file installs `trap ns_cleanup EXIT` (INT and TERM exit through it). It kills
# every process started with ns_spawn and every other process still inside a namespace of this run
# (`ip netns pids`), removes wireguard-go sockets registered with track_socket, deletes the namespaces,
# and on failure prints the tail of every log in $VPND_ITEST_DIR first.
#
# Every external step runs under `timeout`, so a dead tunnel fails the run instead of hanging it.

set -euo pipefail

# grep -q for the end of a pipeline. grep -q exits at its first match; under pipefail a writer with
# more to say (`ip addr show | grep -q inet`) then dies of SIGPIPE and the pipeline fails with 141,
# a test failure that depends on timing. This reads all of its input.
grep_q() { grep "$@" >/dev/null; }

VPND_REPO="${VPND_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
export VPND_REPO

# 6 hex digits, unique among the namespaces present now.
_ns_new_run_id() {
    local id
    while :; do
        id="$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
        if ! ls /run/netns 2>/dev/null | grep_q -- "^vpnd-$id-"; then
            echo "$id"
            return 0
        fi
    done
}
VPND_RUN_ID="$(_ns_new_run_id)"
export VPND_RUN_ID
# Work directory of this run: logs, keys, transfer results. Kept only when VPND_KEEP_WORKDIR=1.
VPND_ITEST_DIR="$(mktemp -d "${TMPDIR:-/tmp}/vpnd-itest-$VPND_RUN_ID.XXXX")"
export VPND_ITEST_DIR

_NS_NAMES=()     # logical names of the namespaces created by this run
_NS_PIDS=()      # PIDs started with ns_spawn
_NS_SOCKETS=()   # files to remove on cleanup (wireguard-go control sockets)
_NS_DIAG=()      # commands whose output helps explain a failure (see on_failure_show)
_NS_CLEANED=0

log() { printf '== [%s] %s\n' "$(date +%T)" "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

# Full name of a logical namespace.
ns() { printf 'vpnd-%s-%s' "$VPND_RUN_ID" "$1"; }

# Runs a command inside a namespace, bounded by a timeout: in_ns NS [--timeout S] cmd...
in_ns() {
    local name="$1" t=30
    shift
    if [ "${1:-}" = "--timeout" ]; then t="$2"; shift 2; fi
    timeout --kill-after=2 "$t" ip netns exec "$(ns "$name")" "$@"
}

# A globally unique interface name for ROLE (e.g. "a"), at most 15 characters.
unique_ifname() {
    local name="v${VPND_RUN_ID}$1"
    [ ${#name} -le 15 ] || fail "interface name $name is longer than 15 characters; use a shorter role than '$1'"
    printf '%s' "$name"
}

# Creates namespace NS with lo up (and IPv6 DAD off so addresses are usable at once).
ns_create() {
    local name="$1" full
    full="$(ns "$name")"
    timeout 10 ip netns add "$full" || fail "ip netns add $full failed (need root)"
    _NS_NAMES+=("$name")
    timeout 10 ip -n "$full" link set lo up
    in_ns "$name" --timeout 5 sysctl -qw net.ipv6.conf.all.accept_dad=0 2>/dev/null || true
    in_ns "$name" --timeout 5 sysctl -qw net.ipv6.conf.default.accept_dad=0 2>/dev/null || true
}

# Joins two namespaces with a veth pair, addresses and links up:
#   ns_link NS1 IF1 CIDR1 NS2 IF2 CIDR2       (a CIDR of "-" leaves that end without an address)
ns_link() {
    local n1="$1" if1="$2" a1="$3" n2="$4" if2="$5" a2="$6"
    [ ${#if1} -le 15 ] && [ ${#if2} -le 15 ] || fail "veth names must be at most 15 characters: $if1 $if2"
    timeout 10 ip -n "$(ns "$n1")" link add "$if1" type veth peer name "$if2" netns "$(ns "$n2")"
    [ "$a1" = "-" ] || timeout 10 ip -n "$(ns "$n1")" addr add "$a1" dev "$if1"
    [ "$a2" = "-" ] || timeout 10 ip -n "$(ns "$n2")" addr add "$a2" dev "$if2"
    timeout 10 ip -n "$(ns "$n1")" link set "$if1" up
    timeout 10 ip -n "$(ns "$n2")" link set "$if2" up
}

# Topology: two endpoints on one veth (see the diagram at the top).
ns_pair() {
    local a="$1" b="$2"
    ns_create "$a"
    ns_create "$b"
    ns_link "$a" eth0 198.18.0.1/24 "$b" eth0 198.18.0.2/24
    UNDERLAY_A=198.18.0.1
    UNDERLAY_B=198.18.0.2
}

# Topology: endpoints A and B on two subnets, routed through HUB (see the diagram at the top).
ns_routed() {
    local a="$1" hub="$2" b="$3"
    ns_create "$a"
    ns_create "$hub"
    ns_create "$b"
    ns_link "$a" eth0 198.18.1.1/24 "$hub" eth-a 198.18.1.254/24
    ns_link "$b" eth0 198.18.2.1/24 "$hub" eth-b 198.18.2.254/24
    in_ns "$hub" --timeout 5 sysctl -qw net.ipv4.ip_forward=1
    timeout 10 ip -n "$(ns "$a")" route add default via 198.18.1.254
    timeout 10 ip -n "$(ns "$b")" route add default via 198.18.2.254
    UNDERLAY_A=198.18.1.1
    UNDERLAY_B=198.18.2.1
    HUB_A=198.18.1.254
    HUB_B=198.18.2.254
}

# Starts a long-running program in a namespace in the background, output to $VPND_ITEST_DIR/LOG.log;
# its PID is tracked for cleanup and left in $SPAWNED_PID:   ns_spawn NS LOG cmd...
# `ip netns exec` execs, so the PID is the program's own. Call it directly (not in $(...)).
ns_spawn() {
    local name="$1" logname="$2"
    shift 2
    ip netns exec "$(ns "$name")" "$@" >"$VPND_ITEST_DIR/$logname.log" 2>&1 &
    SPAWNED_PID=$!
    _NS_PIDS+=("$SPAWNED_PID")
}

# Registers a file (e.g. a control socket) to delete on cleanup.
track_socket() { _NS_SOCKETS+=("$1"); }

# Registers a command whose output is printed if the scenario fails (before cleanup): e.g.
#   on_failure_show in_ns a wg show
on_failure_show() { _NS_DIAG+=("$(printf '%q ' "$@")"); }

# Polls until a command succeeds:   wait_for "description" TIMEOUT_SECONDS cmd...
# External commands get the remaining time as their own timeout; shell functions must be bounded
# themselves (every helper here is).
wait_for() {
    local desc="$1" limit="$2"
    shift 2
    local deadline=$((SECONDS + limit)) left
    while :; do
        left=$((deadline - SECONDS))
        [ "$left" -ge 1 ] || left=1
        if [ "$(type -t "$1")" = "function" ]; then
            "$@" >/dev/null 2>&1 && return 0
        else
            timeout --kill-after=1 "$left" "$@" >/dev/null 2>&1 && return 0
        fi
        [ "$SECONDS" -lt "$deadline" ] || { echo "timed out after ${limit}s waiting for $desc" >&2; return 1; }
        sleep 0.1
    done
}

# Succeeds once ADDR answers one echo request from NS within TIMEOUT seconds (default 10).
ping_ok() {
    local name="$1" addr="$2" t="${3:-10}"
    in_ns "$name" --timeout $((t + 2)) ping -n -q -c 1 -i 0.2 -w "$t" "$addr" >/dev/null \
        || { echo "no ping reply from $addr in $name within ${t}s" >&2; return 1; }
}

# Checksummed TCP transfer: a receiver in NS_TO listens on ADDR:PORT and hashes what it gets; a sender
# in NS_FROM streams BYTES (suffix K/M/G allowed) of seeded pseudo-random data and hashes what it sent.
#   transfer_check NS_FROM NS_TO ADDR BYTES [TIMEOUT_SECONDS=120] [PORT=5201]
transfer_check() {
    local from="$1" to="$2" addr="$3" bytes="$4" t="${5:-120}" port="${6:-5201}"
    local tag="xfer-$from-$to-$port-$RANDOM" xfer="$VPND_REPO/scripts/lib/xfer.py"
    local ready="$VPND_ITEST_DIR/$tag.ready" rpid sent got
    ns_spawn "$to" "$tag-recv" timeout --kill-after=2 "$((t + 10))" python3 "$xfer" recv \
        --bind "$addr" --port "$port" --ready-file "$ready" --timeout "$t"
    rpid=$SPAWNED_PID
    wait_for "transfer receiver on $addr:$port in $to" 10 test -e "$ready" \
        || { cat "$VPND_ITEST_DIR/$tag-recv.log" >&2; return 1; }
    if ! sent="$(in_ns "$from" --timeout "$((t + 5))" python3 "$xfer" send --to "$addr" --port "$port" \
        --bytes "$bytes" --seed "$RANDOM" --timeout "$t" 2>"$VPND_ITEST_DIR/$tag-send.log")"; then
        echo "transfer sender $from -> $addr:$port failed: $(tail -n 3 "$VPND_ITEST_DIR/$tag-send.log")" >&2
        return 1
    fi
    wait "$rpid" || { echo "transfer receiver failed: $(tail -n 3 "$VPND_ITEST_DIR/$tag-recv.log")" >&2; return 1; }
    got="$(grep '^received ' "$VPND_ITEST_DIR/$tag-recv.log" | sed 's/^received //')"
    if [ "$sent" != "$got" ]; then
        echo "transfer $from -> $to mismatch: sent [$sent], received [$got]" >&2
        return 1
    fi
    log "transfer $from -> $to ($addr): $sent"
}

# iperf3 through ADDR: server in NS_SERVER (one test, then it exits), client in NS_CLIENT.
# Prints the result line and sets IPERF3_MBPS (receiver side, Mbit/s, integer).
#   iperf3_check NS_CLIENT NS_SERVER ADDR [SECONDS=5] [extra client args...]
iperf3_check() {
    local client="$1" server="$2" addr="$3" secs="${4:-5}"
    shift 3
    [ $# -eq 0 ] || shift
    local port=$((5300 + RANDOM % 500)) tag="iperf3-$client-$server-$RANDOM" spid
    ns_spawn "$server" "$tag-server" timeout --kill-after=2 "$((secs + 30))" iperf3 -s -1 -p "$port" -B "$addr"
    spid=$SPAWNED_PID
    wait_for "iperf3 server on $addr:$port in $server" 10 \
        in_ns "$server" --timeout 3 sh -c "ss -Hltn 'sport = :$port' | grep -q ." || return 1
    in_ns "$client" --timeout "$((secs + 20))" iperf3 -c "$addr" -p "$port" -t "$secs" \
        --connect-timeout 3000 -J "$@" >"$VPND_ITEST_DIR/$tag.json" \
        || { echo "iperf3 client $client -> $addr failed" >&2; tail -n 5 "$VPND_ITEST_DIR/$tag.json" >&2; return 1; }
    wait "$spid" || true
    IPERF3_MBPS="$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"] / 1e6))' "$VPND_ITEST_DIR/$tag.json")"
    log "iperf3 $client -> $server ($addr, ${secs}s): $IPERF3_MBPS Mbit/s"
}

# Random loss with nftables in a namespace: drops PERCENT % of the packets at HOOK (input, output or
# forward; forward in a hub), optionally only those matching an nft expression (e.g. "meta l4proto udp").
#   nft_loss NS PERCENT [HOOK=input] [MATCH]     (nft_loss NS 0 removes it)
nft_loss() {
    local name="$1" pct="$2" hook="${3:-input}" match="${4:-}"
    in_ns "$name" --timeout 5 nft delete table inet vpnd_loss 2>/dev/null || true
    [ "$pct" -gt 0 ] || return 0
    printf 'table inet vpnd_loss {\n chain %s {\n  type filter hook %s priority 0; policy accept;\n  %s numgen random mod 100 < %s counter drop\n }\n}\n' \
        "$hook" "$hook" "$match" "$pct" | in_ns "$name" --timeout 5 nft -f -
}

# Number of packets nft_loss has dropped so far in NS.
nft_loss_dropped() {
    in_ns "$1" --timeout 5 nft list table inet vpnd_loss | sed -n 's/.*counter packets \([0-9]*\).*/\1/p'
}

# Starts scripts/impair.py in NS (a UDP relay with loss, reordering, duplication and delay) and waits
# until it listens. Its options follow LISTEN and TARGET:  impair_start NS HOST:PORT HOST:PORT [opts...]
impair_start() {
    local name="$1" listen="$2" target="$3" tag="impair-$1-$RANDOM"
    shift 3
    ns_spawn "$name" "$tag" python3 -u "$VPND_REPO/scripts/impair.py" --listen "$listen" --target "$target" "$@"
    IMPAIR_PID=$SPAWNED_PID
    IMPAIR_LOG="$VPND_ITEST_DIR/$tag.log"
    wait_for "impair.py listening on $listen" 10 grep -q '^impair: listening' "$IMPAIR_LOG" \
        || { cat "$IMPAIR_LOG" >&2; return 1; }
}

# Stops the relay started by impair_start and prints its counters.
impair_stop() {
    kill -TERM "$IMPAIR_PID" 2>/dev/null || true
    wait "$IMPAIR_PID" 2>/dev/null || true
    grep '^impair: ' "$IMPAIR_LOG" | tail -n 3 || true
}

# Fails unless the program exists: $VPND_BIN_DIR/NAME for the project's binaries.
require_bin() {
    local path="${VPND_BIN_DIR:-}/$1"
    [ -n "${VPND_BIN_DIR:-}" ] || fail "VPND_BIN_DIR is not set; run via swift test or export it (e.g. .build/debug)"
    [ -x "$path" ] || fail "$path not found; build it first (swift build --product $1)"
    printf '%s' "$path"
}

_ns_kill_all() {
    local pid name full
    for pid in "${_NS_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for name in "${_NS_NAMES[@]}"; do
        full="$(ns "$name")"
        for pid in $(ip netns pids "$full" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
    done
    local deadline=$((SECONDS + 3)) alive
    while :; do
        alive=""
        for pid in "${_NS_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        for name in "${_NS_NAMES[@]}"; do
            [ -n "$(ip netns pids "$(ns "$name")" 2>/dev/null)" ] && alive=1
        done
        [ -z "$alive" ] && break
        if [ "$SECONDS" -ge "$deadline" ]; then
            for pid in "${_NS_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
            for name in "${_NS_NAMES[@]}"; do
                for pid in $(ip netns pids "$(ns "$name")" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
            done
            sleep 0.2
            break
        fi
        sleep 0.1
    done
    for pid in "${_NS_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}

# Tears the run down; installed as the EXIT trap. Safe to call twice.
ns_cleanup() {
    local rc=$?
    [ "$_NS_CLEANED" = 0 ] || return 0
    _NS_CLEANED=1
    set +e
    trap '' INT TERM
    if [ "$rc" -ne 0 ]; then
        echo "---- scenario failed (exit $rc); diagnostics of run $VPND_RUN_ID ----" >&2
        local cmd f
        for cmd in "${_NS_DIAG[@]}"; do
            echo "\$ $cmd" >&2
            # A helper function (in_ns) bounds itself; timeout(1) cannot run one.
            if [ "$(type -t "${cmd%% *}")" = "function" ]; then
                eval "$cmd" >&2 2>&1
            else
                eval "timeout 5 $cmd" >&2 2>&1
            fi
        done
        for f in "$VPND_ITEST_DIR"/*.log; do
            [ -e "$f" ] || continue
            echo "---- tail of $(basename "$f")" >&2
            tail -n 15 "$f" >&2
        done
    fi
    _ns_kill_all
    local name s
    for s in "${_NS_SOCKETS[@]}"; do
        rm -f "$s"
        # A namespace's own run directory (/run/vpnd/netns/NS) goes too, once empty.
        case "$(dirname "$s")" in /run/vpnd/netns/*) rmdir "$(dirname "$s")" 2>/dev/null || true ;; esac
    done
    for name in "${_NS_NAMES[@]}"; do timeout 10 ip netns del "$(ns "$name")" 2>/dev/null; done
    if [ "${VPND_KEEP_WORKDIR:-0}" = 1 ]; then
        echo "work directory kept: $VPND_ITEST_DIR" >&2
    else
        rm -rf "$VPND_ITEST_DIR"
    fi
    return "$rc"
}

trap ns_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
