# SPDX-License-Identifier: MIT
# wireguard-go (Debian package) in the harness's namespaces: the baseline and the interop peer of vpnd.
# Source scripts/lib/netns.sh first.
#
# wireguard-go's control socket is /var/run/wireguard/IFNAME.sock in the root file system, shared by
# all namespaces, so every interface gets a globally unique name (unique_ifname); `wg` finds the
# interface through that socket, wherever it runs.

[ -n "${VPND_RUN_ID:-}" ] || { echo "source scripts/lib/netns.sh before wg.sh" >&2; exit 1; }

# Writes a key pair to $VPND_ITEST_DIR/keys/NAME.key (0600) and NAME.pub, in wg's base64 format
# (vpnd reads the same format).
wg_keypair() {
    local dir="$VPND_ITEST_DIR/keys"
    mkdir -p "$dir"
    chmod 700 "$dir"
    (umask 077 && timeout 5 wg genkey >"$dir/$1.key")
    timeout 5 wg pubkey <"$dir/$1.key" >"$dir/$1.pub"
}
wg_key_file() { printf '%s' "$VPND_ITEST_DIR/keys/$1.key"; }
wg_pub() { cat "$VPND_ITEST_DIR/keys/$1.pub"; }

# Starts `wireguard-go -f IFNAME` in NS (foreground, so its PID is tracked and killed on cleanup) and
# waits until its control socket exists.   wg_start NS IFNAME
wg_start() {
    local name="$1" ifname="$2" sock="/var/run/wireguard/$2.sock"
    [ ! -e "$sock" ] || fail "$sock already exists: another wireguard-go uses interface name $ifname"
    track_socket "$sock"
    # WG_PROCESS_FOREGROUND=1 also silences the "use the kernel module" banner.
    ns_spawn "$name" "wireguard-go-$ifname" env WG_PROCESS_FOREGROUND=1 LOG_LEVEL="${WG_LOG_LEVEL:-error}" \
        "${WG_GO_BIN:-wireguard-go}" -f "$ifname"
    local pid=$SPAWNED_PID
    wait_for "wireguard-go control socket $sock" 10 test -S "$sock" \
        || { kill -0 "$pid" 2>/dev/null || echo "wireguard-go $ifname exited early" >&2; return 1; }
    on_failure_show wg show "$ifname"
}

# Configures a running wireguard-go interface with one peer, then address, MTU and link up:
#   wg_up NS IFNAME --key NAME --address CIDR --peer NAME --allowed CIDR[,CIDR]
#         [--port N] [--endpoint HOST:PORT] [--keepalive S] [--mtu N] [--psk FILE]
# Keys are names given to wg_keypair.
wg_up() {
    local name="$1" ifname="$2"
    shift 2
    local key="" address="" peer="" allowed="" port="" endpoint="" keepalive="" mtu=1420 psk=""
    while [ $# -gt 0 ]; do
        case "$1" in
            --key) key="$2" ;;
            --address) address="$2" ;;
            --peer) peer="$2" ;;
            --allowed) allowed="$2" ;;
            --port) port="$2" ;;
            --endpoint) endpoint="$2" ;;
            --keepalive) keepalive="$2" ;;
            --mtu) mtu="$2" ;;
            --psk) psk="$2" ;;
            *) fail "wg_up: unknown option $1" ;;
        esac
        shift 2
    done
    [ -n "$key" ] && [ -n "$address" ] && [ -n "$peer" ] && [ -n "$allowed" ] \
        || fail "wg_up needs --key, --address, --peer and --allowed"
    local args=(private-key "$(wg_key_file "$key")")
    [ -z "$port" ] || args+=(listen-port "$port")
    args+=(peer "$(wg_pub "$peer")" allowed-ips "$allowed")
    [ -z "$psk" ] || args+=(preshared-key "$psk")
    [ -z "$endpoint" ] || args+=(endpoint "$endpoint")
    [ -z "$keepalive" ] || args+=(persistent-keepalive "$keepalive")
    in_ns "$name" --timeout 10 wg set "$ifname" "${args[@]}"
    in_ns "$name" --timeout 5 ip addr add "$address" dev "$ifname"
    in_ns "$name" --timeout 5 ip link set "$ifname" mtu "$mtu" up
}

# Seconds since the latest handshake of IFNAME's peers, or a failure if there was none.
wg_handshake_done() {
    local ts
    ts="$(timeout 5 wg show "$1" latest-handshakes | awk '{print $2}' | sort -n | tail -n 1)"
    [ -n "$ts" ] && [ "$ts" -gt 0 ]
}
