"""Summarizes scripts/bench results: median and min-max of each figure over the runs."""
import json
import statistics
import sys

runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]


def by(label):
    return [run for run in runs if run["label"] == label]


def spread(values, fmt="{:,.0f}"):
    values = sorted(values)
    return f"{fmt.format(statistics.median(values))} ({fmt.format(values[0])}–{fmt.format(values[-1])})"


baseline, bridge, half = by("baseline"), by("bridge"), by("bridge_half_load")
print(f"runs: {len(bridge)}; median (min–max)\n")
print("| figure | baseline (bare actix-web) | bridge | ratio |")
print("|---|---|---|---|")
base_tp = statistics.median(r["throughput_per_sec"] for r in baseline)
bridge_tp = statistics.median(r["throughput_per_sec"] for r in bridge)
print(f"| max throughput (callbacks/s) | {spread([r['throughput_per_sec'] for r in baseline])} | "
      f"{spread([r['throughput_per_sec'] for r in bridge])} | {bridge_tp / base_tp:.2f} |")
for key, name in [("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p99.9"), ("max_us", "max")]:
    print(f"| ack latency flat out, {name} (µs) | {spread([r['ack_latency'][key] for r in baseline])} | "
          f"{spread([r['ack_latency'][key] for r in bridge])} | |")
for key, name in [("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p99.9"), ("max_us", "max")]:
    print(f"| ack latency at 50 % of max, {name} (µs) | | {spread([r['ack_latency'][key] for r in half])} | |")
for key, name in [("p50_us", "p50"), ("p99_us", "p99")]:
    print(f"| end-to-end (POST to consumed), flat out, {name} (ms) | | "
          f"{spread([r['end_to_end']['latency'][key] / 1000 for r in bridge], '{:,.1f}')} | |")
    print(f"| end-to-end at 50 % of max, {name} (ms) | | "
          f"{spread([r['end_to_end']['latency'][key] / 1000 for r in half], '{:,.1f}')} | |")
print(f"| CPU time per 1,000 callbacks (ms) | | {spread([r['cpu_ms_per_1000'] for r in bridge], '{:,.1f}')} | |")
rss = by("peak_rss")
if rss:
    print(f"| peak RSS (MiB) | | {rss[0]['kib'] / 1024:.1f} | |")
print(f"| start to ready (ms) | | {spread([r['ready_ms'] for r in by('startup')])} | |")
missing = sum(r["end_to_end"]["missing"] for r in bridge + half)
duplicates = sum(r["end_to_end"]["duplicates"] for r in bridge + half)
accepted = sum(r["accepted"] for r in bridge + half)
print(f"\nacknowledged {accepted:,}; missing from Kafka {missing}; duplicates {duplicates}")
refused = {}
for run in bridge + half:
    for status, count in run["statuses"].items():
        if status != "200":
            refused[status] = refused.get(status, 0) + count
print(f"non-200 answers: {refused or 'none'}")
