"""Summarizes scripts/bench results: median and min-max of each figure over the runs."""
import json
import statistics
import sys

runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]


def by(label):
    return [run for run in runs if run["label"] == label]


def spread(values, fmt="{:,.0f}"):
    values = sorted(values)
    if not values:
        return "–"
    return f"{fmt.format(statistics.median(values))} ({fmt.format(values[0])}–{fmt.format(values[-1])})"


def median(values):
    values = list(values)
    return statistics.median(values) if values else 0


def per_1000(run, ms):
    return ms * 1000 / max(run["accepted"], 1)


def thread_per_1000(group, name):
    """A thread group's CPU per 1,000 callbacks over the runs of `group`."""
    return spread([per_1000(r, r["cpu"]["server_threads_ms"].get(name, 0)) for r in group], "{:,.1f}")


def latency(group, key):
    return spread([r["ack_latency"][key] for r in group])


QUANTILES = [("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p99.9"), ("max_us", "max")]

baseline, bridge, readback, half = by("baseline"), by("bridge"), by("bridge_readback"), by("bridge_half_load")
half_readback, baseline_half = by("bridge_half_load_readback"), by("baseline_half_load")
produce = by("produce")
print(f"runs per figure: {len(bridge)}; median (min–max)\n")

for hot in by("hot_path"):
    print("The hot path (decode, classify, verify, normalize, encode, headers) per callback, in one "
          f"process over {len(hot['ratio'])} alternating rounds: {spread(hot['hot_path_ns'], '{:,.0f}')} ns, "
          f"against {spread(hot['reference_ns'], '{:,.0f}')} ns for one pass of the fixed reference workload: "
          f"**{spread(hot['ratio'], '{:.3f}')} reference passes per callback**. "
          "Compare this ratio between commits; absolute times vary with the machine.\n")

if bridge and baseline:
    print("| figure | baseline (bare actix-web) | bridge | ratio |")
    print("|---|---|---|---|")
    base_tp = median(r["throughput_per_sec"] for r in baseline)
    bridge_tp = median(r["throughput_per_sec"] for r in bridge)
    print(f"| max throughput (callbacks/s) | {spread([r['throughput_per_sec'] for r in baseline])} | "
          f"{spread([r['throughput_per_sec'] for r in bridge])} | {bridge_tp / base_tp:.2f} |")
    for key, name in QUANTILES:
        print(f"| ack latency flat out, {name} (µs) | {latency(baseline, key)} | {latency(bridge, key)} | |")
    for key, name in QUANTILES:
        print(f"| ack latency at 50 % of the bridge's max, {name} (µs) | {latency(baseline_half, key)} | "
              f"{latency(half, key)} | |")
    for key, name in [("p50_us", "p50"), ("p99_us", "p99")]:
        print(f"| end-to-end (POST to consumed), flat out, {name} (ms) | | "
              f"{spread([r['end_to_end']['latency'][key] / 1000 for r in readback], '{:,.1f}')} | |")
        print(f"| end-to-end at 50 % of max, {name} (ms) | | "
              f"{spread([r['end_to_end']['latency'][key] / 1000 for r in half_readback], '{:,.1f}')} | |")
    print(f"| server CPU per 1,000 callbacks (ms) | {spread([r['cpu']['server_ms_per_1000'] for r in baseline], '{:,.1f}')} | "
          f"{spread([r['cpu']['server_ms_per_1000'] for r in bridge], '{:,.1f}')} | |")
    print(f"| all CPU (server, broker, load tool) per 1,000 callbacks (ms) | "
          f"{spread([r['cpu']['all_ms_per_1000'] for r in baseline], '{:,.1f}')} | "
          f"{spread([r['cpu']['all_ms_per_1000'] for r in bridge], '{:,.1f}')} | |")
    rss = by("peak_rss")
    if rss:
        print(f"| peak RSS, the highest of {len(rss)} bridge processes (MiB) | | "
              f"{max(r['kib'] for r in rss) / 1024:.1f} | |")
    print(f"| start to ready (ms) | | {spread([r['ready_ms'] for r in by('startup')])} | |")

server_side = by("bridge_half_load_server_side")
if server_side:
    shares = server_side[0]["share_within_seconds"]
    print(f"\nServer side at 50 % of max (the bridge's own histogram, request start to reply, "
          f"{server_side[0]['accepted']:,.0f} callbacks): "
          + ", ".join(f"{float(bound) * 1e6:,.0f} µs: {share * 100:.2f} %" for bound, share in shares.items()
                      if float(bound) <= 0.01))

if produce:
    print("\nThe Kafka side's limit (plain rdkafka, the bridge's producer settings and records):\n")
    print(f"- delivered per second: {spread([r['throughput_per_sec'] for r in produce])}; "
          f"average value {produce[0]['average_value_bytes']} bytes; failed: {sum(r['failed'] for r in produce)}")
    print(f"- broker CPU per 1,000 events (ms): "
          f"{spread([r['cpu']['broker_ms'] * 1000 / max(r['delivered'], 1) for r in produce], '{:,.1f}')}; "
          f"producer CPU per 1,000 events (ms): "
          f"{spread([r['cpu']['load_ms'] * 1000 / max(r['delivered'], 1) for r in produce], '{:,.1f}')}")


def cpu_split(group, name):
    if not group:
        return
    threads = sorted({t for r in group for t in r["cpu"].get("server_threads_ms", {})})
    cells = [f"{median(per_1000(r, r['cpu']['server_threads_ms'].get(t, 0)) for r in group):.1f}" for t in threads]
    broker = median(per_1000(r, r["cpu"]["broker_ms"]) for r in group)
    load = median(per_1000(r, r["cpu"]["load_ms"]) for r in group)
    busy = median((r["cpu"]["server_ms"] + r["cpu"]["broker_ms"] + r["cpu"]["load_ms"]) / r["cpu"]["wall_ms"] for r in group)
    print(f"| {name} | " + ", ".join(f"{t} {c}" for t, c in zip(threads, cells))
          + f" | {broker:.1f} | {load:.1f} | {busy * 100:.0f} % |")


if bridge:
    print("\nWhere the CPU goes, per 1,000 callbacks (ms, medians; the machine has 200 %):\n")
    print("| run | server threads | broker | load tool | busy |")
    print("|---|---|---|---|---|")
    cpu_split(baseline, "baseline flat out")
    cpu_split(bridge, "bridge flat out")
    cpu_split(readback, "bridge flat out, read back")
    cpu_split(half, "bridge at 50 %")
    cpu_split(half_readback, "bridge at 50 %, read back")

checked = readback + half_readback + by("mode_delivered_half_load_readback") + by("mode_spooled_half_load_readback")
if checked:
    e2e = [r["end_to_end"] for r in checked]
    accepted = sum(r["accepted"] for r in checked)
    print(f"\nRead back: acknowledged {accepted:,}; missing from Kafka {sum(e['missing'] for e in e2e)}; "
          f"written twice (a second copy at another offset) {sum(e['duplicates'] for e in e2e)}; "
          f"the same record handed to the reader again {sum(e.get('reread', 0) for e in e2e)}")
    examples = [x for e in e2e for x in e.get("duplicate_examples", [])][:5]
    for example in examples:
        print(f"  - {example}")
refused = {}
for run in runs:
    for status, count in run.get("statuses", {}).items():
        if status != "200" and run["label"] != "baseline":
            refused[status] = refused.get(status, 0) + count
print(f"non-200 answers of the bridge: {refused or 'none'}")


def sweep(title, prefix, unit):
    labels = sorted({r["label"] for r in runs if r["label"].startswith(prefix)},
                    key=lambda label: int(label[len(prefix):]))
    if not labels:
        return
    print(f"\n{title}\n")
    print(f"| {unit} | throughput (callbacks/s) | p50 (µs) | p99 (µs) | p99.9 (µs) | server CPU per 1,000 (ms) |")
    print("|---|---|---|---|---|---|")
    for label in labels:
        group = by(label)
        print(f"| {label[len(prefix):]} | {spread([r['throughput_per_sec'] for r in group])} | "
              f"{latency(group, 'p50_us')} | {latency(group, 'p99_us')} | {latency(group, 'p999_us')} | "
              f"{spread([r['cpu']['server_ms_per_1000'] for r in group], '{:,.1f}')} |")


sweep("Growth with connections (flat out):", "connections_", "connections")
sweep("Growth with body size (flat out; bytes added to every body):", "pad_", "added bytes")
sweep("Growth with configured secrets (flat out; the matching secret listed last):", "secrets_", "secrets")

def peak_rss_mib(of):
    peaks = [r["kib"] for r in by("peak_rss") if r.get("of") == of]
    return f"{max(peaks) / 1024:.1f}" if peaks else "–"


worker_labels = sorted({r["label"] for r in runs if r["label"].startswith("workers_")},
                       key=lambda label: int(label[len("workers_"):]))
if worker_labels:
    print("\nScaling with HTTP workers (flat out; CPU per 1,000 callbacks in ms; a thread's busy share "
          "is its CPU over the run's wall time, 100 % being one core):\n")
    print("| HTTP workers | throughput (callbacks/s) | p99 (µs) | server CPU per 1,000 | HTTP workers | librdkafka | "
          "delivery reports | other | each HTTP worker busy | busiest librdkafka thread busy | machine busy | peak RSS (MiB) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for label in worker_labels:
        group, workers = by(label), int(label[len("workers_"):])
        def busy(values):
            return spread([v * 100 for v in values], "{:.0f} %")
        print(f"| {workers} | {spread([r['throughput_per_sec'] for r in group])} | {latency(group, 'p99_us')} | "
              f"{spread([r['cpu']['server_ms_per_1000'] for r in group], '{:,.1f}')} | {thread_per_1000(group, 'http_workers')} | "
              f"{thread_per_1000(group, 'librdkafka')} | {thread_per_1000(group, 'delivery_reports')} | "
              f"{spread([per_1000(r, r['cpu']['server_threads_ms'].get('other', 0) + r['cpu']['server_threads_ms'].get('tokio', 0)) for r in group], '{:,.1f}')} | "
              f"{busy([r['cpu']['server_threads_ms'].get('http_workers', 0) / workers / r['cpu']['wall_ms'] for r in group])} | "
              f"{busy([r['cpu'].get('server_busiest_thread_ms', {}).get('librdkafka', 0) / r['cpu']['wall_ms'] for r in group])} | "
              f"{busy([(r['cpu']['server_ms'] + r['cpu']['broker_ms'] + r['cpu']['load_ms']) / r['cpu']['wall_ms'] for r in group])} | "
              f"{peak_rss_mib(label)} |")

modes = [(mode, flat, f"{flat}_half_load", f"{flat}_half_load_readback")
         for mode, flat in [("queued", "bridge"), ("delivered", "mode_delivered"), ("spooled", "mode_spooled")]]
if any(by(flat) for _, flat, _, _ in modes[1:]):
    print("\nPer ack mode:\n")
    print("| mode | flat out (callbacks/s) | flat out p99 (µs) | at 50 %: p50 (µs) | p99 (µs) | p99.9 (µs) | end-to-end p50 (ms) "
          "| server CPU per 1,000, flat out (ms) | at 50 % (ms) | peak RSS (MiB) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for mode, flat, halfway, halfway_readback in modes:
        flat_runs, half_runs, readback_runs = by(flat), by(halfway), by(halfway_readback)
        if not flat_runs:
            continue
        print(f"| {mode} | {spread([r['throughput_per_sec'] for r in flat_runs])} | {latency(flat_runs, 'p99_us')} | "
              f"{latency(half_runs, 'p50_us')} | {latency(half_runs, 'p99_us')} | {latency(half_runs, 'p999_us')} | "
              f"{spread([r['end_to_end']['latency']['p50_us'] / 1000 for r in readback_runs], '{:,.1f}')} | "
              f"{spread([r['cpu']['server_ms_per_1000'] for r in flat_runs], '{:,.1f}')} | "
              f"{spread([r['cpu']['server_ms_per_1000'] for r in half_runs], '{:,.1f}')} | {peak_rss_mib(flat)} |")

ab = {side: by(f"ab_{side}") for side in "ab"}
if ab["a"] and ab["b"]:
    print("\nA/B, flat out, alternating on one broker (a: AB_BIN with AB_ENV_A, b: this build with AB_ENV_B):\n")
    print("| side | throughput (callbacks/s) | p50 (µs) | p99 (µs) | server CPU per 1,000 (ms) | HTTP worker | librdkafka | delivery reports | broker per 1,000 (ms) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for side in "ab":
        group = ab[side]
        broker = [per_1000(r, r["cpu"]["broker_ms"]) for r in group]
        print(f"| {side} | {spread([r['throughput_per_sec'] for r in group])} | {latency(group, 'p50_us')} | "
              f"{latency(group, 'p99_us')} | {spread([r['cpu']['server_ms_per_1000'] for r in group], '{:,.1f}')} | "
              f"{thread_per_1000(group, 'http_workers')} | {thread_per_1000(group, 'librdkafka')} | "
              f"{thread_per_1000(group, 'delivery_reports')} | {spread(broker, '{:,.1f}')} |")
