// SPDX-License-Identifier: MIT
import ArgumentParser
import VPNCommands

VPNDCommand.main()
