#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vpnd <-> vpnd in tun mode over TCP (Transport = tcp): tun-udp.sh with the other transport.
VPND_ITEST_TRANSPORT=tcp exec bash "$(dirname "$0")/tun-udp.sh"
