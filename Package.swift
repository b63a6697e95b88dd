// swift-tools-version: 6.1
// SPDX-License-Identifier: MIT
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("MemberImportVisibility"),
]
/// The data path's modules in release builds: no run-time exclusivity checks (swift_beginAccess
/// was 2 % of the packet thread's time; each module is single-threaded by design, and debug and
/// sanitizer builds keep the checks).
let hot: [SwiftSetting] = strict + [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "vpnd",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "vpnd", targets: ["vpnd"]),
        .executable(name: "vpnd-keygen", targets: ["vpnd-keygen"]),
        .executable(name: "vpnd-wg", targets: ["vpnd-wg"]),
        // For the fuzz harnesses in Fuzz/ (a separate package with this one as a path dependency).
        .library(name: "VPNCore", targets: ["VPNCore"]),
        .library(name: "VPNTesting", targets: ["VPNTesting"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    ],
    targets: [
        // C libraries and shims.
        .systemLibrary(name: "CSodium", pkgConfig: "libsodium", providers: [.apt(["libsodium-dev"])]),
        .systemLibrary(name: "CBlake2", pkgConfig: "libb2", providers: [.apt(["libb2-dev"])]),
        .systemLibrary(name: "CQREncode", pkgConfig: "libqrencode", providers: [.apt(["libqrencode-dev"])]),
        .systemLibrary(name: "CNFTables", pkgConfig: "libnftables", providers: [.apt(["libnftables-dev"])]),
        .target(name: "CLinuxShims", cSettings: [.define("_GNU_SOURCE")]),

        // Pure modules: no Foundation, no Glibc, no clock, no RNG, no logging.
        .target(name: "VPNBasics", swiftSettings: hot),
        .target(name: "VPNCrypto", dependencies: ["CSodium", "CBlake2", "VPNBasics"], swiftSettings: hot),
        .target(name: "VPNCore", dependencies: ["VPNCrypto", "VPNBasics"], swiftSettings: hot),

        // Linux I/O: moves bytes, never interprets a packet.
        .target(
            name: "VPNLinux",
            dependencies: ["VPNBasics", "CLinuxShims", "CNFTables", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: hot),

        // Data plane and control plane, written against the seams in VPNBasics.
        .target(
            name: "VPNDaemon",
            dependencies: ["VPNCore", "VPNCrypto", "VPNBasics", .product(name: "Logging", package: "swift-log")],
            swiftSettings: hot),

        // Composition root: the only place real Linux backends are built.
        .target(
            name: "VPNCommands",
            dependencies: [
                "VPNDaemon", "VPNLinux", "VPNCore", "VPNCrypto", "VPNBasics", "CQREncode",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .executableTarget(name: "vpnd", dependencies: ["VPNCommands", .product(name: "ArgumentParser", package: "swift-argument-parser")], swiftSettings: strict),
        .executableTarget(name: "vpnd-keygen", dependencies: ["VPNCommands", .product(name: "ArgumentParser", package: "swift-argument-parser")], swiftSettings: strict),
        .executableTarget(name: "vpnd-wg", dependencies: ["VPNCommands", .product(name: "ArgumentParser", package: "swift-argument-parser")], swiftSettings: strict),

        // Fakes shared by all tests.
        .target(name: "VPNTesting", dependencies: ["VPNDaemon", "VPNCore", "VPNCrypto", "VPNBasics"], swiftSettings: strict),

        // One-core figures for the protocol core (printed, never asserted).
        .executableTarget(
            name: "vpnd-microbench", dependencies: ["VPNCore", "VPNCrypto", "VPNBasics", "VPNTesting"],
            path: "Benchmarks/vpnd-microbench"),

        // Many WireGuard clients in one process, for handshake storms (scripts/handshake-storm).
        .executableTarget(
            name: "vpnd-loadgen", dependencies: ["VPNCore", "VPNCrypto", "VPNBasics", "VPNLinux"],
            path: "Benchmarks/vpnd-loadgen"),

        // Test only: counts a thread's heap allocations (the data path's steady-state test).
        .target(name: "CAllocationCounter", path: "Tests/CAllocationCounter"),

        .testTarget(name: "VPNBasicsTests", dependencies: ["VPNBasics", "VPNTesting"], swiftSettings: strict),
        .testTarget(name: "VPNCryptoTests", dependencies: ["VPNCrypto", "VPNBasics", "VPNTesting"], swiftSettings: strict),
        .testTarget(
            name: "VPNCoreTests", dependencies: ["VPNCore", "VPNCrypto", "VPNBasics", "VPNTesting", "CAllocationCounter"],
            swiftSettings: strict),
        .testTarget(name: "VPNLinuxTests", dependencies: ["VPNLinux", "VPNBasics"], swiftSettings: strict),
        .testTarget(
            name: "VPNDaemonTests",
            dependencies: [
                "VPNDaemon", "VPNCore", "VPNCrypto", "VPNBasics", "VPNTesting", "VPNLinux", "CAllocationCounter",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "VPNCommandsTests",
            dependencies: [
                "VPNCommands", "VPNDaemon", "VPNLinux", "VPNCore", "VPNCrypto", "VPNBasics", "VPNTesting",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        // Runs the built executables in network namespaces (root only; required under CI=true).
        .testTarget(name: "IntegrationTests", dependencies: [], swiftSettings: strict),
    ]
)
