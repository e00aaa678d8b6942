#!/usr/bin/env python3
"""Counts one user's requests in the kube-apiserver's audit log (scripts/local-cluster.sh writes one
at level Metadata), by time window. scripts/bench.sh runs the operator as the deploy/
ServiceAccount, so its requests are told apart from the benchmark drivers' and kubectl's (which use
the admin token) by username, as tests/e2e_audit.rs does.

    audit.py count --log DIR/audit.log --user U --from T0 --to T1 [--request 'patch vncsessions/status']
    audit.py dump --log DIR/audit.log --user U > requests.json

count prints the number of requests received in [T0, T1) (Unix seconds); dump writes every
request as [received, kind, object name] for bench/report.py. A request is counted once
(by auditID), when it was received; a watch counts as one request when it starts. Leader
election (coordination.k8s.io) is left out: the benchmark runs without it. Stdlib only.
"""

import argparse
import collections
import datetime
import json
import sys


def stamp(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def requests(path, user):
    """[(received, 'verb resource[/subresource]', name)] of `user`, once per auditID, in log order."""
    seen = set()
    out = []
    needle = json.dumps(user)
    with open(path, encoding="utf-8", errors="replace") as log:
        for line in log:
            if needle not in line:
                continue
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("user", {}).get("username") != user or e.get("auditID") in seen:
                continue
            r = e.get("objectRef") or {}
            if r.get("apiGroup") == "coordination.k8s.io":
                continue
            seen.add(e.get("auditID"))
            what = r.get("resource", "?") + (f"/{r['subresource']}" if r.get("subresource") else "")
            out.append((stamp(e["requestReceivedTimestamp"]), f"{e.get('verb')} {what}", r.get("name", "")))
    return out


def window(reqs, start, end, skip_prefix=None):
    """Requests received in [start, end), by kind; those on objects named `skip_prefix`… left out."""
    return collections.Counter(kind for t, kind, name in reqs if start <= t < end
                               and not (skip_prefix and name.startswith(skip_prefix)))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("count")
    c.add_argument("--log", required=True)
    c.add_argument("--user", required=True)
    c.add_argument("--from", dest="start", type=float, required=True)
    c.add_argument("--to", dest="end", type=float, required=True)
    c.add_argument("--request", help="only this kind, e.g. 'patch vncsessions/status'")
    d = sub.add_parser("dump")
    d.add_argument("--log", required=True)
    d.add_argument("--user", required=True)
    args = ap.parse_args()
    if args.cmd == "dump":
        json.dump(requests(args.log, args.user), sys.stdout)
        return 0
    counts = window(requests(args.log, args.user), args.start, args.end)
    print(counts.get(args.request, 0) if args.request else sum(counts.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
