# SPDX-License-Identifier: MIT
# Debian packages vpnd builds and tests with. Sourced by scripts/test, scripts/demo, scripts/bench.

VPND_PACKAGES=(
    pkg-config libsodium-dev libb2-dev   # build: crypto libraries
    libqrencode-dev                      # build: vpnd peer add --qr
    libnftables-dev                      # build: KillSwitch, Masquerade (libnftables)
    wireguard-tools wireguard-go         # keygen compatibility and interoperability tests
    iproute2 iputils-ping iperf3 nftables  # namespaces, ping, throughput, loss injection
    procps psmisc
    python3                              # integration harness: transfer checks, impair.py relay
    python3-prometheus-client            # metrics.sh parses `vpnd metrics` with the reference parser
    zbar-tools                           # peer-add.sh decodes the QR code with zbarimg
    curl                                 # metrics.sh scrapes MetricsListen over HTTP
    man-db groff-base systemd            # packaging.sh: man -l --warnings, systemd-analyze verify/security
    zsh fish                             # packaging.sh: the zsh and fish completions must parse (zsh -n, fish -n)
)

# Installs whatever in VPND_PACKAGES is missing (needs root; fails with a clear line otherwise).
ensure_packages() {
    local missing=()
    local pkg
    for pkg in "${VPND_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep "install ok installed" >/dev/null || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing Debian packages: ${missing[*]}; install them as root: apt-get install ${missing[*]}" >&2
        return 1
    fi
    echo "== installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
