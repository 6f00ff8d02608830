"""The monitoring proven on the real thing: a real Prometheus (Debian's package) scrapes real
bridges with the job of deploy/prometheus/prometheus.yml and evaluates the rules of
deploy/prometheus/alerts.yml (with `for:` shortened), while real faults happen to a real Apache
Kafka node and to the bridges. Each alert a fault should raise must reach `firing` in
Prometheus' own API; none may fire while all is quiet; and after the traffic every query of
every dashboard panel must return data.

Four bridges, each under a namespace of its own (as the Prometheus Operator labels them):
  quiet-a  queued, small producer queue, long message timeout: Kafka stopped under it fills its
           queue, then its events time out into the dead-letter file, it becomes unready and
           refuses callbacks.
  spool-b  spooled with a 1 MiB spool: Kafka stopped under it fills the spool.
  edge-c   queued, its secrets from a file: a flood of forged callbacks, then a broken secrets
           file.
  lost-d   queued, started after the quiet run with one topic that does not exist: callbacks
           for it are refused, the rest are taken, and it stays ready.

Run by scripts/check-monitoring (which installs Prometheus); prints one line per check.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
SCRAPE = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "zego-kafka-bridge.json"
HARNESS = ROOT / "scripts" / "kafka"
WORK = Path(tempfile.mkdtemp(prefix="zkb-monitoring-"))
SECRET = "monitoring-check-secret"
# Alerts whose `for:` is minutes in production wait this long here.
SHORT_FOR = "3s"


def log(message: str) -> None:
    print(message, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(url: str, body: bytes | None = None, headers: dict | None = None, timeout: float = 5) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers=headers or {}, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def until(what: str, condition, within: float, every: float = 0.5):
    deadline = time.monotonic() + within
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise SystemExit(f"FAILED  {what} (waited {within:.0f} s)")
        time.sleep(every)


class Kafka:
    def __init__(self) -> None:
        self.dir = WORK / "kafka"
        summary = json.loads(subprocess.run([str(HARNESS), "start", "--json", "--dir", str(self.dir)],
                                            check=True, capture_output=True, text=True).stdout)
        self.bootstrap = summary["bootstrap"]

    def stop(self) -> None:
        subprocess.run([str(HARNESS), "stop", "--keep", "--dir", str(self.dir)], check=True, capture_output=True)

    def remove(self) -> None:
        subprocess.run([str(HARNESS), "stop", "--kill", "--dir", str(self.dir)], capture_output=True)


class Bridge:
    def __init__(self, name: str, namespace: str) -> None:
        self.name, self.namespace = name, namespace
        self.prefix = f"mon{random.randrange(1 << 40):x}"
        self.public, self.admin = free_port(), free_port()
        self.process = None

    def start(self, binary: Path, kafka: Kafka, env: dict[str, str], ready: bool = True) -> "Bridge":
        self.workdir = WORK / self.name
        self.workdir.mkdir()
        base = {
            "PATH": os.environ["PATH"],
            "ZEGO_BRIDGE_KAFKA_BROKERS": kafka.bootstrap,
            "ZEGO_BRIDGE_TOPIC_PREFIX": self.prefix,
        }
        created = subprocess.run([str(binary), "topics", "--create", "--partitions", "1", "--replication-factor", "1"],
                                 env=base, capture_output=True, text=True, cwd=self.workdir)
        if created.returncode != 0:
            raise SystemExit(f"FAILED  topics for {self.name}: {created.stdout}{created.stderr}")
        self.env = dict(base,
                        ZEGO_BRIDGE_LISTEN_ADDR=f"127.0.0.1:{self.public}",
                        ZEGO_BRIDGE_ADMIN_ADDR=f"127.0.0.1:{self.admin}",
                        ZEGO_BRIDGE_HTTP_WORKERS="1",
                        ZEGO_BRIDGE_LOG_FORMAT="json",
                        ZEGO_BRIDGE_KAFKA_PROBE_INTERVAL_MS="1000",
                        ZEGO_BRIDGE_LIBRDKAFKA_STATISTICS_INTERVAL_MS="1000",
                        ZEGO_BRIDGE_DEAD_LETTER_PATH=str(self.workdir / "dead-letter.jsonl"),
                        **env)
        if "ZEGO_BRIDGE_CALLBACK_SECRETS_FILE" not in env:
            self.env["ZEGO_BRIDGE_CALLBACK_SECRETS"] = SECRET
        self.log = (self.workdir / "bridge.log").open("w")
        self.process = subprocess.Popen([str(binary)], env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                        cwd=self.workdir)
        until(f"{self.name} serving", lambda: self.get("/readyz" if ready else "/healthz")[0] == 200, 30)
        return self

    def get(self, path: str) -> tuple[int, str]:
        try:
            return http(f"http://127.0.0.1:{self.admin}{path}")
        except OSError:
            return 0, ""

    def post(self, event: str, secret: str = SECRET, times: int = 1, **fields) -> int:
        """Signs and posts one callback (`times` > 1: ZEGO's retries of it, the same bytes);
        returns the last status."""
        timestamp, nonce = str(int(time.time())), str(random.randrange(1 << 62))
        signature = hashlib.sha1("".join(sorted([secret, timestamp, nonce])).encode()).hexdigest()
        body = dict(event=event, appid=4242, timestamp=timestamp, nonce=nonce, signature=signature, **fields)
        status = 0
        for _ in range(times):
            try:
                status = http(f"http://127.0.0.1:{self.public}/v1/callbacks", json.dumps(body).encode(),
                              {"content-type": "application/json"}, timeout=10)[0]
            except OSError:
                status = 0
        return status

    def metric(self, name: str) -> float:
        """The value of an unlabelled metric the bridge exports now."""
        for line in self.get("/metrics")[1].splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise SystemExit(f"FAILED  {self.name} does not export {name}")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


class Prometheus:
    def __init__(self, bridges: list[Bridge]) -> None:
        # The rules as shipped, but minutes of `for:` become seconds.
        rules = re.sub(r"^(\s*)for: \S+$", rf"\g<1>for: {SHORT_FOR}", ALERTS.read_text(), flags=re.M)
        (WORK / "alerts.yml").write_text(rules)
        # The job as shipped (its name and metrics path), pointed at these bridges, each labelled
        # with a namespace and pod as the Prometheus Operator would.
        config = yaml.safe_load(SCRAPE.read_text())
        job = config["scrape_configs"][0]
        job["static_configs"] = [{"targets": [f"127.0.0.1:{bridge.admin}"],
                                  "labels": {"namespace": bridge.namespace, "pod": bridge.name}}
                                 for bridge in bridges]
        job["scrape_interval"] = "1s"
        config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
        config["rule_files"] = [str(WORK / "alerts.yml")]
        (WORK / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.job = job["job_name"]
        self.port = free_port()
        self.log = (WORK / "prometheus.log").open("w")
        self.process = subprocess.Popen(
            ["prometheus", f"--config.file={WORK / 'prometheus.yml'}", f"--storage.tsdb.path={WORK / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT)
        until("Prometheus ready", lambda: self.ready(), 60)

    def ready(self) -> bool:
        try:
            return http(f"http://127.0.0.1:{self.port}/-/ready")[0] == 200
        except OSError:
            return False

    def api(self, path: str, **params) -> dict:
        query = urllib.parse.urlencode(params)
        _, body = http(f"http://127.0.0.1:{self.port}/api/v1/{path}?{query}")
        payload = json.loads(body)
        if payload.get("status") != "success":
            raise SystemExit(f"FAILED  Prometheus {path} {params}: {body[:500]}")
        return payload["data"]

    def query(self, expr: str) -> list:
        return self.api("query", query=expr)["result"]

    def alerts(self) -> list[dict]:
        return self.api("alerts")["alerts"]

    def firing(self) -> dict[str, list[dict]]:
        firing: dict[str, list[dict]] = {}
        for alert in self.alerts():
            if alert["state"] == "firing":
                firing.setdefault(alert["labels"]["alertname"], []).append(alert["labels"])
        return firing

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


def expect_firing(prometheus: Prometheus, alert: str, within: float, **labels) -> None:
    started = time.monotonic()

    def fired():
        return any(all(found.get(key) == value for key, value in labels.items())
                   for found in prometheus.firing().get(alert, []))

    until(f"{alert} {labels} firing", fired, within)
    log(f"ok      {alert} {labels} firing after {time.monotonic() - started:.0f} s")


def dashboard_queries(prometheus: Prometheus) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    empty = []
    count = 0
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = (target["expr"].replace("$namespace", ".*").replace("$job", prometheus.job)
                    .replace("$pod", ".*").replace("$__rate_interval", "1m").replace("$__range", "10m"))
            count += 1
            if not prometheus.query(expr):
                empty.append(f"{panel['title']!r}: {expr}")
    if empty:
        raise SystemExit("FAILED  dashboard queries without data:\n  " + "\n  ".join(empty))
    log(f"ok      every dashboard query returns data ({count} queries in {len(dashboard['panels'])} panels)")


class Traffic:
    """Callbacks to a bridge every 100 ms on a thread, while the dashboard is queried: some
    series (batch sizes, round trips) describe the last statistics interval only."""

    def __init__(self, bridge: Bridge) -> None:
        import threading
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self.run, args=(bridge,), daemon=True)
        self.thread.start()

    def run(self, bridge: Bridge) -> None:
        seq = 10_000
        while not self.stop_flag.is_set():
            bridge.post("mix_stop", task_id="t", seq=str(seq))
            seq += 1
            time.sleep(0.1)

    def stop(self) -> None:
        self.stop_flag.set()
        self.thread.join()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", type=lambda text: Path(text).resolve(), required=True,
                        help="the bridge's binary (any relative path is taken from here, not from the bridges' own directories)")
    args = parser.parse_args()
    kafka = Kafka()
    quiet, spool, edge, lost = (Bridge("quiet-a", "ns-a"), Bridge("spool-b", "ns-b"),
                                Bridge("edge-c", "ns-c"), Bridge("lost-d", "ns-d"))
    bridges = [quiet, spool, edge, lost]
    prometheus = None
    try:
        secrets_file = WORK / "secrets"
        secrets_file.write_text(f"{SECRET}\n")
        quiet.start(args.binary, kafka, {
            "ZEGO_BRIDGE_LIBRDKAFKA_QUEUE_BUFFERING_MAX_MESSAGES": "100",
            "ZEGO_BRIDGE_LIBRDKAFKA_MESSAGE_TIMEOUT_MS": "20000",
            "ZEGO_BRIDGE_UNAVAILABLE_AFTER_MS": "25000",
            "ZEGO_BRIDGE_DEAD_LETTER_RETRY_INTERVAL_MS": "0",
        })
        spool.start(args.binary, kafka, {
            "ZEGO_BRIDGE_ACK_MODE": "spooled",
            "ZEGO_BRIDGE_SPOOL_DIR": str(WORK / "spool-b" / "spool"),
            "ZEGO_BRIDGE_SPOOL_MAX_BYTES": str(1024 * 1024),
        })
        edge.start(args.binary, kafka, {"ZEGO_BRIDGE_CALLBACK_SECRETS_FILE": str(secrets_file)})
        # lost-d is scraped from the start (a target that is down raises no alert of ours).
        prometheus = Prometheus(bridges)

        # A quiet run: traffic everywhere, nothing wrong; no alert may fire.
        for round_ in range(40):
            for bridge in (quiet, spool, edge):
                # Every fifth callback retried, as ZEGO does when an answer is slow.
                status = bridge.post("mix_stop", task_id="t", seq=str(round_), times=1 + (round_ % 5 == 0))
                if status != 200:
                    raise SystemExit(f"FAILED  {bridge.name} answered {status} in the quiet run")
            time.sleep(0.25)
        time.sleep(5)
        firing = prometheus.firing()
        if firing:
            raise SystemExit(f"FAILED  alerts fired in a quiet run: {firing}")
        log("ok      a quiet run of 20 s fires no alert")

        # Faults with Kafka up: forged callbacks and a broken secrets file on edge-c; a missing
        # topic on lost-d.
        for _ in range(300):
            edge.post("mix_stop", secret="forged", task_id="t", seq="1")
        secrets_file.write_text("4242=\n")
        lost.start(args.binary, kafka, {"ZEGO_BRIDGE_TOPIC_ROOM_CLOSED": "monitoring-check-missing-topic"})
        # Scraped a few times before its callbacks come, as a pod is before traffic reaches it.
        until("lost-d scraped", lambda: prometheus.query('zego_bridge_ready{namespace="ns-d"}'), 30)
        time.sleep(2)
        for seq in range(40):
            lost.post("room_close", room_id="r", room_session_id=seq)
        expect_firing(prometheus, "ZegoBridgeSignatureRefusalSpike", 60, namespace="ns-c")
        expect_firing(prometheus, "ZegoBridgeCallbackSecretsFileInvalid", 60, namespace="ns-c", pod="edge-c")
        expect_firing(prometheus, "ZegoBridgeTopicMissing", 60, namespace="ns-d",
                      topic="monitoring-check-missing-topic")
        expect_firing(prometheus, "ZegoBridgeRefusingCallbacks", 60, namespace="ns-d")
        # A missing topic refuses that type's callbacks only: the pod stays ready for the rest.
        if any(found.get("namespace") == "ns-d" for found in prometheus.firing().get("ZegoBridgeNoReadyPods", [])):
            raise SystemExit("FAILED  NoReadyPods fired for a bridge that is ready but for one topic")

        # Every dashboard query has data after the traffic (with some going on).
        traffic = Traffic(quiet)
        try:
            time.sleep(3)
            dashboard_queries(prometheus)
        finally:
            traffic.stop()

        # Kafka stopped under the bridges.
        kafka.stop()
        log("        Kafka stopped")
        accepted = sum(quiet.post("mix_stop", task_id="t", seq=str(1000 + n)) == 200 for n in range(90))
        log(f"        quiet-a took {accepted} callbacks into its queue of 100")
        # Past 80 % of the spool (the alert's threshold) and short of full (160 KiB of headroom
        # left): filled by its own measure, since a record's size is the event's plus its
        # headers, which change with the code; each record is well under the 45 KiB between.
        pad = "x" * 30_000
        taken = 0
        while spool.metric("zego_bridge_spool_bytes") < 0.8 * 1024 * 1024 and taken < 40:
            taken += spool.post("mix_stop", task_id="t", seq=str(2000 + taken), pad=pad) == 200
        log(f"        spool-b spooled {taken} callbacks of 30 KB into its 1 MiB")
        expect_firing(prometheus, "ZegoBridgeQueueNearlyFull", 60, namespace="ns-a", pod="quiet-a")
        expect_firing(prometheus, "ZegoBridgeSpoolNearlyFull", 60, namespace="ns-b", pod="spool-b")
        expect_firing(prometheus, "ZegoBridgeKafkaUnreachable", 60, namespace="ns-a", pod="quiet-a")
        # Past message.timeout.ms the queued events are dead-lettered.
        expect_firing(prometheus, "ZegoBridgeDeliveryFailures", 90, namespace="ns-a")
        # Past ZEGO_BRIDGE_UNAVAILABLE_AFTER_MS the queued bridge refuses callbacks, unready.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
                found.get("namespace") == "ns-a" for found in prometheus.firing().get("ZegoBridgeNoReadyPods", [])):
            quiet.post("mix_stop", task_id="t", seq="3000")
            time.sleep(0.5)
        expect_firing(prometheus, "ZegoBridgeNoReadyPods", 5, namespace="ns-a")
        for _ in range(40):
            quiet.post("mix_stop", task_id="t", seq="3001")
        expect_firing(prometheus, "ZegoBridgeRefusingCallbacks", 60, namespace="ns-a")
        # The spooled bridge rides the outage out: it stays ready while its spool has room...
        if any(found.get("namespace") == "ns-b" for found in prometheus.firing().get("ZegoBridgeNoReadyPods", [])):
            raise SystemExit("FAILED  NoReadyPods fired for the spooled bridge, whose spool still has room")
        log("ok      the spooled bridge stays ready through the outage while its spool has room")
        # ...and a full spool makes it unready.
        refused = sum(spool.post("mix_stop", task_id="t", seq=str(2100 + n), pad=pad) == 503 for n in range(12))
        log(f"        spool-b refused {refused} callbacks with a full spool")
        expect_firing(prometheus, "ZegoBridgeNoReadyPods", 60, namespace="ns-b")
        return 0
    finally:
        if prometheus:
            prometheus.stop()
        for bridge in bridges:
            bridge.stop()
        kafka.remove()
        if os.environ.get("ZEGO_BRIDGE_KEEP_MONITORING_WORK"):
            print(f"kept {WORK}")
        else:
            shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
