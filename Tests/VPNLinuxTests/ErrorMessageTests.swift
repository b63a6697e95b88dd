// SPDX-License-Identifier: MIT
import Glibc
import Testing
import VPNBasics
import VPNLinux

@Suite struct ErrorMessageTests {
    @Test func tunNameTooLong() {
        do {
            _ = try TunDevice(name: "a-name-far-too-long-for-linux", mode: .tun)
            Issue.record("a 29-byte interface name was accepted")
        } catch {
            #expect(
                error.description
                    == "ioctl(TUNSETIFF) a-name-far-too-long-for-linux: interface name is too long (29 bytes); "
                    + "use at most 15 bytes of letters, digits, '-' and '_'")
        }
    }

    @Test func netlinkPrefixParsing() {
        #expect(NetlinkPrefix("10.8.0.1/24")?.description == "10.8.0.1/24")
        #expect(NetlinkPrefix("10.8.0.1/24")?.network.description == "10.8.0.0/24")
        #expect(NetlinkPrefix("fd77::1/64")?.network.description == "fd77::/64")
        #expect(NetlinkPrefix("10.8.0.1")?.length == 32)
        #expect(NetlinkPrefix("10.8.0.1/33") == nil)
        #expect(NetlinkPrefix("10.8.0/24") == nil)
        #expect(NetlinkPrefix("fd77::1/+64") == nil)
    }

    @Test func unknownInterface() {
        #expect(throws: IOError.self) { _ = try Netlink.interfaceIndex(named: "vpnd-missing9") }
        do {
            _ = try Netlink.interfaceIndex(named: "vpnd-missing9")
        } catch {
            #expect(error.description == "if_nametoindex vpnd-missing9: no such device (ENODEV); no interface vpnd-missing9 in this network namespace")
        }
    }
}
