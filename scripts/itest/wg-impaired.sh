#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# wireguard-go <-> wireguard-go through scripts/impair.py in a hub namespace (10% loss, 5% reordering,
# 1% duplication, 20 ms delay each way) with a 5 MB checksummed transfer; then nftables random loss
# (nft_loss) on b's UDP input with a 1 MB transfer. Proves the impairment tools work.
#
#   a (198.18.1.1) --> hub 198.18.1.254:40000 [impair.py] --> b 198.18.2.1:51820
#   a: wireguard-go 10.9.0.1/24, endpoint = the relay;  b: wireguard-go 10.9.0.2/24, learns a's endpoint
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/wg.sh"

ns_routed a hub b
impair_start hub "$HUB_A:40000" "$UNDERLAY_B:51820" \
    --loss 10% --reorder 5% --duplicate 1% --delay 20 --jitter 2 --seed 7 --duration 240
log "$(head -n 1 "$IMPAIR_LOG")"

wg_keypair a
wg_keypair b
WG_A="$(unique_ifname a)"
WG_B="$(unique_ifname b)"
wg_start a "$WG_A"
wg_start b "$WG_B"
wg_up b "$WG_B" --key b --address 10.9.0.2/24 --port 51820 --peer a --allowed 10.9.0.1/32
wg_up a "$WG_A" --key a --address 10.9.0.1/24 --port 51821 --peer b --allowed 10.9.0.2/32 \
    --endpoint "$HUB_A:40000" --keepalive 25

log "ping through the relay (handshake retries every 5 s if lost)"
ping_ok a 10.9.0.2 30
ping_ok b 10.9.0.1 10

log "5 MB through the relay"
SECONDS_BEFORE=$SECONDS
transfer_check a b 10.9.0.2 5M 150
log "took $((SECONDS - SECONDS_BEFORE)) s"
impair_stop
grep -q 'to-target: .* lost [1-9]' "$IMPAIR_LOG" || fail "impair.py lost nothing: is traffic bypassing it?"
grep -q 'to-target: .* reordered [1-9]' "$IMPAIR_LOG" || fail "impair.py reordered nothing"
grep -q 'to-target: .* duplicated [1-9]' "$IMPAIR_LOG" || fail "impair.py duplicated nothing"

log "nftables random loss: 10% of UDP into b, 1 MB"
impair_start hub "$HUB_A:40000" "$UNDERLAY_B:51820" --duration 120
nft_loss b 10 input "meta l4proto udp"
transfer_check a b 10.9.0.2 1M 60
DROPPED="$(nft_loss_dropped b)"
[ "${DROPPED:-0}" -gt 0 ] || fail "nft_loss dropped no packet"
log "nft_loss dropped $DROPPED packets"
log "wg-impaired passed"
