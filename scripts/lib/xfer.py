#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checksummed TCP transfer for the integration harness (used by transfer_check in netns.sh).

recv: accept one connection, read to EOF, print "received <bytes> <sha256>", then
      "longest-gap-ms <n>": the longest wait between two reads that returned data (a stall).
send: connect (retrying until --timeout), stream --bytes of seeded pseudo-random data, print
      "<bytes> <sha256>" of what was sent.
Both stop with an error after --timeout seconds.
"""
import argparse
import hashlib
import random
import socket
import sys
import time

CHUNK = 64 * 1024


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper()
    if text and text[-1] in units:
        return int(text[:-1]) * units[text[-1]]
    return int(text)


def family_of(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def recv(args):
    deadline = time.monotonic() + args.timeout
    srv = socket.socket(family_of(args.bind), socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((args.bind, args.port))
    srv.listen(1)
    srv.settimeout(args.timeout)
    if args.ready_file:
        open(args.ready_file, "w").close()
    conn, peer = srv.accept()
    digest = hashlib.sha256()
    total = 0
    last = None
    longest_gap = 0.0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            sys.exit(f"xfer recv: timed out after {args.timeout}s with {total} bytes from {peer[0]}")
        conn.settimeout(left)
        data = conn.recv(CHUNK)
        if not data:
            break
        now = time.monotonic()
        if last is not None:
            longest_gap = max(longest_gap, now - last)
        last = now
        digest.update(data)
        total += len(data)
    conn.close()
    print(f"received {total} {digest.hexdigest()}", flush=True)
    print(f"longest-gap-ms {int(longest_gap * 1000)}", flush=True)


def send(args):
    deadline = time.monotonic() + args.timeout
    total = parse_size(args.bytes)
    while True:
        sock = socket.socket(family_of(args.to), socket.SOCK_STREAM)
        sock.settimeout(max(0.5, min(5.0, deadline - time.monotonic())))
        try:
            sock.connect((args.to, args.port))
            break
        except OSError as err:
            sock.close()
            if time.monotonic() >= deadline:
                sys.exit(f"xfer send: cannot connect to {args.to}:{args.port}: {err}")
            time.sleep(0.2)
    rng = random.Random(args.seed)
    digest = hashlib.sha256()
    sent = 0
    while sent < total:
        left = deadline - time.monotonic()
        if left <= 0:
            sys.exit(f"xfer send: timed out after {args.timeout}s with {sent} of {total} bytes sent")
        sock.settimeout(left)
        block = rng.randbytes(min(CHUNK, total - sent))
        sock.sendall(block)
        digest.update(block)
        sent += len(block)
    sock.shutdown(socket.SHUT_WR)
    # Wait for the receiver to close: it has read everything by then.
    sock.settimeout(max(0.5, deadline - time.monotonic()))
    while sock.recv(CHUNK):
        pass
    sock.close()
    print(f"{sent} {digest.hexdigest()}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    r = sub.add_parser("recv")
    r.add_argument("--bind", required=True)
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--ready-file")
    r.add_argument("--timeout", type=float, default=120)
    s = sub.add_parser("send")
    s.add_argument("--to", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--bytes", required=True)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    try:
        recv(args) if args.mode == "recv" else send(args)
    except (OSError, socket.timeout) as err:
        sys.exit(f"xfer {args.mode}: {err}")


if __name__ == "__main__":
    main()
