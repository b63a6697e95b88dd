# SPDX-License-Identifier: MIT
# vpnd in the harness's namespaces: keys, config files, daemons, `vpnd show`. Source
# scripts/lib/netns.sh first.
#
# Every daemon gets its own run directory, $VPND_ITEST_DIR/run-LOG (VPND_RUN_DIR: control socket and
# remembered endpoints), because the file system is shared by all namespaces.

[ -n "${VPND_RUN_ID:-}" ] || { echo "source scripts/lib/netns.sh before vpnd.sh" >&2; exit 1; }

VPND="$(require_bin vpnd)"
VPND_KEYGEN="$(require_bin vpnd-keygen)"

# Key pair made with vpnd-keygen: $VPND_ITEST_DIR/keys/NAME.key (0600) and NAME.pub.
vpnd_keypair() {
    local dir="$VPND_ITEST_DIR/keys"
    mkdir -p "$dir"
    chmod 700 "$dir"
    (umask 077 && timeout 5 "$VPND_KEYGEN" genkey >"$dir/$1.key")
    timeout 5 "$VPND_KEYGEN" pubkey <"$dir/$1.key" >"$dir/$1.pub"
}

# Pre-shared key made with vpnd-keygen: $VPND_ITEST_DIR/keys/NAME.psk (0600).
vpnd_psk() {
    local dir="$VPND_ITEST_DIR/keys"
    mkdir -p "$dir"
    (umask 077 && timeout 5 "$VPND_KEYGEN" genpsk >"$dir/$1.psk")
}

vpnd_key_file() { printf '%s' "$VPND_ITEST_DIR/keys/$1.key"; }
vpnd_psk_file() { printf '%s' "$VPND_ITEST_DIR/keys/$1.psk"; }
vpnd_pub() { cat "$VPND_ITEST_DIR/keys/$1.pub"; }

# Writes a one-peer config file to $VPND_ITEST_DIR/NAME.conf:
#   vpnd_config NAME --key K --peer P [--address CIDR] [--allowed CIDRS] [--port N] [--endpoint H:P]
#               [--mode tun|tap] [--transport udp|tcp] [--ifname IF] [--psk PSKNAME] [--keepalive S]
#               [--mtu N]
# K and P are names given to vpnd_keypair (P's public key goes into [Peer]); PSKNAME to vpnd_psk.
vpnd_config() {
    local name="$1"
    shift
    local key="" peer="" address="" allowed="" port="" endpoint="" mode="" transport="" ifname="" psk=""
    local keepalive="" mtu="" cipher="${VPND_ITEST_CIPHER:-}"
    while [ $# -gt 0 ]; do
        case "$1" in
            --key) key="$2" ;;
            --peer) peer="$2" ;;
            --address) address="$2" ;;
            --allowed) allowed="$2" ;;
            --port) port="$2" ;;
            --endpoint) endpoint="$2" ;;
            --mode) mode="$2" ;;
            --transport) transport="$2" ;;
            --ifname) ifname="$2" ;;
            --psk) psk="$2" ;;
            --keepalive) keepalive="$2" ;;
            --mtu) mtu="$2" ;;
            --cipher) cipher="$2" ;;
            *) fail "vpnd_config: unknown option $1" ;;
        esac
        shift 2
    done
    [ -n "$key" ] && [ -n "$peer" ] || fail "vpnd_config needs --key and --peer"
    {
        echo "[Interface]"
        echo "PrivateKeyFile = $(vpnd_key_file "$key")"
        [ -z "$address" ] || echo "Address = $address"
        [ -z "$port" ] || echo "ListenPort = $port"
        [ -z "$mode" ] || echo "Mode = $mode"
        [ -z "$transport" ] || echo "Transport = $transport"
        [ -z "$ifname" ] || echo "Name = $ifname"
        [ -z "$mtu" ] || echo "MTU = $mtu"
        [ -z "$cipher" ] || echo "Cipher = $cipher"
        echo
        echo "[Peer]"
        echo "PublicKey = $(vpnd_pub "$peer")"
        [ -z "$psk" ] || echo "PresharedKeyFile = $(vpnd_psk_file "$psk")"
        [ -z "$allowed" ] || echo "AllowedIPs = $allowed"
        [ -z "$endpoint" ] || echo "Endpoint = $endpoint"
        [ -z "$keepalive" ] || echo "PersistentKeepalive = $keepalive"
    } >"$VPND_ITEST_DIR/$name.conf"
}

vpnd_conf_file() { printf '%s' "$VPND_ITEST_DIR/$1.conf"; }
vpnd_run_dir() { printf '%s' "$VPND_ITEST_DIR/run-$1"; }
vpnd_log_file() { printf '%s' "$VPND_ITEST_DIR/$1.log"; }

# Starts vpnd in NS with its own run directory and log ($VPND_ITEST_DIR/LOG.log, appended to, so a
# restarted daemon keeps the earlier lines), then waits until its control socket answers.
#   vpnd_start NS LOG IFNAME --server|--client --config FILE [more vpnd args...]
# Extra environment (e.g. VPND_TEST_REKEY_AFTER_SECONDS) comes from VPND_EXTRA_ENV (a string of
# NAME=VALUE words). The PID is left in $VPND_PID (and $SPAWNED_PID).
vpnd_start() {
    local name="$1" logname="$2" ifname="$3"
    shift 3
    local dir logfile
    dir="$(vpnd_run_dir "$logname")"
    logfile="$(vpnd_log_file "$logname")"
    mkdir -p "$dir"
    # Not ns_spawn: that truncates the log, and a restarted daemon should add to it.
    # VPND_EXTRA_FLAGS (e.g. --no-offload) is appended to every daemon's command line, so the
    # whole suite can be rerun with the offloads off.
    # shellcheck disable=SC2086
    ip netns exec "$(ns "$name")" env VPND_RUN_DIR="$dir" ${VPND_EXTRA_ENV:-} "$VPND" "$@" ${VPND_EXTRA_FLAGS:-} \
        >>"$logfile" 2>&1 &
    SPAWNED_PID=$!
    _NS_PIDS+=("$SPAWNED_PID")
    VPND_PID=$SPAWNED_PID
    local pid=$VPND_PID
    on_failure_show env VPND_RUN_DIR="$dir" "$VPND" show "$ifname"
    wait_for "vpnd $logname control socket" 15 vpnd_alive_and_listening "$pid" "$dir" "$ifname" \
        || { kill -0 "$pid" 2>/dev/null || echo "vpnd $logname exited early: $(tail -n 5 "$logfile")" >&2; return 1; }
}

vpnd_alive_and_listening() {
    kill -0 "$1" 2>/dev/null && test -S "$2/$3.sock" && VPND_RUN_DIR="$2" timeout 3 "$VPND" show "$3" >/dev/null 2>&1
}

# `vpnd show` against the daemon started as LOG:   vpnd_show LOG IFNAME [--json]
vpnd_show() {
    local logname="$1"
    shift
    VPND_RUN_DIR="$(vpnd_run_dir "$logname")" timeout 5 "$VPND" show "$@"
}

# What `vpnd show --json` says, through scripts/lib/vpnd_json.py (its header lists the names an
# expression can use: doc, peers, peer, tcp, drops, now, handshake_at). The daemon is the one started as
# LOG; its interface is the only control socket in its run directory.
#   vpnd_json LOG EXPR       prints the value (a string as it is, anything else as JSON: true, null, 1220)
#   vpnd_json_ok LOG EXPR    succeeds if the value is true (for `|| fail` and wait_for), prints nothing
# e.g.  wait_for "a session" 10 vpnd_json_ok client 'peer["has_session"]'
#       [ "$(vpnd_json server 'drops["replayed"]')" -eq 0 ] || fail "..."
VPND_JSON_PY="$VPND_REPO/scripts/lib/vpnd_json.py"
vpnd_json() { timeout 10 python3 "$VPND_JSON_PY" "$VPND" "$(vpnd_run_dir "$1")" "$2"; }
vpnd_json_ok() { timeout 10 python3 "$VPND_JSON_PY" --ok "$VPND" "$(vpnd_run_dir "$1")" "$2" >/dev/null; }

# Samples EXPR five times a second in the background, one "EPOCH VALUE" line each, into
# $VPND_ITEST_DIR/watch-NAME.log, until vpnd_json_watch_stop NAME (or cleanup):
#   vpnd_json_watch LOG NAME EXPR
declare -gA _VPND_WATCH_PIDS=()
vpnd_json_watch() {
    python3 "$VPND_JSON_PY" --watch 0.2 "$VPND" "$(vpnd_run_dir "$1")" "$3" >"$(vpnd_json_watch_file "$2")" 2>&1 &
    _VPND_WATCH_PIDS[$2]=$!
    _NS_PIDS+=("$!")
}
vpnd_json_watch_file() { printf '%s' "$VPND_ITEST_DIR/watch-$1.log"; }
vpnd_json_watch_stop() {
    kill -TERM "${_VPND_WATCH_PIDS[$1]:-}" 2>/dev/null || true
    wait "${_VPND_WATCH_PIDS[$1]:-}" 2>/dev/null || true
}

# Handshakes a watch of 'handshake_at' saw: distinct handshake instants, more than 0.5 s apart (a
# sample's instant is off by the time `vpnd show` took).   vpnd_handshakes_seen NAME
vpnd_handshakes_seen() {
    awk '$2 ~ /^[0-9.]+$/ { print $2 }' "$(vpnd_json_watch_file "$1")" | sort -n \
        | awk 'NR == 1 || $1 - prev > 0.5 { n++ } { prev = $1 } END { print n + 0 }'
}

# Drops counted for REASON by LOG's daemon (interface-wide plus every peer's):   vpnd_drops LOG REASON
vpnd_drops() { vpnd_json "$1" "drops[\"$2\"]"; }

# Every non-zero drop counter of LOG's daemon as "reason=N ..." (interface and peers added up).
vpnd_drops_summary() {
    vpnd_json "$1" '" ".join(f"{k}={v}" for k, v in sorted(drops.items()) if v) or "none"'
}

# Runs `vpnd doctor` against the daemon started as LOG and fails unless it exits with STATUS and its
# output contains every PHRASE (fixed strings). The output is kept in $VPND_ITEST_DIR/doctor-LOG.txt
# and printed, indented.   vpnd_doctor_expect LOG STATUS [PHRASE...]
vpnd_doctor_expect() {
    local logname="$1" want="$2" out status phrase
    shift 2
    out="$VPND_ITEST_DIR/doctor-$logname.txt"
    status=0
    VPND_RUN_DIR="$(vpnd_run_dir "$logname")" timeout 5 "$VPND" doctor >"$out" 2>&1 || status=$?
    sed 's/^/    /' "$out"
    [ "$status" = "$want" ] || fail "vpnd doctor for $logname exited with $status, expected $want"
    for phrase in "$@"; do
        grep -qF -- "$phrase" "$out" || fail "vpnd doctor for $logname does not say \"$phrase\""
    done
}

# Fails unless the process is still running:   vpnd_alive PID WHAT
vpnd_alive() { kill -0 "$1" 2>/dev/null || fail "$2 (pid $1) is no longer running"; }

# Counts lines of LOG's log that contain TEXT (fixed string).
vpnd_log_count() { grep -cF -- "$2" "$(vpnd_log_file "$1")" || true; }
