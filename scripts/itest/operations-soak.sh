#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The operations soak, short: 50 rounds of reload + peer add + peer remove on a server while a
# client's checksummed transfers run; memory and descriptors must not grow (scripts/soak-operations;
# the full 1,000 rounds are run by hand, figures in the notes).
exec "$VPND_REPO/scripts/soak-operations" --count 50
