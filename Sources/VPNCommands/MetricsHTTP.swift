// SPDX-License-Identifier: MIT
import VPNBasics
import VPNLinux

/// `MetricsListen`: the metrics (``MetricsFormatter``) over HTTP for a Prometheus scraper, from
/// a deliberately small HTTP/1.1 responder. One request per connection (`Connection: close`),
/// `GET` or `HEAD` of `/metrics` only (a query string is ignored), at most
/// ``maximumRequestBytes`` of request line and headers, which must arrive within 2 s. The
/// request's bytes are judged by the pure ``decide(_:ended:)``; VPNLinux's
/// ``TCPRequestServer`` does the sockets, the limits and the thread.
enum MetricsHTTP {
    /// The largest request (request line and headers, with their CRLFs) that is read.
    static let maximumRequestBytes = 4096
    /// The bounds of the server: 8 connections at once, 2 s for the request, 2 s for the answer.
    static let limits = TCPRequestServer.Limits(
        maximumConnections: 8, maximumRequestBytes: maximumRequestBytes, requestTimeout: .seconds(2),
        responseTimeout: .seconds(2))
    /// The media type of the Prometheus text exposition format.
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// What to do with the bytes of a request received so far.
    enum Decision: Equatable {
        /// The request is not complete: read on (the server's bounds still apply).
        case needMore
        /// Serve the metrics: their headers, and with `GET` their text.
        case metrics(headOnly: Bool)
        /// Answer with an error status and close.
        case refuse(status: Int, headOnly: Bool)
    }

    /// Judges a request from its first bytes: `bytes` is everything received (the server reads
    /// at most ``maximumRequestBytes`` + 1), `ended` whether the client closed its side.
    ///
    /// 431 when the headers do not end within ``maximumRequestBytes``; 400 for a request that
    /// ends before its headers do, a malformed request line or header, or an HTTP/1.1 request
    /// without `Host`; 505 for an HTTP version other than 1.x; 404 for a path other than
    /// `/metrics`; 405 for a method other than GET or HEAD there.
    static func decide(_ bytes: [UInt8], ended: Bool) -> Decision {
        guard let end = headerEnd(bytes), end <= maximumRequestBytes else {
            // No end within the limit: more than the limit is too large, less may still come.
            if bytes.count > maximumRequestBytes { return .refuse(status: 431, headOnly: false) }
            return ended ? .refuse(status: 400, headOnly: false) : .needMore
        }
        // Lines end in CRLF (a bare LF is accepted, as RFC 9112 section 2.2 allows).
        let lines = bytes[..<end].split(separator: 0x0A, omittingEmptySubsequences: false).map { line in
            line.last == 0x0D ? line.dropLast() : line
        }
        // A leading empty line before the request line is tolerated (RFC 9112 section 2.2).
        var index = 0
        while index < lines.count && lines[index].isEmpty { index += 1 }
        guard index < lines.count else { return .refuse(status: 400, headOnly: false) }
        let parts = lines[index].split(separator: 0x20, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, parts[0].allSatisfy(isTokenByte), !parts[1].isEmpty else {
            return .refuse(status: 400, headOnly: false)
        }
        let method = String(decoding: parts[0], as: UTF8.self)
        let headOnly = method == "HEAD"
        let version = String(decoding: parts[2], as: UTF8.self)
        guard version.hasPrefix("HTTP/"), version.count == 8 else { return .refuse(status: 400, headOnly: headOnly) }
        guard version == "HTTP/1.1" || version == "HTTP/1.0" else { return .refuse(status: 505, headOnly: headOnly) }
        var hasHost = false
        for line in lines[(index + 1)...] where !line.isEmpty {
            guard let colon = line.firstIndex(of: 0x3A), colon > line.startIndex,
                line[..<colon].allSatisfy(isTokenByte)
            else { return .refuse(status: 400, headOnly: headOnly) }
            if String(decoding: line[..<colon], as: UTF8.self).lowercased() == "host" { hasHost = true }
        }
        if version == "HTTP/1.1" && !hasHost { return .refuse(status: 400, headOnly: headOnly) }
        let target = parts[1]
        let path = target.prefix { $0 != 0x3F }  // "?"
        guard path.elementsEqual("/metrics".utf8) else { return .refuse(status: 404, headOnly: headOnly) }
        guard method == "GET" || headOnly else { return .refuse(status: 405, headOnly: false) }
        return .metrics(headOnly: headOnly)
    }

    /// The answer for `decision`: for ``Decision/metrics(headOnly:)`` the text `metrics` gives
    /// (nil: the data plane did not answer, 503); nil for ``Decision/needMore``.
    static func response(_ decision: Decision, metrics: () -> String?) -> [UInt8]? {
        switch decision {
        case .needMore:
            return nil
        case .metrics(let headOnly):
            guard let text = metrics() else {
                return response(status: 503, body: "the data plane did not answer within 1 s\n", headOnly: headOnly)
            }
            return response(status: 200, contentType: contentType, body: text, headOnly: headOnly)
        case .refuse(let status, let headOnly):
            let body: String
            switch status {
            case 404: body = "not found: only /metrics is served here\n"
            case 405: body = "method not allowed: use GET or HEAD\n"
            case 431: body = "request headers too large: at most \(maximumRequestBytes) bytes\n"
            case 505: body = "HTTP version not supported: use HTTP/1.1\n"
            default: body = "bad request\n"
            }
            return response(status: status, body: body, headOnly: headOnly)
        }
    }

    /// A complete response that closes the connection.
    static func response(
        status: Int, contentType: String = "text/plain; charset=utf-8", body: String, headOnly: Bool
    ) -> [UInt8] {
        let bodyBytes = Array(body.utf8)
        var head = "HTTP/1.1 \(status) \(reason(status))\r\n"
        head += "Content-Type: \(contentType)\r\nContent-Length: \(bodyBytes.count)\r\n"
        if status == 405 { head += "Allow: GET, HEAD\r\n" }
        head += "Connection: close\r\n\r\n"
        return Array(head.utf8) + (headOnly ? [] : bodyBytes)
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 400: return "Bad Request"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 431: return "Request Header Fields Too Large"
        case 503: return "Service Unavailable"
        case 505: return "HTTP Version Not Supported"
        default: return "Error"
        }
    }

    /// The offset just past the empty line that ends the headers (CRLFCRLF or LFLF), or nil.
    static func headerEnd(_ bytes: [UInt8]) -> Int? {
        var i = 0
        while i < bytes.count {
            if bytes[i] == 0x0A {
                if i + 1 < bytes.count && bytes[i + 1] == 0x0A { return i + 2 }
                if i + 2 < bytes.count && bytes[i + 1] == 0x0D && bytes[i + 2] == 0x0A { return i + 3 }
            }
            i += 1
        }
        return nil
    }

    /// RFC 9110's `tchar`: what a method or a header name is made of.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    /// Binds `endpoint` for the metrics (before any privilege drop).
    ///
    /// - Throws: ``StartupError``, one line naming `MetricsListen` and the fix: the port in use,
    ///   an address that is not this host's, a privileged port.
    static func listen(on endpoint: Endpoint) throws -> TCPRequestServer {
        do throws(IOError) {
            return try TCPRequestServer(
                bindingTo: endpoint,
                inUseHint: "another process uses this port: pick another port for MetricsListen or stop that process")
        } catch {
            let key = "MetricsListen = \(endpoint)"
            switch error.errno {
            case 98:  // EADDRINUSE
                throw StartupError(
                    "\(key): port \(endpoint.port) is in use on that address; pick another port for MetricsListen or stop the process that has it")
            case 99:  // EADDRNOTAVAIL
                throw StartupError(
                    "\(key): \(endpoint.ipAddress) is not an address of this host (in this network namespace); use 127.0.0.1:9586, [::1]:9586 or one of its own addresses")
            case 13:  // EACCES
                throw StartupError(
                    "\(key): port \(endpoint.port) needs root (below 1024); use a port above 1023 such as 9586")
            default:
                throw StartupError("\(key): \(error)")
            }
        }
    }

    /// True for 127.0.0.0/8 and ::1 (what only this host reaches).
    static func isLoopback(_ endpoint: Endpoint) -> Bool {
        let bytes = endpoint.addressBytes
        if endpoint.isIPv4 { return bytes[12] == 127 }
        return bytes[0..<15].allSatisfy { $0 == 0 } && bytes[15] == 1
    }

    /// The handler for ``TCPRequestServer``: decides on the bytes so far, renders with `metrics`.
    static func handler(metrics: @escaping @Sendable () -> String?) -> TCPRequestServer.Handler {
        { bytes, ended in response(decide(bytes, ended: ended), metrics: metrics) }
    }
}
