#!/usr/bin/env python3
"""Server-side ack latency between two scrapes of the bridge's /metrics.

    server_latency.py LABEL BEFORE AFTER

Prints one JSON line: how many accepted callbacks (status 200) the bridge answered in between,
and the share answered within each bucket bound of zego_bridge_ack_latency_seconds (time from
request start to reply inside the bridge: no network, no load tool).
"""
import json
import re
import sys


def buckets(path):
    found = {}
    for line in open(path):
        match = re.match(r'zego_bridge_ack_latency_seconds_bucket\{status="200",le="([^"]+)"\} (\S+)', line)
        if match:
            found[match.group(1)] = float(match.group(2))
    return found


label, before, after = sys.argv[1], buckets(sys.argv[2]), buckets(sys.argv[3])
total = after["+Inf"] - before.get("+Inf", 0)
within = {
    bound: round((after[bound] - before.get(bound, 0)) / total, 5)
    for bound in after
    if bound != "+Inf" and total
}
print(json.dumps({"label": label, "accepted": total, "share_within_seconds": within}))
