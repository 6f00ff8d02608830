#!/usr/bin/env python3
"""Runs one load command and reports where the machine's CPU went meanwhile.

    measure.py --pid server=PID --pid broker=PID -- zego-bridge-bench load ...

Prints the command's JSON report (its last line) with a "cpu" object added: milliseconds of
CPU (user + system) of each named process and of the load command itself, the server's split by
thread group (HTTP workers, librdkafka, delivery polling, Tokio, other) with the busiest thread
of each group, and CPU per 1,000
accepted callbacks (the server's, and everything's). Read from /proc, so Linux only.
"""

import json
import os
import resource
import subprocess
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")

# Thread names (15 characters at most) of the bridge, grouped by what they do.
GROUPS = [
    ("http_workers", ("actix-rt|system", "actix-server")),
    ("librdkafka", ("rdk:",)),
    ("delivery_reports", ("producer pollin",)),
    ("tokio", ("tokio-runtime",)),
    ("spool", ("zego-spool",)),
]


def ticks(stat_path):
    with open(stat_path) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


def process_ms(pid):
    return ticks(f"/proc/{pid}/stat") * 1000 / HZ


def threads_ms(pid):
    by_group = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as comm:
                name = comm.read().strip()
            spent = ticks(f"/proc/{pid}/task/{tid}/stat")
        except FileNotFoundError:
            continue
        group = next((group for group, prefixes in GROUPS if name.startswith(prefixes)), "other")
        by_group[(group, tid)] = spent
    return by_group


def main():
    args = sys.argv[1:]
    split = args.index("--")
    named = dict(arg.split("=", 1) for arg in args[:split] if arg != "--pid")
    command = args[split + 1:]

    before = {name: process_ms(pid) for name, pid in named.items()}
    threads_before = threads_ms(named["server"]) if "server" in named else {}
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    output = subprocess.run(command, check=False, capture_output=True, text=True)
    wall_ms = (time.monotonic() - started) * 1000
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    after = {name: process_ms(pid) for name, pid in named.items()}
    threads_after = threads_ms(named["server"]) if "server" in named else {}

    lines = output.stdout.strip().splitlines()
    if output.returncode != 0 or not lines:
        sys.stderr.write(output.stderr)
        sys.exit(output.returncode or 1)
    report = json.loads(lines[-1])
    cpu = {f"{name}_ms": round(after[name] - before[name]) for name in named}
    cpu["load_ms"] = round(
        (children_after.ru_utime + children_after.ru_stime
         - children_before.ru_utime - children_before.ru_stime) * 1000)
    cpu["wall_ms"] = round(wall_ms)
    if threads_after:
        groups, busiest = {}, {}
        for (group, tid), spent in threads_after.items():
            spent_ms = (spent - threads_before.get((group, tid), 0)) * 1000 / HZ
            groups[group] = groups.get(group, 0) + spent_ms
            busiest[group] = max(busiest.get(group, 0), spent_ms)
        cpu["server_threads_ms"] = {group: round(ms) for group, ms in sorted(groups.items())}
        # The busiest single thread of each group: how near a group is to a core's worth.
        cpu["server_busiest_thread_ms"] = {group: round(ms) for group, ms in sorted(busiest.items())}
    accepted = report.get("accepted") or 0
    if "server" in named and accepted:
        cpu["server_ms_per_1000"] = round(cpu["server_ms"] * 1000 / accepted, 2)
        cpu["all_ms_per_1000"] = round(
            (sum(cpu[f"{name}_ms"] for name in named) + cpu["load_ms"]) * 1000 / accepted, 2)
    report["cpu"] = cpu
    print(json.dumps(report))


if __name__ == "__main__":
    main()
