#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A Python expression over `vpnd show IFNAME --json` of one daemon (scripts/lib/vpnd.sh wraps it:
vpnd_json, vpnd_json_ok, vpnd_json_watch).

  vpnd_json.py VPND RUN_DIR EXPR                  prints the value of EXPR
  vpnd_json.py --ok VPND RUN_DIR EXPR             the same, exit status 0 if the value is true, else 1
  vpnd_json.py --watch SECONDS VPND RUN_DIR EXPR  every SECONDS a line "EPOCH VALUE", until killed
                                                  (at most 10 minutes)

IFNAME is that of the only control socket (IFNAME.sock) in RUN_DIR. Names EXPR can use:
  doc             the whole object            peers   doc["peers"]     peer   the first peer (or None)
  tcp             doc["tcp"], {} without TCP  drops   every drop counter of the interface and its
                                                      peers added up, 0 for a reason never counted
  now             when the status was read (epoch seconds)
  handshake_at    now - peer["latest_handshake_seconds_ago"] (epoch seconds), None without one
A string value prints as it is, anything else as JSON (true, false, null, 1220, {"open": 1, ...}).
Exit status 2: EXPR failed (e.g. a missing key); 3: `vpnd show` failed.
"""
import collections
import json
import os
import pathlib
import subprocess
import sys
import time


def read(vpnd, run_dir):
    sockets = sorted(pathlib.Path(run_dir).glob("*.sock"))
    if len(sockets) != 1:
        raise RuntimeError(f"expected one control socket in {run_dir}, found {[s.name for s in sockets]}")
    result = subprocess.run([vpnd, "show", sockets[0].name[: -len(".sock")], "--json"], capture_output=True,
                            text=True, timeout=5, env=dict(os.environ, VPND_RUN_DIR=run_dir))
    if result.returncode != 0:
        raise RuntimeError(f"vpnd show --json exited {result.returncode}: {result.stderr.strip()}")
    return json.loads(result.stdout), time.time()


def names(doc, now):
    peers = doc["peers"]
    peer = peers[0] if peers else None
    drops = collections.Counter(doc["drops"])
    for p in peers:
        drops.update(p["drops"])
    ago = peer["latest_handshake_seconds_ago"] if peer else None
    return {"doc": doc, "peers": peers, "peer": peer, "tcp": doc.get("tcp", {}), "drops": drops, "now": now,
            "handshake_at": None if ago is None else now - ago}


def text(value):
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def main(argv):
    mode, every = "print", None
    if argv and argv[0] == "--ok":
        mode, argv = "ok", argv[1:]
    elif argv and argv[0] == "--watch":
        mode, every, argv = "watch", float(argv[1]), argv[2:]
    if len(argv) != 3:
        sys.exit(__doc__)
    vpnd, run_dir, expr = argv
    code = compile(expr, "<expression>", "eval")
    if mode == "watch":
        end = time.monotonic() + 600
        while time.monotonic() < end:
            try:
                doc, now = read(vpnd, run_dir)
                print(f"{now:.3f} {text(eval(code, names(doc, now)))}", flush=True)
            except Exception as err:  # noqa: BLE001 - a sample that failed is a line, not the end
                print(f"{time.time():.3f} error: {err}", flush=True)
            time.sleep(every)
        return 0
    try:
        doc, now = read(vpnd, run_dir)
    except Exception as err:  # noqa: BLE001
        print(f"vpnd_json: {err}", file=sys.stderr)
        return 3
    try:
        value = eval(code, names(doc, now))
    except Exception as err:  # noqa: BLE001
        print(f"vpnd_json: {expr}: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    print(text(value))
    return 0 if mode == "print" or value else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
