# SPDX-License-Identifier: MIT
"""Turns the raw measurements of scripts/bench into its Markdown table.

Input: a results directory with one sub-directory per configuration (in run order, listed in
DIR/order), each holding
  iperf-<P1|P4>-<fwd|rev>-<run>.json   iperf3 -J output of one throughput run
  ping-tunnel.txt, ping-veth.txt       ping -q output (50 echoes) through the tunnel / over the veth
  cpu                                  "before TICKS" and "after TICKS" lines (utime+stime, both ends)
  rss                                  one VmHWM value in KiB per VPN process
  steal                                "before STEAL TOTAL" and "after STEAL TOTAL" (/proc/stat, machine-wide)
  label                                (--wireguard-go rows only) the row's label
  status                               "ok" or "failed: reason"
and DIR/header (Markdown lines printed above the table). Output: the report on stdout.

Usage: python3 bench_table.py RESULTS_DIR CLK_TCK
"""

import json
import os
import re
import statistics
import sys

LABELS = {
    "veth": "raw veth (no VPN)",
    "relay": "C relay, no crypto (floor; not a VPN)",
    "vpnd-udp": "vpnd tun/UDP",
    "vpnd-aes": "vpnd tun/UDP, AES-256-GCM",
    "vpnd-auto": "vpnd tun/auto (on UDP)",
    "vpnd-tcp": "vpnd tun/TCP",
    "vpnd-tap": "vpnd tap/UDP",
    "wg": "wireguard-go (Debian)",
}
TESTS = [("P1", "fwd"), ("P1", "rev"), ("P4", "fwd"), ("P4", "rev")]


def read(path, default=None):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def iperf_runs(cdir, streams, direction):
    """(bits_per_second, bytes) of each completed run of one test, in run order."""
    runs = []
    names = sorted(n for n in os.listdir(cdir) if n.startswith(f"iperf-{streams}-{direction}-"))
    for name in names:
        try:
            data = json.loads(read(os.path.join(cdir, name), "") or "{}")
            received = data["end"]["sum_received"]
            runs.append((float(received["bits_per_second"]), int(received["bytes"])))
        except (ValueError, KeyError, TypeError):
            continue
    return runs


def ping_avg(path):
    """Average round-trip time in ms from ping's summary line, or None."""
    m = re.search(r"= [\d.]+/([\d.]+)/[\d.]+/[\d.]+ ms", read(path, "") or "")
    return float(m.group(1)) if m else None


def fmt(value, digits=2, suffix=""):
    return "–" if value is None else f"{value:.{digits}f}{suffix}"


def measure(cdir, tck):
    row = {"status": (read(os.path.join(cdir, "status"), "failed: no status") or "").strip()}
    # A --wireguard-go row names its binary's version (DIR/label); the others have fixed labels.
    name = os.path.basename(cdir)
    row["label"] = (read(os.path.join(cdir, "label"), "") or "").strip() or LABELS.get(name, name)
    total_bytes = 0
    for streams, direction in TESTS:
        runs = iperf_runs(cdir, streams, direction)
        row[(streams, direction)] = statistics.median(r[0] for r in runs) / 1e9 if runs else None
        row[(streams, direction, "runs")] = [r[0] / 1e9 for r in runs]
        total_bytes += sum(r[1] for r in runs)
    row["bytes"] = total_bytes
    row["ping"] = ping_avg(os.path.join(cdir, "ping-tunnel.txt"))
    row["ping_veth"] = ping_avg(os.path.join(cdir, "ping-veth.txt"))
    cpu = dict(line.split() for line in (read(os.path.join(cdir, "cpu"), "") or "").splitlines() if line.strip())
    row["cpu_s_per_gb"] = None
    if "before" in cpu and "after" in cpu and total_bytes > 0:
        row["cpu_s_per_gb"] = (int(cpu["after"]) - int(cpu["before"])) / tck / (total_bytes / 1e9)
    steal = {}
    for line in (read(os.path.join(cdir, "steal"), "") or "").splitlines():
        words = line.split()
        if len(words) == 3:
            steal[words[0]] = (int(words[1]), int(words[2]))
    row["steal_pct"] = None
    if "before" in steal and "after" in steal and steal["after"][1] > steal["before"][1]:
        row["steal_pct"] = 100 * (steal["after"][0] - steal["before"][0]) / (steal["after"][1] - steal["before"][1])
    rss = [int(x) for x in (read(os.path.join(cdir, "rss"), "") or "").split()]
    row["rss_mib"] = max(rss) / 1024 if rss else None
    return row


def main():
    results, tck = sys.argv[1], int(sys.argv[2])
    order = (read(os.path.join(results, "order"), "") or "").split()
    rows = {name: measure(os.path.join(results, name), tck) for name in order}
    wg = rows.get("wg", {}).get(("P1", "fwd"))

    out = [read(os.path.join(results, "header"), "").rstrip(), ""]
    out.append("| configuration | 1 stream → | 1 stream ← | 4 streams → | 4 streams ← | 1 stream → vs wg-go "
               "| ping avg (ms) | added latency (ms) | CPU-s/GB | peak RSS (MiB) | steal % |")
    out.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in order:
        r = rows[name]
        label = r["label"]
        if r["status"] != "ok":
            label += f" ({r['status']})"
        fwd = r[("P1", "fwd")]
        ratio = f"{fwd / wg:.2f}×" if fwd is not None and wg else "–"
        added = None
        if name != "veth" and r["ping"] is not None and r["ping_veth"] is not None:
            added = r["ping"] - r["ping_veth"]
        out.append("| " + " | ".join([
            label,
            *(fmt(r[t]) for t in TESTS),
            ratio,
            fmt(r["ping"], 3),
            "–" if name == "veth" else fmt(added, 3),
            "–" if name == "veth" else fmt(r["cpu_s_per_gb"], 2),
            "–" if name == "veth" else fmt(r["rss_mib"], 1),
            fmt(r["steal_pct"], 1),
        ]) + " |")
    out.append("")
    out.append("Throughput in Gbit/s (iperf3 TCP, median of the runs; → client to server, ← with `-R`). "
               "Added latency = tunnel ping avg − veth ping avg, both measured in the same namespaces. "
               "CPU-s/GB = user+system CPU seconds of both VPN processes during all throughput runs, "
               "per GB (10^9 bytes) received by iperf3. Peak RSS = max VmHWM of the two VPN processes. "
               "Steal % = the share of the machine's CPU time the hypervisor took during the row's throughput "
               "runs (/proc/stat); a row with steal is not comparable with the others: rerun it.")
    out.append("")
    out.append("<details><summary>Every run (Gbit/s)</summary>")
    out.append("")
    out.append("| configuration | 1 stream → | 1 stream ← | 4 streams → | 4 streams ← |")
    out.append("| --- | --- | --- | --- | --- |")
    for name in order:
        r = rows[name]
        out.append("| " + " | ".join([r["label"]] + [
            " ".join(f"{v:.2f}" for v in r[(*t, "runs")]) or "–" for t in TESTS]) + " |")
    out.append("")
    out.append("</details>")
    print("\n".join(out))


if __name__ == "__main__":
    main()
