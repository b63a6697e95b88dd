#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fails on purpose after starting processes in its namespaces; ScenarioTests checks that the EXIT trap
# left no namespace, process or wireguard-go socket behind. Not a template: see wg-baseline.sh.
source "$(dirname "$0")/../lib/netns.sh"
source "$VPND_REPO/scripts/lib/wg.sh"

echo "run id: $VPND_RUN_ID"
ns_pair a b
WG_A="$(unique_ifname a)"
wg_start a "$WG_A"
echo "spawned pid: $SPAWNED_PID"
ns_spawn b sleeper sleep 600
echo "spawned pid: $SPAWNED_PID"
in_ns b sh -c 'sleep 600' &   # untracked: found through `ip netns pids`
ping_ok a 10.255.0.1 1 || fail "deliberate failure"
echo "not reached"
