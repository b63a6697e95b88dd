// SPDX-License-Identifier: MIT
import VPNBasics

extension UDPSocket: SegmentedDatagramSocket {}
