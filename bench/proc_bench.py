#!/usr/bin/env python3
"""Wall time of whole processes, a fresh one per run, as a user would start them.

    proc_bench.py oneshot --runs 30 --endpoint URL --instances i-a,i-b --cli PATH \
                          --python PATH --sdk-script PATH --out FILE
        `ecs-vnc-operator url` against bench/sdk_url.py (official Python SDK), alternating
        (A B, B A, ...), each run on the next instance; also Python's own start-up and the SDK's
        import time, to say where the SDK's time goes.
    proc_bench.py open --runs 50 --plugin PATH --namespace NS --sessions a,b \
                       --sim-endpoint URL --out FILE
        `kubectl-vnc open NAME --print`, round-robin over the sessions, with the seconds of the
        URL window it reports as left, and the seconds truly left: from ecs-sim's time of issue.

Stdlib only. Every run has a timeout; a failed run is recorded, never retried.
Credentials and KUBECONFIG come from the environment. URLs are checked, never stored.
"""

import argparse
import datetime
import json
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request

CONSOLE_BASE = "https://g.alicdn.com/aliyun/ecs-console-vnc2/0.0.8/index.html?vncUrl="
RUN_TIMEOUT_S = 30


def timed(cmd):
    """Runs cmd; returns (seconds, returncode, stdout, stderr)."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                              check=False)
    except subprocess.TimeoutExpired:
        return time.perf_counter() - start, -1, "", f"timed out after {RUN_TIMEOUT_S} s"
    return time.perf_counter() - start, proc.returncode, proc.stdout, proc.stderr


def printed_url(stdout):
    lines = stdout.strip().splitlines()
    return len(lines) == 1 and lines[0].startswith(CONSOLE_BASE)


def failure(name, i, rc, stderr):
    tail = stderr.strip().splitlines()[-1:] or [""]
    return f"{name} run {i}: exit {rc}: {tail[0][:300]}"


def oneshot(args):
    instances = args.instances.split(",")
    region = args.region_id
    cli = [args.cli, "url", "--region-id", region, "--windows", "false",
           "--endpoint", args.endpoint, "--instance-id"]
    sdk = [args.python, args.sdk_script, "--region-id", region, "--windows", "false",
           "--endpoint", args.endpoint, "--instance-id"]
    tools = {"cli": cli, "sdk": sdk}
    samples = {"cli": [], "sdk": []}
    failures = []
    # One untimed run each: page cache and the Python bytecode cache, as on a used machine.
    for name, cmd in tools.items():
        _, rc, out, err = timed(cmd + [instances[0]])
        if rc != 0 or not printed_url(out):
            failures.append(failure(name + " warm-up", 0, rc, err))
    for i in range(args.runs):
        order = ["cli", "sdk"] if i % 2 == 0 else ["sdk", "cli"]
        instance = instances[(i + 1) % len(instances)]
        for name in order:
            secs, rc, out, err = timed(tools[name] + [instance])
            if rc == 0 and printed_url(out):
                samples[name].append(secs * 1000)
            else:
                failures.append(failure(name, i, rc, err))
    # Where the SDK's time goes: the interpreter alone, then the interpreter plus the imports.
    startup = {"pythonStartMs": [], "sdkImportMs": []}
    imports = ("import aliyunsdkcore.client, aliyunsdkcore.http.protocol_type; "
               "import aliyunsdkecs.request.v20140526.DescribeInstanceVncUrlRequest")
    for _ in range(args.startup_runs):
        secs, rc, _, _ = timed([args.python, "-c", "pass"])
        if rc == 0:
            startup["pythonStartMs"].append(secs * 1000)
        secs, rc, _, _ = timed([args.python, "-c", imports])
        if rc == 0:
            startup["sdkImportMs"].append(secs * 1000)
    return {"runs": args.runs, "instances": len(instances), "cliMs": samples["cli"],
            "sdkMs": samples["sdk"], "failures": failures, **startup}


LEFT = re.compile(r"^([0-9]+(?:\.[0-9]+)?) s left to open a connection with this URL "
                  r"\(until ([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})Z\)", re.MULTILINE)


def issued_at(sim_endpoint, console_url):
    """When ecs-sim issued the VncUrl behind console_url (Unix seconds), from its stats."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(console_url).query)
    instance = query["instanceId"][0]
    with urllib.request.urlopen(f"{sim_endpoint}/_sim/stats", timeout=5) as resp:
        stats = json.load(resp)
    return stats["lastVncUrlMs"][instance] / 1000


def open_bench(args):
    sessions = args.sessions.split(",")
    # secondsLeft: as printed (one decimal, rounded to nearest). secondsLeftAtExit: the printed
    # expiry (urlExpiresAt, whole seconds, rounded down) minus this machine's clock when the
    # process had exited: pessimistic by up to a second. secondsLeftOnEcsClock: the URL's real
    # window (ecs-sim's time of issue + the URL validity) minus the same exit time.
    wall, left, left_exact, left_true, failures = [], [], [], [], []
    for i in range(args.runs):
        name = sessions[i % len(sessions)]
        cmd = [args.plugin, "open", name, "-n", args.namespace, "--print",
               "--timeout", args.timeout]
        secs, rc, out, err = timed(cmd)
        if rc != 0 or not printed_url(out):
            failures.append(failure("open " + name, i, rc, err))
            continue
        wall.append(secs * 1000)
        exited = time.time()
        m = LEFT.search(err)
        if m:
            left.append(float(m.group(1)))
            until = datetime.datetime.strptime(m.group(2), "%Y-%m-%dT%H:%M:%S").replace(
                tzinfo=datetime.timezone.utc)
            left_exact.append(until.timestamp() - exited)
            try:
                issued = issued_at(args.sim_endpoint, out.strip())
                left_true.append(issued + args.url_validity - exited)
            except (OSError, KeyError, ValueError) as e:
                failures.append(f"open {name} run {i}: no issue time from ecs-sim: {e}")
        else:
            failures.append(f"open {name} run {i}: no 'seconds left' line on stderr")
    return {"runs": args.runs, "sessions": len(sessions), "wallMs": wall, "secondsLeft": left,
            "secondsLeftAtExit": left_exact, "secondsLeftOnEcsClock": left_true,
            "failures": failures}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    one = sub.add_parser("oneshot")
    one.add_argument("--runs", type=int, default=30)
    one.add_argument("--startup-runs", type=int, default=10)
    one.add_argument("--endpoint", required=True)
    one.add_argument("--region-id", default="cn-hangzhou")
    one.add_argument("--instances", required=True)
    one.add_argument("--cli", required=True)
    one.add_argument("--python", required=True)
    one.add_argument("--sdk-script", required=True)
    one.add_argument("--out", required=True)
    opn = sub.add_parser("open")
    opn.add_argument("--runs", type=int, default=50)
    opn.add_argument("--plugin", required=True)
    opn.add_argument("--namespace", required=True)
    opn.add_argument("--sessions", required=True)
    opn.add_argument("--timeout", default="10s")
    opn.add_argument("--sim-endpoint", required=True)
    opn.add_argument("--url-validity", type=float, default=15.0)
    opn.add_argument("--out", required=True)
    args = parser.parse_args()
    result = oneshot(args) if args.mode == "oneshot" else open_bench(args)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    for line in result["failures"][:5]:
        print(f"proc_bench: {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
