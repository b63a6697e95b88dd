#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Raw Ethernet frames over AF_PACKET for the integration harness (tap scenarios).

send: send --count frames with --ethertype and --payload from --ifname to --dst (a MAC address).
recv: wait for one frame with --ethertype on --ifname carrying --payload; print
      "received ethertype 0x.... from MAC: PAYLOAD". Exits 1 after --timeout seconds without one.
"""
import argparse
import socket
import sys
import time


def mac_bytes(text):
    return bytes(int(part, 16) for part in text.split(":"))


def mac_text(raw):
    return ":".join(f"{b:02x}" for b in raw)


def send(args):
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((args.ifname, 0))
    source = sock.getsockname()[4][:6]
    frame = mac_bytes(args.dst) + source + args.ethertype.to_bytes(2, "big") + args.payload.encode()
    frame += bytes(max(0, 60 - len(frame)))  # minimum Ethernet frame (without FCS)
    for _ in range(args.count):
        sock.send(frame)
        time.sleep(args.interval)
    print(f"sent {args.count} frames with ethertype 0x{args.ethertype:04x} from {mac_text(source)}")


def recv(args):
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(args.ethertype))
    sock.bind((args.ifname, args.ethertype))
    if args.ready_file:
        open(args.ready_file, "w").close()
    deadline = time.monotonic() + args.timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            sys.exit(f"ethframe recv: no frame with ethertype 0x{args.ethertype:04x} on {args.ifname} "
                     f"within {args.timeout}s")
        sock.settimeout(left)
        try:
            frame = sock.recv(65535)
        except socket.timeout:
            continue
        if int.from_bytes(frame[12:14], "big") != args.ethertype:
            continue
        payload = frame[14:14 + len(args.payload)].decode(errors="replace")
        if payload == args.payload:
            print(f"received ethertype 0x{args.ethertype:04x} from {mac_text(frame[6:12])}: {payload}")
            return


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("send", "recv"):
        p = sub.add_parser(name)
        p.add_argument("--ifname", required=True)
        p.add_argument("--ethertype", type=lambda t: int(t, 0), default=0x88B5)
        p.add_argument("--payload", required=True)
        if name == "send":
            p.add_argument("--dst", default="ff:ff:ff:ff:ff:ff")
            p.add_argument("--count", type=int, default=3)
            p.add_argument("--interval", type=float, default=0.2)
        else:
            p.add_argument("--timeout", type=float, default=10)
            p.add_argument("--ready-file")
    args = parser.parse_args()
    send(args) if args.command == "send" else recv(args)


if __name__ == "__main__":
    main()
