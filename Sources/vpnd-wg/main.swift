// SPDX-License-Identifier: MIT
import ArgumentParser
import VPNCommands

VPNDWireGuardCommand.main()
