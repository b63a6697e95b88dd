// SPDX-License-Identifier: MIT
import VPNBasics

/// Command-line flags that replace values from the configuration file.
///
/// Each is the flag's text as typed (nil when the flag is absent), so that flags get exactly the
/// checks the file gets, with messages that name the flag: `--listen-port: "0" is not a port
/// number (1-65535)`.
public struct ConfigOverrides: Equatable, Sendable {
    /// `--listen-port PORT`: replaces ListenPort.
    public var listenPort: String?
    /// `--endpoint HOST:PORT`: replaces the Endpoint of the only [Peer].
    public var endpoint: String?
    /// `--mode tun|tap`: replaces Mode.
    public var mode: String?
    /// `--transport udp|tcp`: replaces Transport.
    public var transport: String?
    /// `--mtu N`: replaces MTU.
    public var mtu: String?
    /// `--name IFNAME`: replaces Name.
    public var name: String?
    /// `--threads N|auto`: replaces Threads.
    public var threads: String?

    public init(
        listenPort: String? = nil, endpoint: String? = nil, mode: String? = nil, transport: String? = nil,
        mtu: String? = nil, name: String? = nil, threads: String? = nil
    ) {
        self.threads = threads
        self.listenPort = listenPort
        self.endpoint = endpoint
        self.mode = mode
        self.transport = transport
        self.mtu = mtu
        self.name = name
    }

    /// True when no flag is set.
    public var isEmpty: Bool { self == ConfigOverrides() }
}

extension Config {
    /// This configuration with the command-line overrides applied and checked as the file is.
    ///
    /// - Throws: ``ConfigError`` with an empty file name and a message starting with the flag,
    ///   e.g. `--endpoint: the configuration has 2 [Peer]s; set Endpoint in each [Peer] instead`.
    public func applying(_ overrides: ConfigOverrides) throws(ConfigError) -> Config {
        var result = self
        func flagError(_ flag: String, _ message: String) -> ConfigError {
            ConfigError(fileName: "", line: 0, message: "\(flag): \(message)")
        }
        func check<T>(_ flag: String, _ body: () throws(ValueProblem) -> T) throws(ConfigError) -> T {
            do throws(ValueProblem) { return try body() } catch { throw flagError(flag, error.message) }
        }
        if let text = overrides.listenPort {
            result.interface.listenPort = try check("--listen-port") { () throws(ValueProblem) in try ConfigValues.port(text) }
        }
        if let text = overrides.mode {
            result.interface.mode = try check("--mode") { () throws(ValueProblem) in try ConfigValues.mode(text) }
        }
        if let text = overrides.transport {
            result.interface.transport = try check("--transport") { () throws(ValueProblem) in try ConfigValues.transport(text) }
        }
        if let text = overrides.mtu {
            result.interface.mtu = try check("--mtu") { () throws(ValueProblem) in try ConfigValues.mtu(text) }
        }
        if let text = overrides.threads {
            result.interface.threads = try check("--threads") { () throws(ValueProblem) in try ConfigValues.threads(text) }
        }
        if let text = overrides.name {
            result.interface.name = try check("--name") { () throws(ValueProblem) in try ConfigValues.interfaceName(text) }
        }
        if let text = overrides.endpoint {
            let endpoint = try check("--endpoint") { () throws(ValueProblem) in try EndpointSpec.parse(text) }
            guard result.peers.count == 1 else {
                throw flagError(
                    "--endpoint", "\(describedFile) has \(result.peers.count) [Peer]s; set Endpoint in each [Peer] instead")
            }
            result.peers[0].endpoint = endpoint
        }

        // Checks that span keys, now that flags may have changed one side.
        if overrides.mode != nil {
            if result.interface.mode == .tun && result.interface.bridge != nil {
                throw flagError("--mode", "tun mode cannot use the Bridge set in \(describedFile); remove Bridge or use --mode tap")
            }
            if result.interface.mode == .tap && result.peers.count > 1 {
                throw flagError(
                    "--mode", "tap mode allows exactly one [Peer], and \(describedFile) has \(result.peers.count)")
            }
        }
        if overrides.mtu != nil, result.interface.mtu < Config.minimumIPv6MTU,
            let v6 = result.interface.addresses.first(where: { !$0.address.isIPv4 })
        {
            throw flagError(
                "--mtu",
                "\(result.interface.mtu) is below \(Config.minimumIPv6MTU), the minimum for IPv6, and Address \(v6) is IPv6")
        }
        if overrides.mtu != nil || overrides.transport != nil,
            result.interface.transport.carriesTCP, result.interface.mtu > Config.maximumTCPMTU
        {
            if overrides.mtu != nil {
                throw flagError(
                    "--mtu",
                    "\(result.interface.mtu) is too large for Transport = \(result.interface.transport.rawValue) (at most \(Config.maximumTCPMTU): a TCP "
                        + "frame holds 65535 bytes); lower it or use Transport = udp")
            }
            throw flagError(
                "--transport",
                "\(result.interface.transport.rawValue) carries an MTU of at most \(Config.maximumTCPMTU), and \(describedFile) has MTU "
                    + "\(result.interface.mtu); lower MTU (or --mtu) or use udp")
        }
        return result
    }

    /// The file name for messages, or "the configuration" when there is none.
    var describedFile: String { fileName.isEmpty ? "the configuration" : fileName }
}
