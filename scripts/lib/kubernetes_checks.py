#!/usr/bin/env python3
"""The Helm chart on a real Kubernetes; run by scripts/check-kubernetes inside the cluster's
network namespace (scripts/kubernetes), with kubectl and helm on PATH and Apache Kafka listening
on the node's address.

What a platform team does on its first day, with the README's release name: `helm install` in
each ack mode (SASL to a real Kafka for two of them), the topics Job, readiness, callbacks
through the Service, and then, on the default install: a rolling upgrade under load with every
200 accounted for in Kafka, a pod deleted while it holds events Kafka could not take, and the
callback secret rotated through the Secret volume without a restart. Each check says what it
saw; every one must pass.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import random
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, TopicPartition

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "zego-kafka-bridge"
KAFKA_HARNESS = ROOT / "scripts" / "kafka"
RELEASE = "zego-bridge"  # the README's
FULLNAME = f"{RELEASE}-zego-kafka-bridge"
IMAGE_REPOSITORY, IMAGE_TAG = "zkb.local/zego-kafka-bridge", "test"
STORAGE_CLASS = "zkb-local"
SECRET, ROTATED_SECRET = "k8s-check-secret", "k8s-check-rotated"

failures: list[str] = []


class CheckFailed(Exception):
    pass


def log(message: str) -> None:
    print(f"kubernetes-check: {message}", flush=True)


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def sh(*command: str, stdin: str | None = None, timeout: float = 600, check: bool = True) -> str:
    result = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise CheckFailed(f"{' '.join(command)}: exit {result.returncode}\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return result.stdout


def kubectl(*args: str, **kwargs) -> str:
    return sh("kubectl", *args, **kwargs)


def kubectl_json(*args: str) -> dict:
    return json.loads(kubectl(*args, "-o", "json"))


def until(what: str, condition, seconds: float, every: float = 0.5):
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise CheckFailed(f"{what}: not after {seconds:.0f} s")
        time.sleep(every)


def check(name: str, body) -> None:
    started = time.monotonic()
    log(f"--- {name}")
    try:
        body()
        log(f"ok  {name} ({time.monotonic() - started:.0f} s)")
    except (CheckFailed, subprocess.TimeoutExpired, OSError, ValueError, KeyError, KafkaException) as failure:
        failures.append(name)
        log(f"FAILED  {name}: {failure!r}")
        diagnose()


def diagnose() -> None:
    print(kubectl("get", "pods,pvc,jobs,events", "-o", "wide", check=False)[-6000:], flush=True)
    for pod in pods():
        print(f"--- logs of {pod['metadata']['name']}", flush=True)
        print(kubectl("logs", pod["metadata"]["name"], "--tail=30", check=False), flush=True)


# ---- Kafka ------------------------------------------------------------------------------------


class Kafka:
    def __init__(self, summary: dict, directory: str) -> None:
        self.summary = summary
        self.dir = directory
        self.plaintext = summary["bootstrap"]
        self.sasl = summary["sasl_plaintext"]
        self.scram = summary["scram"]

    def messages(self, topic: str) -> list[bytes]:
        """Every record of TOPIC, read to the high watermark."""
        consumer = Consumer({"bootstrap.servers": self.plaintext, "group.id": f"k8s-check-{random.random()}",
                             "enable.auto.commit": False})
        try:
            values: list[bytes] = []
            for topic in [topic]:
                metadata = consumer.list_topics(topic, timeout=10).topics[topic]
                for partition in metadata.partitions:
                    low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
                    if high <= low:
                        continue
                    consumer.assign([TopicPartition(topic, partition, low)])
                    position = low
                    while position < high:
                        message = consumer.poll(5)
                        expect(message is not None, f"reading {topic}[{partition}] stalled at {position} of {high}")
                        if message.error():
                            continue
                        values.append(message.value() or b"")
                        position = message.offset() + 1
            return values
        finally:
            consumer.close()

    def topics(self, prefix: str) -> list[str]:
        consumer = Consumer({"bootstrap.servers": self.plaintext, "group.id": "k8s-check-topics"})
        try:
            return sorted(name for name in consumer.list_topics(timeout=10).topics if name.startswith(prefix + "."))
        finally:
            consumer.close()

    def node(self, action: str) -> None:
        sh(sys.executable, str(KAFKA_HARNESS), "node", action, "1", "--dir", self.dir)


def missing_from_kafka(kafka: Kafka, prefix: str, marks: list[str], seconds: float = 60) -> list[str]:
    """The marks (room ids of room_create callbacks) not found in PREFIX.room.created after
    waiting up to SECONDS."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            values = kafka.messages(f"{prefix}.room.created")
        except KafkaException as error:  # a broker just restarted: not the leader yet
            expect(time.monotonic() < deadline, f"reading {prefix}.room.created: {error}")
            time.sleep(1)
            continue
        # Whole strings, never substrings: "…-roll-1" must not be found in "…-roll-10".
        found: set[str] = set()
        for value in values:
            found |= strings_in(json.loads(value))
        missing = [mark for mark in marks if mark not in found]
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(2)


def strings_in(value) -> set[str]:
    """Every string anywhere in a JSON value."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*(strings_in(item) for item in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(strings_in(item) for item in value)) if value else set()
    return set()


# ---- callbacks --------------------------------------------------------------------------------


def post_callback(base_url: str, mark: str, secret: str = SECRET, timeout: float = 5) -> int:
    """A signed room_create whose room id is MARK; returns the status (0: no answer)."""
    timestamp, nonce = str(int(time.time())), str(random.randrange(1 << 62))
    signature = hashlib.sha1("".join(sorted([secret, timestamp, nonce])).encode()).hexdigest()
    body = {"event": "room_create", "appid": 4242, "timestamp": timestamp, "nonce": nonce, "signature": signature,
            "room_id": mark, "room_session_id": random.randrange(1 << 50), "room_create_time": str(int(time.time() * 1000)),
            "id_name": "k8s-check"}
    request = urllib.request.Request(f"{base_url}/v1/callbacks", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def service_url() -> str:
    service = kubectl_json("get", "service", FULLNAME)
    return f"http://{service['spec']['clusterIP']}:{service['spec']['ports'][0]['port']}"


def pods() -> list[dict]:
    try:
        return kubectl_json("get", "pods", "-l", f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/name=zego-kafka-bridge")["items"]
    except CheckFailed:
        return []


def ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def pod_url(pod: dict, port: int = 8080) -> str:
    return f"http://{pod['status']['podIP']}:{port}"


# ---- installs ---------------------------------------------------------------------------------


class Install:
    """One `helm install` of the chart with the README's release name, and its clean-up."""

    def __init__(self, kafka: Kafka, volumes: Path, mode: str, sasl: bool, extra: dict | None = None) -> None:
        self.kafka, self.volumes, self.mode, self.sasl = kafka, volumes, mode, sasl
        self.prefix = f"k8s{mode}{random.randrange(1 << 20):x}"
        self.values = {
            "image": {"repository": IMAGE_REPOSITORY, "tag": IMAGE_TAG, "pullPolicy": "Never"},
            "kafka": {"brokers": kafka.sasl if sasl else kafka.plaintext, "topicPrefix": self.prefix},
            "callbackSecrets": SECRET,
            "createTopics": {"enabled": True, "partitions": 2, "replicationFactor": 1},
            "config": {"ackMode": mode, "deadLetterRetryIntervalMs": 2000, "shutdownTimeoutMs": 5000},
            "persistence": {"size": "64Mi"},
            "preStopSleepSeconds": 2,
        }
        if sasl:
            self.values["kafka"]["librdkafka"] = {"security.protocol": "SASL_PLAINTEXT",
                                                  "sasl.mechanisms": self.kafka.scram["mechanism"]}
            self.values["kafka"]["sasl"] = {"username": kafka.scram["username"], "password": kafka.scram["password"]}
        for key, value in (extra or {}).items():
            self.values.setdefault(key, {}).update(value) if isinstance(value, dict) else self.values.__setitem__(key, value)
        self.values_file = volumes / f"values-{self.prefix}.json"
        self.notes = ""

    def volumes_for(self, count: int) -> None:
        """Statically provisioned volumes for the StatefulSet's claims: the cluster has no
        provisioner, and a claim binds any free volume of its class."""
        for index in range(count):
            path = self.volumes / f"{self.prefix}-{index}"
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o777)
            volume = {"apiVersion": "v1", "kind": "PersistentVolume",
                      "metadata": {"name": f"{self.prefix}-{index}", "labels": {"zkb-check": self.prefix}},
                      "spec": {"capacity": {"storage": "64Mi"}, "accessModes": ["ReadWriteOnce"],
                               "storageClassName": STORAGE_CLASS, "persistentVolumeReclaimPolicy": "Retain",
                               "hostPath": {"path": str(path), "type": "Directory"}}}
            kubectl("apply", "-f", "-", stdin=json.dumps(volume))

    def install(self) -> None:
        self.volumes_for(4)
        self.values_file.write_text(json.dumps(self.values))
        started = time.monotonic()
        self.notes = sh("helm", "install", RELEASE, str(CHART), "-f", str(self.values_file), "--wait",
                        "--timeout", "5m")
        log(f"helm install ({self.mode}{', SASL' if self.sasl else ''}): {time.monotonic() - started:.0f} s to "
            "every pod ready and the topics Job done")

    def upgrade(self, *sets: str) -> float:
        started = time.monotonic()
        sh("helm", "upgrade", RELEASE, str(CHART), "--reuse-values", *sum((["--set", s] for s in sets), []),
           "--wait", "--timeout", "5m")
        return time.monotonic() - started

    def uninstall(self) -> None:
        sh("helm", "uninstall", RELEASE, "--wait", "--timeout", "3m", check=False)
        kubectl("delete", "pvc", "-l", f"app.kubernetes.io/instance={RELEASE}", "--wait=true", check=False)
        kubectl("delete", "pv", "-l", f"zkb-check={self.prefix}", "--wait=true", check=False)
        until("the release's pods gone", lambda: not pods(), 120)


# ---- the checks -------------------------------------------------------------------------------


def installed_and_serving(install: Install) -> None:
    all_pods = pods()
    expect(len(all_pods) == 2 and all(ready(p) for p in all_pods), f"2 ready pods: {[p['metadata']['name'] for p in all_pods]}")
    expect(all(p["spec"].get("enableServiceLinks") is False for p in all_pods), "service links are off")
    expect(all(not c.get("restartCount") for p in all_pods for c in p["status"]["containerStatuses"]),
           "no pod restarted on the way up")
    stateful = install.mode == "spooled" or install.values.get("persistence", {}).get("enabled", True)
    kind = kubectl_json("get", "pod", all_pods[0]["metadata"]["name"])["metadata"]["ownerReferences"][0]["kind"]
    expect(kind == ("StatefulSet" if stateful else "ReplicaSet"), f"pods owned by a {kind}")
    # The topics Job made every topic the bridge publishes to.
    topics = install.kafka.topics(install.prefix)
    expect(f"{install.prefix}.room.created" in topics and len(topics) > 50,
           f"the topics Job created {len(topics)} topics under {install.prefix}")
    url = service_url()
    marks = [f"{install.prefix}-svc-{i}" for i in range(20)]
    statuses = [post_callback(url, mark) for mark in marks]
    expect(statuses == [200] * len(marks), f"callbacks through the Service: {statuses}")
    missing = missing_from_kafka(install.kafka, install.prefix, marks)
    expect(not missing, f"acknowledged through the Service, not in Kafka: {missing}")
    expect(post_callback(url, f"{install.prefix}-forged", secret="forged") == 401, "a forged callback gets 401")
    log(f"{len(all_pods)} pods ({kind}), {len(topics)} topics, {len(marks)} callbacks through the Service in Kafka")


def rolling_upgrade_under_load(install: Install) -> None:
    before = {p["metadata"]["uid"] for p in pods()}
    with Load(install, "roll") as load:
        time.sleep(2)
        took = install.upgrade(f"podAnnotations.k8s-check-roll=r{random.randrange(1 << 30)}")
        time.sleep(3)
    after = {p["metadata"]["uid"] for p in pods()}
    expect(not before & after, "every pod was replaced")
    load.accounted(install.kafka, f"rolling upgrade ({took:.0f} s) under load")


def pod_deleted_with_letters_pending(install: Install) -> None:
    victim = sorted(pods(), key=lambda p: p["metadata"]["name"])[0]
    name = victim["metadata"]["name"]
    install.kafka.node("stop")
    try:
        marks = [f"{install.prefix}-held-{i}" for i in range(10)]
        statuses = [post_callback(pod_url(victim), mark) for mark in marks]
        expect(statuses == [200] * len(marks), f"callbacks taken while Kafka is away: {statuses}")
        # Every state the pod goes through, to a file (a pipe would fill and stall the watch).
        watched = install.volumes / f"watch-{name}.json"
        watch = subprocess.Popen(["kubectl", "get", "pod", name, "--watch", "-o", "json"], stdout=watched.open("w"))
        kubectl("delete", "pod", name, "--wait=false")
        scrapes: list[str] = []

        def scrape() -> bool:
            try:
                with urllib.request.urlopen(pod_url(victim, 9090) + "/metrics", timeout=2) as response:
                    scrapes.append(response.read().decode())
            except OSError:
                return True  # the port closed
            return False

        until("the deleted pod's admin port closes", scrape, 90, every=0.2)
        until("the deleted pod gone", lambda: name not in [p["metadata"]["name"] for p in pods()]
              or pods_uid(name) != victim["metadata"]["uid"], 90)
        watch.terminate()
        watch.wait(timeout=10)
        output = watched.read_text()
        messages = [s.get("state", {}).get("terminated", {}).get("message", "")
                    for document in split_json_stream(output)
                    for s in document.get("status", {}).get("containerStatuses", [])]
        message = next((m for m in messages if m), "")
        undelivered = [line for text in scrapes for line in text.splitlines()
                       if line.startswith("zego_bridge_undelivered_at_shutdown ") and not line.endswith(" 0")]
        log(f"termination message: {message.strip()!r}; last scrapes reporting the undelivered events: {undelivered[-1:]}")
        expect(message.startswith("stopped with 10 accepted events undelivered"),
               f"the termination message names the 10 events it kept: {message!r}")
        expect(undelivered, "a scrape during shutdown saw zego_bridge_undelivered_at_shutdown above 0")
        # The successor has the volume, and the image (no shell) lists what waits on it.
        def successor_running() -> bool:
            pod = next((p for p in pods() if p["metadata"]["name"] == name), None)
            return bool(pod and pod["metadata"]["uid"] != victim["metadata"]["uid"]
                        and any(s.get("state", {}).get("running") for s in pod["status"].get("containerStatuses", [])))
        until("the successor running", successor_running, 120)
        listed = kubectl("exec", name, "--", "zego-kafka-bridge", "dead-letters")
        log(f"`kubectl exec {name} -- zego-kafka-bridge dead-letters` with Kafka still away: {listed.strip()}")
        expect("dead-letter.jsonl: 10 letters" in listed, f"the successor's volume holds the 10 letters: {listed}")
    finally:
        install.kafka.node("start")
    until("the replacement pod ready", lambda: len([p for p in pods() if ready(p)]) == 2, 180)
    missing = missing_from_kafka(install.kafka, install.prefix, marks, seconds=90)
    expect(not missing, f"dead letters of the deleted pod not sent by its replacement: {missing}")
    log("the 10 events the deleted pod held reached Kafka from its volume, sent by its replacement")


class Load:
    """Signed callbacks through the Service, one after another, until stopped: (mark, status)."""

    def __init__(self, install: "Install", tag: str) -> None:
        self.url, self.prefix, self.tag = service_url(), install.prefix, tag
        self.sent: list[tuple[str, int]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        index = 0
        while not self.stop.is_set():
            mark = f"{self.prefix}-{self.tag}-{index}"
            self.sent.append((mark, post_callback(self.url, mark)))
            index += 1
            time.sleep(0.02)

    def __enter__(self) -> "Load":
        self.thread.start()
        return self

    def __exit__(self, *_) -> None:
        self.stop.set()
        self.thread.join()

    def accounted(self, kafka: "Kafka", what: str) -> None:
        acknowledged = [mark for mark, status in self.sent if status == 200]
        refused: dict[int, int] = {}
        for _, status in self.sent:
            if status != 200:
                refused[status] = refused.get(status, 0) + 1
        missing = missing_from_kafka(kafka, self.prefix, acknowledged)
        log(f"FIGURES {what}: {len(self.sent)} callbacks, {len(acknowledged)} answered 200, not acknowledged by "
            f"status {refused or '{}'} (0: no answer), acknowledged and missing from Kafka: {len(missing)}")
        expect(not missing, f"acknowledged during {what}, not in Kafka: {missing[:10]}")
        expect(len(acknowledged) >= 0.95 * len(self.sent),
               f"only {len(acknowledged)} of {len(self.sent)} answered 200 during {what}")


def upgrade_from_a_deployment_as_the_notes_say(install: Install) -> None:
    """The chart README's upgrade notes, followed to the letter, under load: a release of the
    old default (a Deployment) becomes the StatefulSet without a gap."""
    deployment = f"deploy/{FULLNAME}"
    expect(kubectl("get", deployment, "-o", "name").strip() == f"deployment.apps/{FULLNAME}", "a Deployment first")
    with Load(install, "switch") as load:
        time.sleep(2)
        kubectl("annotate", deployment, "helm.sh/resource-policy=keep")
        took = install.upgrade("persistence.enabled=true")
        until("the StatefulSet's pods ready", lambda: len([p for p in pods() if ready(p)
                                                           and p["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"]) == 2, 180)
        listed = kubectl("exec", deployment, "--", "zego-kafka-bridge", "dead-letters")
        expect("no dead letters beside" in listed, f"the Deployment's pods hold no letters: {listed}")
        kubectl("delete", deployment, "--wait=true")
        # Its pods go after it, each through its preStop sleep and shutdown: under load,
        # more than the few seconds this once allowed.
        until("only the StatefulSet's pods left",
              lambda: {p["metadata"]["ownerReferences"][0]["kind"] for p in pods()} == {"StatefulSet"}, 120)
        time.sleep(3)
    load.accounted(install.kafka, f"the switch from a Deployment to the StatefulSet ({took:.0f} s of helm upgrade)")


def pods_uid(name: str) -> str:
    for pod in pods():
        if pod["metadata"]["name"] == name:
            return pod["metadata"]["uid"]
    return ""


def split_json_stream(text: str) -> list[dict]:
    decoder, index, documents = json.JSONDecoder(), 0, []
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index >= len(text):
            return documents
        try:
            document, index = decoder.raw_decode(text, index)
        except json.JSONDecodeError:
            return documents  # the watch was stopped mid-document
        documents.append(document)


def secret_rotated_through_the_volume(install: Install) -> None:
    before = {p["metadata"]["uid"]: p["status"]["containerStatuses"][0].get("restartCount", 0) for p in pods()}

    def set_secret(value: str) -> None:
        patch = {"data": {"callback-secrets": base64.b64encode(value.encode()).decode()}}
        kubectl("patch", "secret", FULLNAME, "--type", "merge", "-p", json.dumps(patch))

    started = time.monotonic()
    set_secret(f"{SECRET},{ROTATED_SECRET}")
    for pod in pods():
        until(f"{pod['metadata']['name']} takes the new secret",
              lambda: post_callback(pod_url(pod), f"{install.prefix}-rot-{random.random()}", ROTATED_SECRET) == 200, 120, 1)
    both = time.monotonic() - started
    set_secret(ROTATED_SECRET)
    for pod in pods():
        until(f"{pod['metadata']['name']} refuses the old secret",
              lambda: post_callback(pod_url(pod), f"{install.prefix}-old-{random.random()}", SECRET) == 401, 120, 1)
    after = {p["metadata"]["uid"]: p["status"]["containerStatuses"][0].get("restartCount", 0) for p in pods()}
    expect(after == before, f"no pod restarted or replaced: {before} -> {after}")
    log(f"FIGURES secret rotation through the Secret volume: the new secret taken by every pod {both:.0f} s after the "
        f"Secret changed, the old one refused {time.monotonic() - started - both:.0f} s after it was removed, no restart")


def default_storage_class() -> None:
    """The cluster's default StorageClass, as most clusters have one: the chart's claims name
    none. Volumes are provisioned statically (Install.volumes_for)."""
    storage_class = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                     "metadata": {"name": STORAGE_CLASS,
                                  "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                     "provisioner": "kubernetes.io/no-provisioner", "volumeBindingMode": "Immediate"}
    kubectl("apply", "-f", "-", stdin=json.dumps(storage_class))


def kustomize_overlay_of_the_readme(work: Path) -> None:
    """deploy/kubernetes/README.md's example overlay, rendered: its image and brokers must land."""
    readme = (ROOT / "deploy" / "kubernetes" / "README.md").read_text()
    block = readme.split("# my-overlay/kustomization.yaml\n", 1)[1].split("```", 1)[0]
    overlay = work / "deploy-overlay" / "my-overlay"
    overlay.mkdir(parents=True, exist_ok=True)
    (overlay / "kustomization.yaml").write_text(block)
    link = overlay.parent / "deploy"
    if not link.exists():
        link.symlink_to(ROOT / "deploy")
    rendered = kubectl("kustomize", str(overlay))
    expect("image: registry.example.com/zego-kafka-bridge:0.1.0" in rendered,
           "the overlay's image override reached the workload")
    expect("b-1.kafka.example.com:9092,b-2.kafka.example.com:9092" in rendered,
           "the overlay's brokers reached the workload")
    expect("ghcr.io/zego-kafka-bridge" not in rendered, "no workload keeps the default image")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kafka-summary", required=True, help="scripts/kafka start --json's output")
    parser.add_argument("--kafka-dir", required=True)
    parser.add_argument("--volumes", required=True, help="a directory for the volumes' host paths")
    args = parser.parse_args()
    kafka = Kafka(json.loads(args.kafka_summary), args.kafka_dir)
    volumes = Path(args.volumes)
    volumes.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    check("the README's kustomize overlay changes the image and the brokers",
          lambda: kustomize_overlay_of_the_readme(volumes))
    default_storage_class()
    switch = Install(kafka, volumes, "queued", False, {"persistence": {"enabled": False}})
    try:
        check("helm install with persistence.enabled=false (the old default): a Deployment",
              lambda: (switch.install(), installed_and_serving(switch)))
        if not failures:
            check("the upgrade notes' switch from that Deployment to the StatefulSet, under load",
                  lambda: upgrade_from_a_deployment_as_the_notes_say(switch))
    finally:
        switch.uninstall()
    for mode, sasl in [("queued", False), ("delivered", True), ("spooled", True)]:
        install = Install(kafka, volumes, mode, sasl)
        try:
            check(f"helm install {RELEASE} ({mode}{', SASL/SCRAM' if sasl else ''}): topics Job, readiness, "
                  "callbacks through the Service", lambda: (install.install(), installed_and_serving(install)))
            if mode == "queued" and not failures:
                check("a rolling upgrade under load: every 200 in Kafka", lambda: rolling_upgrade_under_load(install))
                check("a pod deleted while it holds events Kafka could not take",
                      lambda: pod_deleted_with_letters_pending(install))
                check("the callback secret rotated through the Secret volume",
                      lambda: secret_rotated_through_the_volume(install))
        finally:
            install.uninstall()
    log(f"{'FAILED: ' + ', '.join(failures) if failures else 'all checks passed'} in {time.monotonic() - started:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
