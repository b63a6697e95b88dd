# SPDX-License-Identifier: MIT
# Shared pieces of the fault scenarios (impaired, underlay-mtu-1280, roaming, tcp-reset, server-down,
# flood-garbage, replay, cookie-flood, tcp-garbage). Source scripts/lib/netns.sh and vpnd.sh first.
#
#   fault_star: a server namespace with a client and an attacker namespace, each on its own veth
#
#     cli 198.18.1.1 (eth0) ==veth== srv eth-c 198.18.1.254     srv: vpnd --server 10.9.0.1/24 :51820
#     atk 198.18.2.1 (eth0) ==veth== srv eth-x 198.18.2.254     cli: vpnd --client 10.9.0.2/24
#
#   Forwarding is off in srv: the attacker reaches only the server's own addresses.

HOSTILE="$VPND_REPO/scripts/lib/hostile.py"

fault_star() {
    ns_create srv
    ns_create cli
    ns_create atk
    ns_link cli eth0 198.18.1.1/24 srv eth-c 198.18.1.254/24
    ns_link atk eth0 198.18.2.1/24 srv eth-x 198.18.2.254/24
    in_ns srv --timeout 5 sysctl -qw net.ipv4.ip_forward=0
    SERVER_FOR_CLIENT=198.18.1.254
    SERVER_FOR_ATTACKER=198.18.2.254
}

# Keys and configs "server" and "client" for the star (or any topology): fault_configs ENDPOINT
# [TRANSPORT=udp] [extra vpnd_config args for the client...]
fault_configs() {
    local endpoint="$1" transport="${2:-udp}"
    shift 2 || shift $#
    vpnd_keypair server
    vpnd_keypair client
    vpnd_config server --key server --peer client --address 10.9.0.1/24 --port 51820 --allowed 10.9.0.2/32 \
        --transport "$transport" --ifname vpn0
    vpnd_config client --key client --peer server --address 10.9.0.2/24 --allowed 10.9.0.0/24 \
        --endpoint "$endpoint" --transport "$transport" --ifname vpn0 "$@"
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }
