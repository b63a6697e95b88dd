#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Turns a QR code drawn for a terminal (`vpnd peer add --qr`, `qrencode -t ansiutf8`: two rows
of modules per line with half blocks, light modules in the foreground) into a PNG that zbarimg
reads: qr_png.py IN.txt OUT.png. Only the standard library: PNG is zlib-compressed rows."""
import re
import struct
import sys
import zlib

SCALE = 6

def modules(text):
    rows = []
    for line in text.splitlines():
        line = re.sub(r"\x1b\[[0-9;]*m", "", line)
        if not line:
            continue
        top, bottom = [], []
        for ch in line:
            light = {"\u2588": (True, True), "\u2580": (True, False), "\u2584": (False, True), " ": (False, False)}.get(ch)
            if light is None:
                sys.exit(f"qr_png.py: unexpected character {ch!r} in the QR drawing")
            top.append(light[0])
            bottom.append(light[1])
        rows += [top, bottom]
    return rows

def png(rows, path):
    width = len(rows[0]) * SCALE
    raw = bytearray()
    for row in rows:
        line = bytearray([0])  # filter: none
        for light in row:
            line += bytes([255 if light else 0]) * SCALE
        raw += bytes(line) * SCALE
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, len(rows) * SCALE, 8, 0, 0, 0, 0)  # 8-bit greyscale
    with open(path, "wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(raw))) + chunk(b"IEND", b""))

if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        png(modules(f.read()), sys.argv[2])
