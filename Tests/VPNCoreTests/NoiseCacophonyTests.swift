// SPDX-License-Identifier: MIT
import Foundation
import Testing
import VPNBasics
import VPNCore
import VPNCrypto
import VPNTesting

/// One Cacophony test vector (https://github.com/haskell-cryptography/cacophony), as stored in
/// `shared/vectors/noise-cacophony.json`.
struct CacophonyVector: Decodable, CustomTestStringConvertible {
    struct Message: Decodable {
        let payload: String
        let ciphertext: String
    }

    let protocol_name: String
    let init_prologue: String
    let init_psks: [String]?
    let init_static: String?
    let init_ephemeral: String
    let init_remote_static: String?
    let resp_prologue: String
    let resp_psks: [String]?
    let resp_static: String?
    let resp_ephemeral: String?
    let handshake_hash: String
    let messages: [Message]

    var testDescription: String { protocol_name }
}

private struct VectorFile: Decodable {
    let vectors: [CacophonyVector]
}

/// Where the Cacophony vectors are: `shared/vectors/noise-cacophony.json` beside the repository
/// (`<repo>/Tests/VPNCoreTests/<file>.swift` → `<repo>/../shared/vectors/`). They are material
/// from elsewhere and are not copied into the repository, so a clone on its own has no such file:
/// outside CI the vector tests then say they were skipped (the project's own known-answer tests,
/// checked against an independent Python implementation, still run); with `CI=true` the file
/// must be there.
enum CacophonyFile {
    static func path(filePath: String = #filePath) -> String {
        let repo = URL(fileURLWithPath: filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return repo.deletingLastPathComponent().appendingPathComponent("shared/vectors/noise-cacophony.json").path
    }

    static var isPresent: Bool { FileManager.default.fileExists(atPath: path()) }
    static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }
    /// Run when the file is there, and always under CI (where a missing file fails).
    static var shouldRun: Bool { isPresent || isCI }
    static var skipReason: Comment {
        "the Cacophony vectors need \(path()) (the shared/ directory beside the checkout); with CI=true they are required"
    }
}

/// The vectors of ``CacophonyFile``.
func cacophonyVectors() throws -> [CacophonyVector] {
    let path = CacophonyFile.path()
    guard let data = FileManager.default.contents(atPath: path) else {
        throw VectorFileMissing(path: path)
    }
    return try JSONDecoder().decode(VectorFile.self, from: data).vectors
}

struct VectorFileMissing: Error, CustomStringConvertible {
    let path: String
    var description: String {
        "Noise vectors not found at \(path): the shared/ directory must sit beside the repository checkout"
    }
}

struct BadVectorField: Error, CustomStringConvertible {
    let value: String?
    var description: String { "test vector field missing or not 32 bytes of hex: \(value ?? "nil")" }
}

/// A 32-byte secret from a hex vector field.
func secretKey(_ text: String?) throws -> SecretKey {
    guard let text, let bytes = Hex.decode(text), let key = SecretKey(bytes) else { throw BadVectorField(value: text) }
    return key
}

/// A 32-byte public value from a hex vector field.
func publicKey(_ text: String?) throws -> Bytes32 {
    guard let text, let bytes = Hex.decode(text), let value = Bytes32(bytes) else { throw BadVectorField(value: text) }
    return value
}

func hex(_ text: String) -> [UInt8] {
    guard let bytes = Hex.decode(text) else { fatalError("bad hex in test vector: \(text)") }
    return bytes
}

@Suite("Noise IK / IKpsk2 against the Cacophony vectors", .enabled(if: CacophonyFile.shouldRun, CacophonyFile.skipReason))
struct NoiseCacophonyTests {
    static let wanted = ["Noise_IK_25519_ChaChaPoly_BLAKE2s", "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"]

    @Test("the vector file holds both IK vectors")
    func vectorsPresent() throws {
        let names = try cacophonyVectors().map(\.protocol_name)
        for name in Self.wanted {
            #expect(names.contains(name), "missing vector \(name)")
        }
    }

    @Test("handshake messages, handshake hash and transport messages match byte for byte",
          arguments: Self.wanted)
    func vector(name: String) throws {
        let vector = try #require(try cacophonyVectors().first { $0.protocol_name == name })
        let pattern: NoiseHandshakeState.Pattern = name.contains("psk2") ? .ikpsk2 : .ik
        #expect(pattern.protocolName == name)

        let initStatic = try secretKey(vector.init_static)
        let respStatic = try secretKey(vector.resp_static)
        let remoteStatic = try publicKey(vector.init_remote_static)
        #expect(remoteStatic == X25519.publicKey(for: respStatic))
        let initPSK = try vector.init_psks?.first.map { try secretKey($0) }
        let respPSK = try vector.resp_psks?.first.map { try secretKey($0) }
        #expect((initPSK != nil) == (pattern == .ikpsk2))

        // Cacophony's ephemerals are raw private keys; ScriptedEntropy replays them as the 32-byte fill.
        var initEntropy = ScriptedEntropy([hex(vector.init_ephemeral)])
        var respEntropy = ScriptedEntropy([hex(try #require(vector.resp_ephemeral))])

        let initPrologue = hex(vector.init_prologue)
        let respPrologue = hex(vector.resp_prologue)
        let initiator = initPrologue.withUnsafeBytes {
            NoiseInitiator(pattern: pattern, prologue: $0, localStatic: initStatic, remoteStatic: remoteStatic,
                           presharedKey: initPSK)
        }
        let responder = respPrologue.withUnsafeBytes {
            NoiseResponder(pattern: pattern, prologue: $0, localStatic: respStatic, presharedKey: respPSK)
        }

        // Message 1: initiator → responder.
        let payload1 = hex(vector.messages[0].payload)
        var message1 = [UInt8](repeating: 0, count: payload1.count + NoiseHandshakeState.message1Overhead)
        let awaiting = try payload1.withUnsafeBytes { p in
            try message1.withUnsafeMutableBytes { try initiator.writeMessage1(payload: p, into: $0, entropy: &initEntropy) }
        }
        #expect(Hex.encode(message1) == vector.messages[0].ciphertext)
        var received1 = [UInt8](repeating: 0, count: payload1.count)
        let answering = try message1.withUnsafeBytes { m in
            try received1.withUnsafeMutableBytes { try responder.readMessage1(m, payloadInto: $0) }
        }
        #expect(received1 == payload1)
        #expect(answering.initiatorStatic == X25519.publicKey(for: initStatic))

        // Message 2: responder → initiator.
        let payload2 = hex(vector.messages[1].payload)
        var message2 = [UInt8](repeating: 0, count: payload2.count + NoiseHandshakeState.message2Overhead)
        let responderDone = try payload2.withUnsafeBytes { p in
            try message2.withUnsafeMutableBytes { try answering.writeMessage2(payload: p, into: $0, entropy: &respEntropy) }
        }
        #expect(Hex.encode(message2) == vector.messages[1].ciphertext)
        var received2 = [UInt8](repeating: 0, count: payload2.count)
        let initiatorDone = try message2.withUnsafeBytes { m in
            try received2.withUnsafeMutableBytes { try awaiting.readMessage2(m, payloadInto: $0) }
        }
        #expect(received2 == payload2)

        #expect(initiatorDone.handshakeHash.description == vector.handshake_hash)
        #expect(responderDone.handshakeHash.description == vector.handshake_hash)

        // Messages 3...: transport, initiator sends the odd ones (3, 5) and the responder the even ones.
        let initKeys = initiatorDone.split()
        let respKeys = responderDone.split()
        #expect(initKeys.send.constantTimeEquals(respKeys.receive))
        #expect(initKeys.receive.constantTimeEquals(respKeys.send))
        var initiatorCounter: UInt64 = 0
        var responderCounter: UInt64 = 0
        for (index, message) in vector.messages.enumerated().dropFirst(2) {
            let fromInitiator = index % 2 == 0
            let sendKey = fromInitiator ? initKeys.send : respKeys.send
            let receiveKey = fromInitiator ? respKeys.receive : initKeys.receive
            let counter = fromInitiator ? initiatorCounter : responderCounter
            let payload = hex(message.payload)
            var sealed = [UInt8](repeating: 0, count: payload.count + 16)
            payload.withUnsafeBytes { p in
                sealed.withUnsafeMutableBytes { out in
                    ChaChaPoly.seal(p, into: out, key: sendKey, counter: counter,
                                    authenticating: UnsafeRawBufferPointer(start: nil, count: 0))
                }
            }
            #expect(Hex.encode(sealed) == message.ciphertext, "transport message \(index + 1)")
            var opened = [UInt8](repeating: 0, count: payload.count)
            let ok = sealed.withUnsafeBytes { c in
                opened.withUnsafeMutableBytes { out in
                    ChaChaPoly.open(c, into: out, key: receiveKey, counter: counter,
                                    authenticating: UnsafeRawBufferPointer(start: nil, count: 0))
                }
            }
            #expect(ok && opened == payload, "transport message \(index + 1) opens on the other side")
            if fromInitiator { initiatorCounter += 1 } else { responderCounter += 1 }
        }
        #expect(initiatorCounter == 2 && responderCounter == 2)
    }
}

/// Noise behaviour that needs no vector file.
@Suite("Noise IK / IKpsk2 without vectors")
struct NoisePrologueTests {
    @Test("a responder with another prologue cannot read message 1")
    func prologueMismatch() throws {
        var entropy = SeededEntropy(seed: 7)
        let a = X25519.generatePrivateKey(using: &entropy)
        let b = X25519.generatePrivateKey(using: &entropy)
        let initiator = [UInt8]("one".utf8).withUnsafeBytes {
            NoiseInitiator(pattern: .ikpsk2, prologue: $0, localStatic: a, remoteStatic: X25519.publicKey(for: b))
        }
        let responder = [UInt8]("two".utf8).withUnsafeBytes {
            NoiseResponder(pattern: .ikpsk2, prologue: $0, localStatic: b)
        }
        var message = [UInt8](repeating: 0, count: NoiseHandshakeState.message1Overhead)
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        _ = try message.withUnsafeMutableBytes { try initiator.writeMessage1(payload: empty, into: $0, entropy: &entropy) }
        #expect(throws: NoiseError.decryptionFailed) {
            try message.withUnsafeBytes { m in
                try responder.readMessage1Identity(UnsafeRawBufferPointer(rebasing: m[0..<80]))
            }
        }
    }
}
