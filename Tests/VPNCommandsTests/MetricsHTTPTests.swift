// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
@testable import VPNCommands

/// `MetricsListen`'s request judge and answers: bytes in, a decision and the bytes out.
@Suite("MetricsHTTP")
struct MetricsHTTPTests {
    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    static func decide(_ text: String, ended: Bool = false) -> MetricsHTTP.Decision {
        MetricsHTTP.decide(bytes(text), ended: ended)
    }

    @Test("GET and HEAD of /metrics (a query string ignored, bare LF accepted) are served")
    func served() {
        #expect(Self.decide("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9586\r\nAccept: */*\r\n\r\n") == .metrics(headOnly: false))
        #expect(Self.decide("HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n") == .metrics(headOnly: true))
        #expect(Self.decide("GET /metrics?name[]=vpnd HTTP/1.1\r\nhost: x\r\n\r\n") == .metrics(headOnly: false))
        #expect(Self.decide("GET /metrics HTTP/1.0\r\n\r\n") == .metrics(headOnly: false))
        #expect(Self.decide("GET /metrics HTTP/1.1\nHost: x\n\n") == .metrics(headOnly: false))
        #expect(Self.decide("\r\nGET /metrics HTTP/1.0\r\n\r\n") == .metrics(headOnly: false))
        // What follows the headers (a body, a second request) is not looked at.
        #expect(Self.decide("GET /metrics HTTP/1.0\r\n\r\nGET /other HTTP/1.0\r\n\r\n") == .metrics(headOnly: false))
    }

    @Test("an incomplete request waits for more, or is a 400 once the client stopped sending")
    func incomplete() {
        for partial in ["", "G", "GET /metrics HTTP/1.1", "GET /metrics HTTP/1.1\r\nHost: x\r\n", "GET /metrics HTTP/1.1\r\n\r"] {
            #expect(Self.decide(partial) == .needMore, "\(partial)")
            #expect(Self.decide(partial, ended: true) == .refuse(status: 400, headOnly: false), "\(partial)")
        }
    }

    @Test("other paths are 404, other methods on /metrics 405 (with Allow)")
    func pathsAndMethods() throws {
        #expect(Self.decide("GET / HTTP/1.1\r\nHost: x\r\n\r\n") == .refuse(status: 404, headOnly: false))
        #expect(Self.decide("GET /metrics/ HTTP/1.1\r\nHost: x\r\n\r\n") == .refuse(status: 404, headOnly: false))
        #expect(Self.decide("HEAD /favicon.ico HTTP/1.1\r\nHost: x\r\n\r\n") == .refuse(status: 404, headOnly: true))
        #expect(Self.decide("POST /other HTTP/1.1\r\nHost: x\r\n\r\n") == .refuse(status: 404, headOnly: false))
        for method in ["POST", "PUT", "DELETE", "OPTIONS", "get"] {
            #expect(Self.decide("\(method) /metrics HTTP/1.1\r\nHost: x\r\n\r\n") == .refuse(status: 405, headOnly: false))
        }
        let answer = try #require(MetricsHTTP.response(.refuse(status: 405, headOnly: false)) { nil })
        let text = String(decoding: answer, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 405 Method Not Allowed\r\n"))
        #expect(text.contains("\r\nAllow: GET, HEAD\r\n"))
        #expect(text.contains("\r\nConnection: close\r\n"))
    }

    @Test("malformed requests are 400, HTTP/2 or 0.9 are refused, HTTP/1.1 needs Host")
    func malformed() {
        for request in [
            "GET /metrics\r\n\r\n", "GET  /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "GET /metrics HTTP/1.1 extra\r\n\r\n",
            "G(T /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "GET /metrics HTTP/1.1\r\nno colon\r\n\r\n",
            "GET /metrics HTTP/1.1\r\n: empty name\r\n\r\n", "GET /metrics HTTP/1.1\r\nHo st: x\r\n\r\n",
            "GET /metrics HTTP/1.1\r\n\r\n", "GET /metrics HTTP/11\r\n\r\n", "\r\n\r\n",
        ] {
            #expect(Self.decide(request) == .refuse(status: 400, headOnly: false), "\(request.debugDescription)")
        }
        #expect(Self.decide("GET /metrics HTTP/2.0\r\n\r\n") == .refuse(status: 505, headOnly: false))
    }

    @Test("headers that do not end within 4096 bytes are a 431, at once and without waiting for the end")
    func tooLarge() {
        let head = "GET /metrics HTTP/1.1\r\nHost: x\r\n"
        let filler = "X-Filler: " + String(repeating: "a", count: 5000) + "\r\n"
        // The server hands over at most 4097 bytes: more than the limit without an end is decided.
        let first4097 = Array(Self.bytes(head + filler + "\r\n").prefix(MetricsHTTP.maximumRequestBytes + 1))
        #expect(MetricsHTTP.decide(first4097, ended: false) == .refuse(status: 431, headOnly: false))
        // Exactly at the limit, complete: served; one byte more: refused.
        var exact = head + "X-Pad: "
        exact += String(repeating: "p", count: MetricsHTTP.maximumRequestBytes - exact.utf8.count - 4) + "\r\n\r\n"
        #expect(exact.utf8.count == MetricsHTTP.maximumRequestBytes)
        #expect(Self.decide(exact) == .metrics(headOnly: false))
        let over = String(decoding: exact.utf8.dropLast(4), as: UTF8.self) + "p\r\n\r\n"
        #expect(over.utf8.count == MetricsHTTP.maximumRequestBytes + 1)
        #expect(Self.decide(over) == .refuse(status: 431, headOnly: false))
        // Exactly the limit and not complete yet: one more byte decides.
        #expect(MetricsHTTP.decide(Array(first4097.prefix(MetricsHTTP.maximumRequestBytes)), ended: false) == .needMore)
    }

    @Test("the metrics answer: status, the exposition's content type, its length, close; HEAD has no body")
    func metricsAnswer() throws {
        let body = "# HELP vpnd_peers Peers.\n# TYPE vpnd_peers gauge\nvpnd_peers{interface=\"vpnd0\"} 1\n"
        let get = String(decoding: try #require(MetricsHTTP.response(.metrics(headOnly: false)) { body }), as: UTF8.self)
        #expect(get == "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
            + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body)
        let head = String(decoding: try #require(MetricsHTTP.response(.metrics(headOnly: true)) { body }), as: UTF8.self)
        #expect(head == String(get.dropLast(body.count)))
        let unavailable = String(decoding: try #require(MetricsHTTP.response(.metrics(headOnly: false)) { nil }), as: UTF8.self)
        #expect(unavailable.hasPrefix("HTTP/1.1 503 Service Unavailable\r\n"))
        #expect(MetricsHTTP.response(.needMore) { body } == nil)
        // A refusal renders no metrics.
        let refused = try #require(MetricsHTTP.response(.refuse(status: 431, headOnly: false)) {
            Issue.record("rendered metrics for a refusal")
            return body
        })
        #expect(String(decoding: refused, as: UTF8.self).hasPrefix("HTTP/1.1 431 Request Header Fields Too Large\r\n"))
    }

    @Test("loopback addresses are told apart from the rest (the warning for exposed metrics)")
    func loopback() {
        #expect(MetricsHTTP.isLoopback(Endpoint(ipv4: 127, 0, 0, 1, port: 9586)))
        #expect(MetricsHTTP.isLoopback(Endpoint(ipv4: 127, 8, 9, 10, port: 9586)))
        #expect(MetricsHTTP.isLoopback(Endpoint("[::1]:9586")!))
        #expect(!MetricsHTTP.isLoopback(Endpoint(ipv4: 0, 0, 0, 0, port: 9586)))
        #expect(!MetricsHTTP.isLoopback(Endpoint(ipv4: 10, 0, 0, 1, port: 9586)))
        #expect(!MetricsHTTP.isLoopback(Endpoint("[::]:9586")!))
    }
}
