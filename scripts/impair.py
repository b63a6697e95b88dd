#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""vpnd's UDP impairment relay (this kernel has no netem).

Listens on --listen, forwards every datagram to --target from a socket of its own, and returns the
target's replies to the client that sent last. Each datagram, in each direction, is independently
lost (--loss), duplicated (--duplicate), delayed (--delay with uniform --jitter) and, with
probability --reorder, held back an extra --reorder-delay so that later datagrams overtake it.
Probabilities are fractions (0.1) or percentages (10%). Seeded (--seed), so a run is repeatable for
the same arrival order. Stops by itself after --duration seconds, or on SIGTERM/SIGINT, and prints
its counters.

Example (in a hub namespace, a client at 198.18.1.1 talking to a server at 198.18.2.1:51820):
  impair.py --listen 198.18.1.254:40000 --target 198.18.2.1:51820 --loss 10% --reorder 5% \
            --duplicate 1% --delay 20 --jitter 2 --seed 1 --duration 120
"""
import argparse
import heapq
import random
import select
import signal
import socket
import sys
import time


def probability(text):
    text = text.strip()
    value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"probability {text} is not within 0..1 (or 0%..100%)")
    return value


def host_port(text):
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text} is not HOST:PORT ([v6]:PORT for IPv6)")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return family, (host, int(port))


class Direction:
    """Counters of one direction of the relay."""

    def __init__(self, name):
        self.name = name
        self.received = self.sent = self.lost = self.duplicated = self.reordered = 0

    def summary(self):
        return (f"{self.name}: received {self.received} sent {self.sent} lost {self.lost} "
                f"duplicated {self.duplicated} reordered {self.reordered}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", type=host_port, required=True, help="HOST:PORT clients send to")
    parser.add_argument("--target", type=host_port, required=True, help="HOST:PORT datagrams are relayed to")
    parser.add_argument("--source", default=None, help="local address of the socket towards the target")
    parser.add_argument("--loss", type=probability, default=0.0)
    parser.add_argument("--reorder", type=probability, default=0.0)
    parser.add_argument("--reorder-delay", type=float, default=None,
                        help="extra ms a reordered datagram is held (default: max(5, delay))")
    parser.add_argument("--duplicate", type=probability, default=0.0)
    parser.add_argument("--delay", type=float, default=0.0, help="ms added to every datagram")
    parser.add_argument("--jitter", type=float, default=0.0, help="ms, uniform +-jitter around --delay")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--duration", type=float, default=300, help="seconds until the relay stops itself")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    reorder_delay = args.reorder_delay if args.reorder_delay is not None else max(5.0, args.delay)
    listen_family, listen_addr = args.listen
    target_family, target_addr = args.target

    front = socket.socket(listen_family, socket.SOCK_DGRAM)
    front.bind(listen_addr)
    back = socket.socket(target_family, socket.SOCK_DGRAM)
    back.bind((args.source or ("::" if target_family == socket.AF_INET6 else "0.0.0.0"), 0))
    for sock in (front, back):
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)

    forward = Direction("to-target")
    backward = Direction("to-client")
    client = None
    queue = []  # (due, sequence, socket, datagram, address, direction)
    sequence = 0
    stop = False

    def request_stop(_signum, _frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    def schedule(now, sock, data, addr, direction):
        nonlocal sequence
        direction.received += 1
        if rng.random() < args.loss:
            direction.lost += 1
            return
        copies = 1
        if rng.random() < args.duplicate:
            copies = 2
            direction.duplicated += 1
        for _ in range(copies):
            delay = args.delay + (rng.uniform(-args.jitter, args.jitter) if args.jitter else 0.0)
            if rng.random() < args.reorder:
                delay += reorder_delay
                direction.reordered += 1
            due = now + max(0.0, delay) / 1000
            heapq.heappush(queue, (due, sequence, sock, data, addr, direction))
            sequence += 1

    print(f"impair: listening on {listen_addr[0]}:{listen_addr[1]} -> {target_addr[0]}:{target_addr[1]} "
          f"loss {args.loss} reorder {args.reorder} duplicate {args.duplicate} delay {args.delay}ms "
          f"jitter {args.jitter}ms seed {args.seed} duration {args.duration}s", flush=True)
    end = time.monotonic() + args.duration
    while not stop:
        now = time.monotonic()
        if now >= end:
            break
        while queue and queue[0][0] <= now:
            _, _, sock, data, addr, direction = heapq.heappop(queue)
            try:
                sock.sendto(data, addr)
                direction.sent += 1
            except OSError as err:
                print(f"impair: send to {addr} failed: {err}", file=sys.stderr, flush=True)
        wait = min(0.25, end - now)  # bounded, so a signal is seen soon (select restarts after one)
        if queue:
            wait = min(wait, max(0.0, queue[0][0] - now))
        try:
            readable, _, _ = select.select([front, back], [], [], wait)
        except InterruptedError:
            continue
        now = time.monotonic()
        for sock in readable:
            for _ in range(64):
                try:
                    data, addr = sock.recvfrom(65535)
                except BlockingIOError:
                    break
                except OSError as err:
                    print(f"impair: receive failed: {err}", file=sys.stderr, flush=True)
                    break
                if sock is front:
                    client = addr
                    schedule(now, back, data, target_addr, forward)
                elif client is not None:
                    schedule(now, front, data, client, backward)
    print(f"impair: {forward.summary()}", flush=True)
    print(f"impair: {backward.summary()}", flush=True)


if __name__ == "__main__":
    main()
