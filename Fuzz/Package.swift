// swift-tools-version: 6.1
// SPDX-License-Identifier: MIT
import PackageDescription

// libFuzzer harnesses over vpnd's protocol core. A package of its own so that the root package's
// `swift build` never sees them: they have no `main` (libFuzzer brings it) and only link with
// `-sanitize=fuzzer`. Build and run them with `scripts/fuzz TARGET SECONDS`.
let package = Package(
    name: "vpnd-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "vpnd", path: ".."),
    ],
    targets: [
        .target(
            name: "FuzzSupport",
            dependencies: [
                .product(name: "VPNCore", package: "vpnd"),
                .product(name: "VPNTesting", package: "vpnd"),
            ]),
        .executableTarget(name: "FuzzDecapsulate", dependencies: ["FuzzSupport"]),
        .executableTarget(name: "FuzzHandshake", dependencies: ["FuzzSupport"]),
        .executableTarget(name: "FuzzTCPDeframer", dependencies: ["FuzzSupport"]),
        .executableTarget(name: "FuzzConfig", dependencies: ["FuzzSupport"]),
        .executableTarget(name: "FuzzPMTU", dependencies: ["FuzzSupport"]),
        .executableTarget(name: "FuzzUAPI", dependencies: ["FuzzSupport"]),
    ]
)
