// SPDX-License-Identifier: MIT
import ArgumentParser

/// `vpnd`: placeholder until the daemon lands.
public struct VPNDCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "vpnd", abstract: "An encrypted point-to-point VPN (tun/tap over UDP or TCP).")
    public init() {}
    public func run() throws { print(VPNDCommand.helpMessage()) }
}

/// `vpnd-keygen`: placeholder.
public struct KeygenCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "vpnd-keygen", abstract: "Manage vpnd keys.")
    public init() {}
}
