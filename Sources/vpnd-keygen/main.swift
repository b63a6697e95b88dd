// SPDX-License-Identifier: MIT
import ArgumentParser
import VPNCommands

KeygenCommand.main()
