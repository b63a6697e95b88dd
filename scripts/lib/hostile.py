#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Hostile and auxiliary traffic for vpnd's fault scenarios (scripts/itest/*.sh). Every mode is
bounded: it stops after --seconds and after --count datagrams, whichever comes first, and prints one
summary line ("<mode>: key value ...") on stdout.

  garbage       UDP datagrams that are not valid vpnd messages, to HOST:PORT: random bytes (up to
                64 KiB), truncated and oversized messages of each type, messages of each type 1-4
                with random bodies (initiations with a random mac1), bad types and reserved bytes.
                Counts any datagram that comes back (there should be none).
  initiations   handshake initiations with a VALID mac1 for --server-pub (random everything else,
                mac2 zero), to HOST:PORT at --rate per second; counts the cookie replies (type 3,
                64 bytes, naming one of our sender indexes) that come back. With --no-mac1, random
                bytes where the MACs go: the junk anyone can send without knowing a key.
  replay        on --iface (AF_PACKET), captures outgoing transport-data frames (type 4, longer than
                a keepalive) to UDP port --port and injects each again, byte for byte (the UDP
                checksum, which the capture may show unfinished, is recomputed), --repeat times at
                once and --repeat times --later seconds later.
  seq-send      UDP datagrams carrying sequence numbers 0..count-1 to HOST:PORT at --rate per second.
  seq-recv      receives those on HOST:PORT for --seconds; prints received/unique/duplicates.
  tcp-garbage   hostile frames to vpnd's TCP transport at HOST:PORT, one connection each, and how the
                server answers: a zero length, an oversized length, a frame that is not a message and
                random bytes must get the connection closed; a well-formed data message with a random
                body must not (it is only dropped).
  tcp-churn     opens connections to vpnd's TCP transport at HOST:PORT as fast as it can, from the
                --from source addresses in turn, and holds up to --hold of them (the oldest is closed
                for a new one); of each connection, a third stay silent, a third send junk (the server
                must close those) and a third send well-formed frames that authenticate nothing (an
                initiation with a random mac1, a data message with a random body). Bounded by
                --seconds and --count (connections); counts how the server answered.
"""
import argparse
import collections
import hashlib
import os
import random
import select
import socket
import struct
import sys
import time

INITIATION_SIZE = 148
RESPONSE_SIZE = 92
COOKIE_REPLY_SIZE = 64
DATA_HEADER_SIZE = 16
TAG_SIZE = 16


def host_port(text):
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text} is not HOST:PORT")
    host = host.strip("[]")
    return (socket.AF_INET6 if ":" in host else socket.AF_INET), (host, int(port))


def header(kind):
    return bytes([kind, 0, 0, 0])


def garbage_datagram(rng):
    """One hostile datagram: (kind, bytes)."""
    choice = rng.randrange(12)
    if choice == 0:
        kind, size = "random", rng.choice([1, 2, 3, 7, 31, 100, 500, 1400, rng.randrange(1, 1473)])
        data = rng.randbytes(size)
    elif choice == 1:
        kind = "random-large"
        data = rng.randbytes(rng.choice([2000, 9000, 30000, 65000]))
    elif choice == 2:
        kind = "truncated"
        t = rng.randrange(1, 5)
        full = {1: INITIATION_SIZE, 2: RESPONSE_SIZE, 3: COOKIE_REPLY_SIZE, 4: DATA_HEADER_SIZE + TAG_SIZE}[t]
        data = header(t) + rng.randbytes(rng.randrange(0, full - 4))
    elif choice == 3:
        kind = "oversized"
        t = rng.randrange(1, 4)
        full = {1: INITIATION_SIZE, 2: RESPONSE_SIZE, 3: COOKIE_REPLY_SIZE}[t]
        data = header(t) + rng.randbytes(full - 4 + rng.choice([1, 16, 500, 3000]))
    elif choice in (4, 5):
        kind = "initiation-random-mac1"
        data = header(1) + rng.randbytes(INITIATION_SIZE - 4)
    elif choice == 6:
        kind = "response-random"
        data = header(2) + rng.randbytes(RESPONSE_SIZE - 4)
    elif choice == 7:
        kind = "cookie-reply-random"
        data = header(3) + rng.randbytes(COOKIE_REPLY_SIZE - 4)
    elif choice in (8, 9):
        kind = "data-random"
        data = header(4) + rng.randbytes(DATA_HEADER_SIZE + TAG_SIZE - 4 + rng.randrange(0, 1400))
    elif choice == 10:
        kind = "bad-type"
        data = bytes([rng.choice([0, 5, 6, 0x7F, 0xFF]), 0, 0, 0]) + rng.randbytes(INITIATION_SIZE - 4)
    else:
        kind = "bad-reserved"
        data = bytes([rng.randrange(1, 5), 0, rng.randrange(1, 256), 0]) + rng.randbytes(INITIATION_SIZE - 4)
    return kind, data


def paced(args, make, on_reply=None):
    """Sends make(n) (n = 0, 1, ...) at args.rate per second until args.seconds or args.count, in small bursts every
    5 ms (cheap for the sender, the same rate); drains replies in between."""
    family, addr = args.to
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sent = errors = 0
    start = time.monotonic()
    end = start + args.seconds

    def drain():
        for _ in range(1024):
            try:
                reply = sock.recv(65535)
            except (BlockingIOError, ConnectionRefusedError):
                return
            if on_reply:
                on_reply(reply)

    while sent < args.count:
        now = time.monotonic()
        if now >= end:
            break
        due = min(args.count, int((now - start) * args.rate) + 1)
        while sent < due:
            try:
                sock.sendto(make(sent), addr)
            except BlockingIOError:
                break  # a full socket buffer: try again in the next burst
            except OSError:
                errors += 1
            sent += 1
        readable, _, _ = select.select([sock], [], [], 0.005)
        if readable:
            drain()
    # Replies still on their way.
    drain_end = time.monotonic() + 0.5
    while time.monotonic() < drain_end:
        readable, _, _ = select.select([sock], [], [], 0.05)
        if readable:
            drain()
    return sent, errors, time.monotonic() - start


def cmd_garbage(args):
    rng = random.Random(args.seed)
    # A pool made in advance and sent round robin, so the sender spends its CPU on sending.
    pool = [garbage_datagram(rng) for _ in range(min(args.count, 4096))]
    counts = {}
    replies = [0]

    def make(n):
        return pool[n % len(pool)][1]

    def on_reply(_reply):
        replies[0] += 1

    sent, errors, took = paced(args, make, on_reply)
    for i in range(sent):
        kind, _ = pool[i % len(pool)]
        counts[kind] = counts.get(kind, 0) + 1
    kinds = " ".join(f"{k}={v}" for k, v in sorted(counts.items()))
    print(f"garbage: sent {sent} errors {errors} replies {replies[0]} seconds {took:.1f} rate {sent / took:.0f}/s "
          f"cpu {time.process_time():.1f}s {kinds}", flush=True)


def mac1_key(server_pub):
    return hashlib.blake2s(b"mac1----" + server_pub).digest()


def cmd_initiations(args):
    import base64
    server_pub = base64.b64decode(args.server_pub) if args.server_pub else b""
    if not args.no_mac1 and len(server_pub) != 32:
        sys.exit("initiations: --server-pub is not a base64 32-byte public key")
    key = mac1_key(server_pub)
    rng = random.Random(args.seed)
    ours = set()
    stats = {"cookie": 0, "cookie-foreign": 0, "other": 0}

    def make(_n):
        index = rng.getrandbits(32)
        ours.add(index)
        body = header(1) + struct.pack("<I", index) + rng.randbytes(116 - 8)
        if args.no_mac1:
            return body + rng.randbytes(32)  # what anyone can send: no key knowledge at all
        mac1 = hashlib.blake2s(body, key=key, digest_size=16).digest()
        return body + mac1 + bytes(16)

    def on_reply(reply):
        if len(reply) == COOKIE_REPLY_SIZE and reply[:4] == header(3):
            (index,) = struct.unpack_from("<I", reply, 4)
            stats["cookie" if index in ours else "cookie-foreign"] += 1
        else:
            stats["other"] += 1

    sent, errors, took = paced(args, make, on_reply)
    print(f"initiations: sent {sent} errors {errors} seconds {took:.1f} rate {sent / took:.0f}/s "
          f"cookie-replies {stats['cookie']} foreign-cookie-replies {stats['cookie-foreign']} other-replies {stats['other']}",
          flush=True)


def checksum16(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def fix_udp_checksum(frame):
    """Recomputes the UDP checksum of an Ethernet/IPv4/UDP frame (the capture of an outgoing frame
    can hold only the pseudo-header part when the checksum is offloaded)."""
    ihl = (frame[14] & 0x0F) * 4
    ip = frame[14:14 + ihl]
    udp = bytearray(frame[14 + ihl:])
    udp[6:8] = b"\0\0"
    pseudo = ip[12:20] + struct.pack("!BBH", 0, 17, len(udp))
    value = 0xFFFF - checksum16(pseudo + bytes(udp))
    udp[6:8] = struct.pack("!H", value or 0xFFFF)
    return frame[:14 + ihl] + bytes(udp)


def cmd_replay(args):
    ETH_P_ALL = 0x0003  # outgoing frames reach only ETH_P_ALL taps
    PACKET_OUTGOING = 4
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((args.iface, ETH_P_ALL))
    sock.setblocking(False)
    print(f"replay: listening on {args.iface}", flush=True)
    start = time.monotonic()
    end = start + args.seconds
    captured = []        # (frame, due time of the later replay)
    seen = set()         # (receiver index, counter) of captured messages
    injected = later_injected = frames_seen = 0
    next_capture = start + args.first_after
    while time.monotonic() < end:
        now = time.monotonic()
        for item in list(captured):
            frame, due = item
            if due is not None and now >= due:
                for _ in range(args.repeat):
                    sock.send(frame)
                    later_injected += 1
                captured[captured.index(item)] = (frame, None)
        if len(captured) >= args.captures and all(due is None for _, due in captured):
            break
        readable, _, _ = select.select([sock], [], [], 0.05)
        if not readable:
            continue
        for _ in range(256):
            try:
                frame, address = sock.recvfrom(65535)
            except BlockingIOError:
                break
            frames_seen += 1
            if address[2] != PACKET_OUTGOING or len(captured) >= args.captures or now < next_capture:
                continue
            if len(frame) < 14 + 20 + 8 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
                continue
            ihl = (frame[14] & 0x0F) * 4
            (total,) = struct.unpack_from("!H", frame, 16)
            udp = frame[14 + ihl:]
            (dport, ulen) = struct.unpack_from("!HH", udp, 2)
            payload = udp[8:]
            # One real datagram (not a GSO super-frame) of transport data longer than a keepalive.
            if total != len(frame) - 14 or ulen != len(udp) or dport != args.port:
                continue
            if len(payload) < 48 or len(payload) > args.max_size or payload[:4] != header(4):
                continue
            key = payload[4:16]
            if key in seen:
                continue
            seen.add(key)
            frame = fix_udp_checksum(frame)
            for _ in range(args.repeat):
                sock.send(frame)
                injected += 1
            captured.append((frame, time.monotonic() + args.later))
            next_capture = time.monotonic() + args.spacing
    print(f"replay: captured {len(captured)} injected {injected} later-injected {later_injected} "
          f"frames-seen {frames_seen} seconds {time.monotonic() - start:.1f}", flush=True)
    if len(captured) < args.captures:
        sys.exit(f"replay: captured only {len(captured)} of {args.captures} data frames")


def cmd_seq_send(args):
    family, addr = args.to
    sock = socket.socket(family, socket.SOCK_DGRAM)
    start = time.monotonic()
    errors = 0
    n = 0
    for n in range(args.count):
        due = start + n / args.rate
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        if time.monotonic() - start > args.seconds:
            break
        try:
            sock.sendto(struct.pack("!Q", n) + bytes(args.size - 8), addr)
        except OSError:
            errors += 1
    print(f"seq-send: sent {n + 1} errors {errors}", flush=True)


def cmd_seq_recv(args):
    family, addr = args.bind
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind(addr)
    if args.ready_file:
        open(args.ready_file, "w").close()
    counts = {}
    received = 0
    end = time.monotonic() + args.seconds
    idle_end = None
    while True:
        now = time.monotonic()
        limit = end if idle_end is None else min(end, idle_end)
        if now >= limit:
            break
        readable, _, _ = select.select([sock], [], [], limit - now)
        if not readable:
            continue
        data = sock.recv(65535)
        received += 1
        (n,) = struct.unpack_from("!Q", data)
        counts[n] = counts.get(n, 0) + 1
        if args.expect and len(counts) >= args.expect:
            idle_end = time.monotonic() + args.linger
    duplicates = sum(c - 1 for c in counts.values())
    print(f"seq-recv: received {received} unique {len(counts)} duplicates {duplicates}", flush=True)


def cmd_tcp_garbage(args):
    family, addr = args.to
    rng = random.Random(args.seed)
    cases = [
        ("zero-length", b"\x00\x00" + rng.randbytes(200), True),
        ("oversized-length", b"\xff\xff" + rng.randbytes(2000), True),
        ("not-a-message", struct.pack("!H", 148) + bytes([0xEE, 0, 0, 0]) + rng.randbytes(144), True),
        ("bad-reserved", struct.pack("!H", 148) + bytes([1, 0, 7, 0]) + rng.randbytes(144), True),
        ("wrong-size-initiation", struct.pack("!H", 100) + header(1) + rng.randbytes(96), True),
        ("random-bytes", None, True),
        ("data-random-body", struct.pack("!H", 100) + header(4) + rng.randbytes(96), False),
    ]
    failures = []
    results = []
    for name, payload, must_close in cases:
        if payload is None:
            # Random bytes whose first length is a plausible size, so the frame is complete.
            length = rng.randrange(32, 600)
            payload = struct.pack("!H", length) + bytes([rng.randrange(5, 256), 9, 9, 9]) + rng.randbytes(length - 4 + 3000)
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(5)
        try:
            sock.connect(addr)
            sock.sendall(payload)
        except OSError as err:
            failures.append(f"{name}: connect/send failed: {err}")
            sock.close()
            continue
        start = time.monotonic()
        closed = None
        sock.settimeout(0.1)
        while time.monotonic() - start < args.wait:
            try:
                data = sock.recv(4096)
                if not data:
                    closed = "closed"
                    break
            except socket.timeout:
                continue
            except ConnectionResetError:
                closed = "reset"
                break
        took = time.monotonic() - start
        sock.close()
        state = f"{closed} after {took * 1000:.0f} ms" if closed else f"open after {args.wait:.0f} s"
        results.append(f"{name}={state.replace(' ', '_')}")
        if must_close and not closed:
            failures.append(f"{name}: the server kept the connection open for {args.wait} s")
        if not must_close and closed:
            failures.append(f"{name}: the server closed the connection ({closed}) for a well-formed frame")
    print("tcp-garbage: " + " ".join(results), flush=True)
    if failures:
        sys.exit("tcp-garbage: " + "; ".join(failures))


def cmd_tcp_churn(args):
    import errno
    import resource
    family, addr = args.to
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.hold + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    sources = args.sources or [None]
    rng = random.Random(args.seed)
    # Payloads made in advance, so the loop spends its time on connections.
    junk = [struct.pack("!H", rng.choice([0, 65535])) + rng.randbytes(60) for _ in range(16)]
    junk += [struct.pack("!H", 148) + bytes([0xEE, 0, 0, 0]) + rng.randbytes(144) for _ in range(16)]
    wellformed = [struct.pack("!H", INITIATION_SIZE) + header(1) + rng.randbytes(INITIATION_SIZE - 4) for _ in range(16)]
    wellformed += [struct.pack("!H", 64) + header(4) + rng.randbytes(60) for _ in range(16)]
    ep = select.epoll()
    socks = {}                   # fd -> [socket, connected, kind, serial]
    order = collections.deque()  # (fd, serial), oldest first (closed ones are skipped lazily)
    stats = collections.Counter()
    start = time.monotonic()
    end = start + args.seconds

    def close(fd, why):
        entry = socks.pop(fd, None)
        if entry is None:
            return
        stats[why] += 1
        try:
            ep.unregister(fd)
        except OSError:
            pass
        entry[0].close()

    n = 0
    while stats["opened"] < args.count:
        now = time.monotonic()
        if now >= end:
            break
        for _ in range(32):
            if stats["opened"] >= args.count:
                break
            while len(socks) >= args.hold and order:
                fd, serial = order.popleft()
                if fd in socks and socks[fd][3] == serial:
                    close(fd, "closed-by-us")
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            source = sources[n % len(sources)]
            n += 1
            try:
                if source is not None:
                    sock.bind((source, 0))
                sock.connect(addr)
            except BlockingIOError:
                pass
            except OSError as err:
                stats["connect-error-" + (errno.errorcode.get(err.errno, str(err.errno)))] += 1
                sock.close()
                continue
            stats["opened"] += 1
            socks[sock.fileno()] = [sock, False, n % 3, n]
            order.append((sock.fileno(), n))
            ep.register(sock.fileno(), select.EPOLLOUT | select.EPOLLIN | select.EPOLLRDHUP)
        for fd, events in ep.poll(0.001, 256):
            entry = socks.get(fd)
            if entry is None:
                continue
            sock = entry[0]
            if not entry[1]:
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    close(fd, "refused-" + errno.errorcode.get(err, str(err)))
                    continue
                if events & select.EPOLLOUT:
                    entry[1] = True
                    stats["connected"] += 1
                    kind = entry[2]
                    try:
                        if kind == 1:
                            sock.send(rng.choice(junk))
                            stats["sent-junk"] += 1
                        elif kind == 2:
                            sock.send(rng.choice(wellformed))
                            stats["sent-wellformed"] += 1
                        else:
                            stats["silent"] += 1
                    except OSError:
                        close(fd, "reset-by-server")
                        continue
                    ep.modify(fd, select.EPOLLIN | select.EPOLLRDHUP)
                    continue
            if events & (select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR):
                try:
                    data = sock.recv(4096)
                    if data:
                        stats["bytes-from-server"] += len(data)
                        continue
                    close(fd, "closed-by-server")
                except BlockingIOError:
                    continue
                except OSError:
                    close(fd, "reset-by-server")
    took = time.monotonic() - start
    held = len(socks)
    for fd in list(socks):
        close(fd, "closed-at-end")
    summary = " ".join(f"{k}={v}" for k, v in sorted(stats.items()))
    print(f"tcp-churn: seconds {took:.1f} rate {stats['opened'] / took:.0f}/s held-at-end {held} {summary}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)

    def bounded(p, rate, count, seconds):
        p.add_argument("--rate", type=float, default=rate, help="datagrams per second")
        p.add_argument("--count", type=int, default=count, help="at most this many datagrams")
        p.add_argument("--seconds", type=float, default=seconds, help="at most this long")
        p.add_argument("--seed", type=int, default=1)

    p = sub.add_parser("garbage")
    p.add_argument("--to", type=host_port, required=True)
    bounded(p, 1000, 50000, 20)
    p = sub.add_parser("initiations")
    p.add_argument("--to", type=host_port, required=True)
    p.add_argument("--server-pub", help="the server's public key, base64 (needed unless --no-mac1)")
    p.add_argument("--no-mac1", action="store_true", help="random bytes where mac1 and mac2 go: junk anyone can send")
    bounded(p, 300, 20000, 20)
    p = sub.add_parser("replay")
    p.add_argument("--iface", required=True)
    p.add_argument("--port", type=int, required=True, help="UDP destination port of the data frames")
    p.add_argument("--captures", type=int, default=5)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--later", type=float, default=2.0, help="seconds until each frame is injected again")
    p.add_argument("--spacing", type=float, default=0.5, help="seconds between captures")
    p.add_argument("--first-after", type=float, default=0.5, help="seconds before the first capture")
    p.add_argument("--max-size", type=int, default=600, help="largest UDP payload to capture")
    p.add_argument("--seconds", type=float, default=20)
    p = sub.add_parser("seq-send")
    p.add_argument("--to", type=host_port, required=True)
    p.add_argument("--size", type=int, default=100)
    bounded(p, 50, 500, 30)
    p = sub.add_parser("seq-recv")
    p.add_argument("--bind", type=host_port, required=True)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--expect", type=int, default=0, help="stop --linger seconds after this many distinct")
    p.add_argument("--linger", type=float, default=2.0)
    p.add_argument("--ready-file")
    p = sub.add_parser("tcp-garbage")
    p.add_argument("--to", type=host_port, required=True)
    p.add_argument("--wait", type=float, default=3.0, help="seconds to wait for the server to close")
    p.add_argument("--seed", type=int, default=1)
    p = sub.add_parser("tcp-churn")
    p.add_argument("--to", type=host_port, required=True)
    p.add_argument("--from", dest="sources", action="append", default=[], help="a source address (repeat)")
    p.add_argument("--hold", type=int, default=300, help="connections held open at once, at most")
    p.add_argument("--count", type=int, default=200000, help="at most this many connections")
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    {"garbage": cmd_garbage, "initiations": cmd_initiations, "replay": cmd_replay, "seq-send": cmd_seq_send,
     "seq-recv": cmd_seq_recv, "tcp-garbage": cmd_tcp_garbage,
     "tcp-churn": cmd_tcp_churn}[args.mode](args)


if __name__ == "__main__":
    main()
