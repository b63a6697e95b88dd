// SPDX-License-Identifier: MIT
import CQREncode

/// A QR code (libqrencode makes it) and its rendering for a terminal, as `qrencode -t ansiutf8`
/// draws one: two rows of modules per line with the half-block characters, light modules in the
/// foreground colour of a forced white-on-black, so it scans on light and dark terminals alike.
struct QRCode {
    /// Row-major, `width * width`, true for a dark module.
    let modules: [Bool]
    let width: Int

    /// Encodes `text` as bytes with error correction level L (WireGuard's apps read a config of
    /// a few hundred bytes at version 10 or so); nil when the text is too long for any version.
    init?(_ text: String) {
        guard let code = QRcode_encodeString8bit(text, 0, QR_ECLEVEL_L) else { return nil }
        defer { QRcode_free(code) }
        width = Int(code.pointee.width)
        modules = (0..<(width * width)).map { code.pointee.data[$0] & 1 == 1 }
    }

    /// Whether the module at (`row`, `column`) is dark; outside the symbol (the quiet zone) it is light.
    func isDark(_ row: Int, _ column: Int) -> Bool {
        row >= 0 && row < width && column >= 0 && column < width && modules[row * width + column]
    }

    /// The terminal rendering with a quiet zone of `margin` modules, ending in a newline.
    func terminalText(margin: Int = 4) -> String {
        var out = ""
        var row = -margin
        while row < width + margin {
            out += "\u{1B}[40;37;1m"
            for column in -margin..<(width + margin) {
                let top = !isDark(row, column), bottom = !isDark(row + 1, column) && row + 1 < width + margin
                switch (top, bottom) {
                case (true, true): out += "\u{2588}"
                case (true, false): out += "\u{2580}"
                case (false, true): out += "\u{2584}"
                case (false, false): out += " "
                }
            }
            out += "\u{1B}[0m\n"
            row += 2
        }
        return out
    }
}
