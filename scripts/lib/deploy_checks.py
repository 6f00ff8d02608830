#!/usr/bin/env python3
"""Checks of the deployment files; run by scripts/check-deploy, which installs the tools.

Each check either passes or says what is wrong; every one must pass. Without --binary only the
static checks run (no bridge is started).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Callable

import helm_python as helm
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "zego-kafka-bridge"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERT_TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "zego-kafka-bridge.json"
KUSTOMIZE = ROOT / "deploy" / "kubernetes"
# The oldest Kubernetes the chart claims (Chart.yaml's kubeVersion: the preStop sleep action
# needs 1.30) and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ["1.30.0", "1.37.0"]
RENDER_CASES = ["default", "all-on", "spooled", "ephemeral"]
WORK = Path(tempfile.mkdtemp(prefix="zkb-deploy-checks-"))

# chroot lives in /usr/sbin, which is not on every PATH.
CHROOT = shutil.which("chroot", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") or "chroot"

failures: list[str] = []


class CheckFailed(Exception):
    pass


def check(name: str, body: Callable[[], None]) -> None:
    started = time.monotonic()
    try:
        body()
    except CheckFailed as err:
        failures.append(name)
        print(f"FAILED  {name}: {err}", flush=True)
        return
    except (OSError, subprocess.SubprocessError, helm.HelmError, KeyError, ValueError) as err:
        # E.g. chroot and mknod need root: say which check could not run, and why.
        failures.append(name)
        print(f"FAILED  {name}: {type(err).__name__}: {err}", flush=True)
        return
    print(f"ok      {name} ({time.monotonic() - started:.1f}s)", flush=True)


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def run(*command: str, stdin: str | None = None, cwd: Path | None = None) -> str:
    result = subprocess.run(command, input=stdin, capture_output=True, text=True, cwd=cwd)
    if result.returncode != 0:
        raise CheckFailed(f"`{' '.join(command)}` exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result.stdout


# --- Dockerfile and compose -------------------------------------------------------------------

def dockerfile() -> None:
    run("hadolint", "--failure-threshold", "style", str(ROOT / "deploy" / "Dockerfile"))
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)", text, re.M)
    expect(len(stages) >= 2, "a multi-stage build")
    expect(stages[-1].startswith("gcr.io/distroless/static"), f"runtime base is {stages[-1]}")
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    expect(users and re.fullmatch(r"[1-9][0-9]*:[1-9][0-9]*", users[-1]) is not None,
           "the last USER is a numeric non-root uid:gid (runAsNonRoot can check it)")
    expect("cargo chef cook" in text, "dependencies are built in their own cached layer")


def compose() -> None:
    rendered = run("docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config", "--format", "json")
    services = json.loads(rendered)["services"]
    expect(set(services) == {"kafka", "topics", "bridge", "prometheus", "grafana"}, f"services: {sorted(services)}")
    kafka = services["kafka"]
    expect(kafka["image"].startswith("apache/kafka:"), "Kafka is the official apache/kafka image")
    expect("controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"], "Kafka runs in KRaft mode")
    expect(services["topics"]["command"][:2] == ["topics", "--create"], "the topics job runs `topics --create`")
    expect(services["bridge"]["depends_on"]["topics"]["condition"] == "service_completed_successfully",
           "the bridge starts after the topics exist")
    expect(services["bridge"]["environment"]["ZEGO_BRIDGE_KAFKA_BROKERS"] == "kafka:9092", "the bridge uses the compose Kafka")
    tested = re.search(r'^KAFKA_VERSION = "([^"]+)"', (ROOT / "scripts" / "kafka").read_text(), re.M).group(1)
    expect(services["kafka"]["image"] == f"apache/kafka:{tested}",
           f"compose runs the Apache Kafka the tests run ({tested}): {services['kafka']['image']}")
    mounts = {m["target"]: m["source"] for m in services["prometheus"]["volumes"]}
    expect(Path(mounts["/etc/prometheus/alerts.yml"]) == ALERTS, "Prometheus loads deploy/prometheus/alerts.yml")
    config = yaml.safe_load(Path(mounts["/etc/prometheus/prometheus.yml"]).read_text())
    targets = [t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    expect(targets == ["bridge:9090"], f"Prometheus scrapes the admin port: {targets}")
    # promtool checks the configuration with the rule file where Prometheus would find it.
    local = dict(config, rule_files=[str(ALERTS)])
    path = WORK / "prometheus.yml"
    path.write_text(yaml.safe_dump(local))
    run("promtool", "check", "config", str(path))
    grafana = {m["target"]: m["source"] for m in services["grafana"]["volumes"]}
    expect(Path(grafana["/var/lib/grafana/dashboards"]) == DASHBOARD.parent, "Grafana gets the dashboard")
    provider = yaml.safe_load((Path(grafana["/etc/grafana/provisioning"]) / "dashboards" / "zego-kafka-bridge.yml").read_text())
    expect(provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards", "the provider reads that folder")


# --- Helm chart -------------------------------------------------------------------------------

def values_of(case: str) -> dict:
    return yaml.safe_load((CHART / "ci" / f"{case}-values.yaml").read_text()) or {}


def render(values: dict, name: str = "zkb") -> dict[str, list[dict]]:
    """Template name -> the documents it rendered."""
    chart = helm.Chart.load(str(CHART))
    manifests = chart.render(values, name=name, namespace="zego", is_install=True)
    rendered: dict[str, list[dict]] = {}
    for template, text in manifests.items():
        if template.endswith(".yaml"):
            documents = [doc for doc in yaml.safe_load_all(text) if doc]
            if documents:
                rendered[Path(template).name] = documents
    return rendered


def env_value(workload: dict, name: str) -> str:
    return next((entry.get("value") or "") for entry in container(workload)["env"] if entry["name"] == name)


def documents(rendered: dict[str, list[dict]]) -> list[dict]:
    return [doc for docs in rendered.values() for doc in docs]


def by_kind(rendered: dict[str, list[dict]], kind: str) -> list[dict]:
    return [doc for doc in documents(rendered) if doc["kind"] == kind]


def chart_lint() -> None:
    for case in RENDER_CASES:
        for version in KUBERNETES_VERSIONS:
            report = helm.lint(str(CHART), values_of(case), strict=True, kube_version=f"v{version}")
            problems = [m for m in report.get("messages") or [] if m.get("severity", 0) >= 2]
            expect(not report.get("errors") and not problems, f"{case} on {version}: {report}")
    claimed = yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"]
    expect(claimed == f">={KUBERNETES_VERSIONS[0]}-0", f"Chart.yaml claims {claimed}, the checks start at {KUBERNETES_VERSIONS[0]}")


def kubernetes_validate(files: list[Path]) -> None:
    for version in KUBERNETES_VERSIONS:
        output = run("kubernetes-validate", "-k", version, "--strict", *map(str, files))
        custom = {"ServiceMonitor", "PrometheusRule"}
        for line in output.splitlines():
            if line.startswith("WARN") and not any(kind in line for kind in custom):
                raise CheckFailed(f"Kubernetes {version}: {line}")


def write_documents(directory: Path, rendered: dict[str, list[dict]]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for template, docs in rendered.items():
        path = directory / template
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        files.append(path)
    return files


def container(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]["containers"][0]


def env_names(workload: dict) -> set[str]:
    return {entry["name"] for entry in container(workload)["env"]}


def documented_settings() -> set[str]:
    """Every fixed ZEGO_BRIDGE_* variable of docs/configuration.md, generated from the settings table."""
    text = (ROOT / "docs" / "configuration.md").read_text()
    tables = text.split("<!-- BEGIN GENERATED SETTINGS", 1)[1].split("<!-- END GENERATED SETTINGS", 1)[0]
    return {name for name in re.findall(r"^\| `(ZEGO_BRIDGE_[A-Z_]+)`", tables, re.M)}


def chart_render_and_validate() -> None:
    renders = {case: render(values_of(case)) for case in RENDER_CASES}
    for case, rendered in renders.items():
        kubernetes_validate(write_documents(WORK / "render" / case, rendered))

    default, all_on, spooled = renders["default"], renders["all-on"], renders["spooled"]
    # The default install keeps dead letters where they survive the pod.
    kept = by_kind(default, "StatefulSet")
    expect(kept and not by_kind(default, "Deployment")
           and kept[0]["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
           and env_value(kept[0], "ZEGO_BRIDGE_DEAD_LETTER_PATH").startswith("/data/")
           and env_value(kept[0], "ZEGO_BRIDGE_ACK_MODE") == "queued",
           "the default (queued, persistence.enabled): dead letters on a volume of each pod's own")
    expect(by_kind(spooled, "StatefulSet") and not by_kind(spooled, "Deployment"), "spooled mode: a StatefulSet")
    claims = by_kind(spooled, "StatefulSet")[0]["spec"]["volumeClaimTemplates"]
    expect(claims[0]["metadata"]["name"] == "data", "the spool's volume claim")
    for kind in ["HorizontalPodAutoscaler", "PodDisruptionBudget", "ServiceMonitor", "PrometheusRule",
                 "Ingress", "NetworkPolicy", "Job", "Secret", "ServiceAccount"]:
        expect(by_kind(all_on, kind), f"all options on renders a {kind}")
    expect(not by_kind(spooled, "Secret"), "existingSecret: the chart makes no Secret")
    spooled_volume = next(v for v in by_kind(spooled, "StatefulSet")[0]["spec"]["template"]["spec"]["volumes"]
                          if v["name"] == "callback-secrets")
    expect({"key": "zego-callback-secrets", "path": "callback-secrets"} in spooled_volume["secret"]["items"],
           f"existingSecretKeys name the keys of existingSecret: {spooled_volume}")
    claimed = by_kind(render(merge(values_of("default"), {"replicaCount": 1, "persistence": {"existingClaim": "mine"}})),
                      "StatefulSet")[0]["spec"]
    expect("volumeClaimTemplates" not in claimed
           and {"name": "data", "persistentVolumeClaim": {"claimName": "mine"}} in claimed["template"]["spec"]["volumes"],
           "persistence.existingClaim: the pod's volume, no claim template")
    ephemeral = renders["ephemeral"]
    expect(by_kind(ephemeral, "Deployment") and not by_kind(ephemeral, "StatefulSet"),
           "persistence.enabled false: a Deployment")

    def workers(values: dict) -> str | None:
        workload = by_kind(render(merge(values_of("default"), values)), "StatefulSet")[0]
        return next((e.get("value") for e in container(workload)["env"] if e["name"] == "ZEGO_BRIDGE_HTTP_WORKERS"), None)
    for cpu, expected in [("250m", "1"), ("1000m", "1"), ("1500m", "2"), ("2", "2"), (3, "3"), ("0.5", "1"), ("2.5", "3")]:
        got = workers({"resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}})
        expect(got == expected, f"HTTP workers for a CPU request of {cpu!r}: {got}, expected {expected}")
    got = workers({"config": {"httpWorkers": 6}, "resources": {"requests": {"cpu": "250m"}}})
    expect(got == "6", f"config.httpWorkers overrides the CPU request: {got}")
    got = workers({"resources": {"requests": {"cpu": None, "memory": "64Mi"}}})
    expect(got is None, f"without a CPU request the bridge's own default: {got}")

    settings = documented_settings()
    expect(len(settings) > 20, f"documented settings: {settings}")
    covered = set()
    for case, rendered in renders.items():
        for workload in by_kind(rendered, "Deployment") + by_kind(rendered, "StatefulSet"):
            names = env_names(workload)
            covered |= names
            pod = workload["spec"]["template"]["spec"]
            expect(pod.get("enableServiceLinks") is False,
                   f"{case}: no service links (a release named zego-bridge made ZEGO_BRIDGE_* variables)")
            main = container(workload)
            security = main["securityContext"]
            expect(security["readOnlyRootFilesystem"] and security["runAsNonRoot"]
                   and security["capabilities"]["drop"] == ["ALL"]
                   and security["seccompProfile"]["type"] == "RuntimeDefault"
                   and not security["allowPrivilegeEscalation"], f"{case}: container securityContext")
            for probe in ["startupProbe", "livenessProbe", "readinessProbe"]:
                expect(main[probe]["httpGet"]["port"] == "admin", f"{case}: {probe} on the admin port")
            expect(main["readinessProbe"]["httpGet"]["path"] == "/readyz", f"{case}: readiness is /readyz")
            env = {e["name"]: e.get("value") for e in main["env"]}
            flush = int(env["ZEGO_BRIDGE_SHUTDOWN_TIMEOUT_MS"]) / 1000
            report = int(env["ZEGO_BRIDGE_SHUTDOWN_REPORT_WAIT_MS"]) / 1000
            pre_stop = main["lifecycle"]["preStop"]["sleep"]["seconds"]
            expect(pod["terminationGracePeriodSeconds"] > pre_stop + flush + report,
                   f"{case}: grace period {pod['terminationGracePeriodSeconds']}s > preStop {pre_stop}s + flush {flush}s"
                   f" + the wait for a last scrape {report}s")
            expect(pod["topologySpreadConstraints"], f"{case}: topology spread")
            expect(main["resources"]["requests"] and main["resources"]["limits"], f"{case}: resources")
            secrets_file = env.get("ZEGO_BRIDGE_CALLBACK_SECRETS_FILE") or ""
            mount = next((m for m in main["volumeMounts"] if secrets_file.startswith(m["mountPath"] + "/")), None)
            volume = mount and next(v for v in pod["volumes"] if v["name"] == mount["name"])
            expect("ZEGO_BRIDGE_CALLBACK_SECRETS" not in names and mount and "subPath" not in mount
                   and volume.get("secret", {}).get("secretName"),
                   f"{case}: the callback secrets come from a Secret volume (no subPath, so rotations arrive)")
    # The chart gives the callback secrets as a file (ZEGO_BRIDGE_CALLBACK_SECRETS_FILE), so that a
    # rotation needs no restart.
    missing = settings - covered - {"ZEGO_BRIDGE_CALLBACK_SECRETS"}
    expect(not missing, f"settings the chart never sets: {sorted(missing)}")

    # The extension points of all-on-values.yaml reach what they extend.
    for doc in documents({template: docs for template, docs in all_on.items()
                          if not template.endswith("extra-objects.yaml")}):  # extraObjects are the user's
        meta = doc["metadata"]
        expect(meta.get("labels", {}).get("cost-center") == "cc-42"
               and meta.get("annotations", {}).get("example.com/contact") == "platform@example.com",
               f"commonLabels and commonAnnotations on {doc['kind']} {meta['name']}")
    pod = by_kind(all_on, "Deployment")[0]["spec"]["template"]["spec"]
    main = container(by_kind(all_on, "Deployment")[0])
    expect([c["name"] for c in pod["initContainers"]] == ["wait"], "initContainers")
    expect([c["name"] for c in pod["containers"]] == ["bridge", "log-shipper"], "extraContainers beside the bridge")
    expect(any(v["name"] == "kafka-keystore" for v in pod["volumes"])
           and any(m["name"] == "kafka-keystore" for m in main["volumeMounts"]), "extraVolumes and extraVolumeMounts")
    expect(main["envFrom"] == [{"configMapRef": {"name": "zego-bridge-extra"}}], "envFrom")
    expect(main["readinessProbe"]["timeoutSeconds"] == 2 and main["readinessProbe"]["initialDelaySeconds"] == 2,
           "probe timings")
    expect(by_kind(all_on, "Deployment")[0]["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 1, "maxSurge": 0},
           "updateStrategy")
    # Vector's and Bitnami's extension points.
    workload = by_kind(all_on, "Deployment")[0]
    expect(main["image"] == "mirror.example.com/platform/zego-kafka-bridge@sha256:" + "0123456789abcdef" * 4,
           f"global.imageRegistry and image.digest: {main['image']}")
    expect(main["command"] == ["/usr/local/bin/zego-kafka-bridge"] and main["args"] == ["serve"], "command and args")
    expect(main["livenessProbe"] == {"httpGet": {"path": "/healthz", "port": "admin"}, "periodSeconds": 20,
                                     "failureThreshold": 6}, "customProbes replace a probe whole")
    expect(main["readinessProbe"]["httpGet"]["path"] == "/readyz", "the other probes stay the chart's")
    expect(main["lifecycle"] == {"preStop": {"sleep": {"seconds": 8}}}, "lifecycle")
    long_sleep = render(merge(values_of("default"), {"lifecycle": {"preStop": {"sleep": {"seconds": 60}}}}))
    grace = by_kind(long_sleep, "StatefulSet")[0]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    expect(grace >= 60 + 20 + 35 + 5, f"a lifecycle's preStop sleep counts in the derived grace period: {grace}")
    expect(workload["spec"]["minReadySeconds"] == 5, "minReadySeconds")
    spread = pod["topologySpreadConstraints"]
    expect(len(spread) == 1 and spread[0]["whenUnsatisfiable"] == "DoNotSchedule"
           and spread[0]["labelSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "zkb",
           f"topologySpreadConstraints as given, templated: {spread}")
    hpa_spec = by_kind(all_on, "HorizontalPodAutoscaler")[0]["spec"]
    expect([m.get("resource", {}).get("name", m["type"]) for m in hpa_spec["metrics"]] == ["cpu", "memory", "Pods"]
           and hpa_spec["behavior"] == {"scaleUp": {"stabilizationWindowSeconds": 0}},
           f"HPA on CPU, memory and a custom metric, with its behavior: {hpa_spec}")
    pdb_spec = by_kind(all_on, "PodDisruptionBudget")[0]["spec"]
    expect(pdb_spec.get("minAvailable") == 2 and "maxUnavailable" not in pdb_spec, f"PDB minAvailable: {pdb_spec}")
    public = next(s for s in by_kind(all_on, "Service") if s["metadata"]["name"] == "zkb-zego-kafka-bridge")
    expect(public["spec"].get("internalTrafficPolicy") == "Local", "Service traffic policy")
    expect(any(d["kind"] == "ConfigMap" and d["metadata"]["name"] == "zkb-extra" for d in documents(all_on)),
           "extraObjects: a string is rendered as a template")
    expect(any(d["kind"] == "ConfigMap" and d["metadata"]["name"] == "as-given"
               and d["data"]["template"] == "{{ .appid }}={{ .secret }}" for d in documents(all_on)),
           "extraObjects: a map is installed as given")
    rules = {rule["alert"]: rule for rule in by_kind(all_on, "PrometheusRule")[0]["spec"]["groups"][0]["rules"]}
    shipped = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    expect("ZegoBridgeCallbacksStopped" not in rules and len(rules) == len(shipped) - 1,
           "prometheusRule.disabledAlerts leaves that alert out, and only it")
    expect(all(rule["labels"]["team"] == "platform" for rule in rules.values())
           and rules["ZegoBridgeDeliveryFailures"]["labels"]["severity"] == "critical"
           and rules["ZegoBridgeEventsLost"]["labels"]["severity"] == "critical"
           and rules["ZegoBridgeKafkaUnreachable"]["labels"]["severity"] == "warning",
           "prometheusRule.ruleLabels on every alert, severities by name")
    expect(all(rule["expr"] == next(r for r in shipped if r.get("alert") == name)["expr"]
               for name, rule in rules.items()), "the expressions are the shipped ones")
    queue = next(r for r in shipped if r.get("alert") == "ZegoBridgeQueueNearlyFull")
    expect(rules["ZegoBridgeQueueNearlyFull"]["for"] == "10m" != queue.get("for"),
           "prometheusRule.overrides replaces an alert's for")
    endpoint = by_kind(all_on, "ServiceMonitor")[0]["spec"]["endpoints"][0]
    expect(endpoint["scrapeTimeout"] == "5s" and endpoint["relabelings"] and endpoint["metricRelabelings"],
           "ServiceMonitor relabelings and timeout")
    quiet = render(dict(values_of("default"), preStopSleepSeconds=0))
    expect("lifecycle" not in container(by_kind(quiet, "StatefulSet")[0]),
           "preStopSleepSeconds 0 leaves the hook out (a zero sleep needs Kubernetes 1.33)")

    # The schema registry: the chart's Secret's password as a file, existingSecret's through the
    # environment, the CA from its Secret.
    env = {e["name"]: e for e in main["env"]}
    password_file = env["ZEGO_BRIDGE_SCHEMA_REGISTRY_PASSWORD_FILE"]["value"]
    secret_volume = next(v for v in pod["volumes"] if v["name"] == "callback-secrets")
    expect(password_file.endswith("/schema-registry-password")
           and {"key": "schema-registry-password", "path": "schema-registry-password"} in secret_volume["secret"]["items"]
           and by_kind(all_on, "Secret")[0]["stringData"]["schema-registry-password"] == "r3gistry",
           "the registry's password: in the chart's Secret, mounted as a file")
    ca_file = env["ZEGO_BRIDGE_SCHEMA_REGISTRY_CA_FILE"]["value"]
    ca_mount = next(m for m in main["volumeMounts"] if m["name"] == "registry-ca")
    expect(ca_file.startswith(ca_mount["mountPath"] + "/")
           and any(v.get("secret", {}).get("secretName") == "registry-ca" for v in pod["volumes"]),
           "the registry's CA from its Secret")
    spooled_env = {e["name"]: e for e in container(by_kind(spooled, "StatefulSet")[0])["env"]}
    expect(spooled_env["ZEGO_BRIDGE_SCHEMA_REGISTRY_PASSWORD"]["valueFrom"]["secretKeyRef"]
           == {"name": "zego-bridge-secrets", "key": "schema-registry-password"},
           "with existingSecret, the registry's password from its key")
    expect(not any(e["name"].startswith("ZEGO_BRIDGE_SCHEMA_REGISTRY_") for e in container(by_kind(default, "StatefulSet")[0])["env"]),
           "no registry by default")

    # Without ruleLabels, severities or disabledAlerts, exactly the shipped rules.
    plain = render(merge(values_of("spooled"), {"prometheusRule": {"enabled": True}}))
    rule = by_kind(plain, "PrometheusRule")[0]
    expect(rule["spec"] == yaml.safe_load(ALERTS.read_text()), "the PrometheusRule carries deploy/prometheus/alerts.yml")
    monitor = by_kind(all_on, "ServiceMonitor")[0]
    admin = [s for s in by_kind(all_on, "Service") if s["metadata"]["name"].endswith("-admin")][0]
    expect(admin["spec"].get("publishNotReadyAddresses") is True, "unready pods are still scraped")
    expect(all(label in admin["metadata"]["labels"] and admin["metadata"]["labels"][label] == value
               for label, value in monitor["spec"]["selector"]["matchLabels"].items()),
           "the ServiceMonitor selects the admin Service")
    expect(monitor["spec"]["endpoints"][0]["port"] in [p["name"] for p in admin["spec"]["ports"]],
           "the ServiceMonitor scrapes a port of the admin Service")
    ingress = by_kind(all_on, "Ingress")[0]
    paths = [(p["path"], p["pathType"]) for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    expect(paths == [("/v1/callbacks", "Prefix")],
           f"the Ingress exposes the callback paths only (RTC's and each product's below it): {paths}")
    job = by_kind(all_on, "Job")[0]
    expect(container(job)["args"][:2] == ["topics", "--create"], "the topics Job")
    # The Job creates the topics of the products the bridge takes: both read the same setting.
    for workload in (job, by_kind(all_on, "Deployment")[0]):
        products = [e.get("value") for e in container(workload)["env"] if e["name"] == "ZEGO_BRIDGE_PRODUCTS"]
        expect(products == ["all"], f"{workload['kind']}: ZEGO_BRIDGE_PRODUCTS {products}")
    job_labels = job["spec"]["template"]["metadata"]["labels"]
    for service in by_kind(all_on, "Service"):
        selector = service["spec"]["selector"]
        expect(not all(job_labels.get(key) == value for key, value in selector.items()),
               f"the Service {service['metadata']['name']} would route callbacks to the topics Job's pod")
    # NOTES give each product served its own callback path (a ZIM-only install at /v1/callbacks
    # would get 404 for every callback).
    def notes(values: dict) -> str:
        out = helm.Chart.load(str(CHART)).render(values, name="zego-bridge", namespace="zego", is_install=True)
        return next(text for template, text in out.items() if template.endswith("NOTES.txt"))
    base = {"kafka": {"brokers": "kafka:9092"}, "callbackSecrets": "secret"}
    urls = re.findall(r"^\s+(\w+): \S.*?(/v1/callbacks\S*)$", notes({**base, "config": {"products": "zim"}}), re.M)
    expect(urls == [("zim", "/v1/callbacks/zim")], f"NOTES of a ZIM-only install: {urls}")
    urls = dict(re.findall(r"^\s+(\w+): \S.*?(/v1/callbacks\S*)$", notes(base), re.M))
    expect(urls.get("rtc") == "/v1/callbacks" and urls.get("ai_agent") == "/v1/callbacks/ai-agent"
           and len(urls) == 8, f"NOTES of an install of every product: {urls}")
    # The Job runs as the bridge does: SASL from the chart's Secret (the password as a file it
    # can read), and the pod settings the bridge's pods take.
    job_values = {
        "callbackSecrets": "secret",
        "createTopics": {"enabled": True},
        "kafka": {"brokers": "kafka:9092", "sasl": {"username": "bridge", "password": "s3cret"}},
        "extraEnv": [{"name": "ZEGO_BRIDGE_LIBRDKAFKA_CLIENT_ID", "value": "zkb"}],
        "envFrom": [{"configMapRef": {"name": "kafka-settings"}}],
        "extraVolumes": [{"name": "extra", "emptyDir": {}}],
        "extraVolumeMounts": [{"name": "extra", "mountPath": "/extra"}],
        "podAnnotations": {"team": "platform"},
        "nodeSelector": {"pool": "kafka-clients"},
        "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
    }
    job = by_kind(render(job_values), "Job")[0]
    job_pod, job_main = job["spec"]["template"]["spec"], container(job)
    job_env = {e["name"]: e for e in job_main["env"]}
    password_file = job_env["ZEGO_BRIDGE_KAFKA_SASL_PASSWORD_FILE"]["value"]
    mount = next((m for m in job_main.get("volumeMounts", [])
                  if password_file.startswith(m["mountPath"].rstrip("/") + "/")), None)
    volume = next((v for v in job_pod.get("volumes", []) if mount and v["name"] == mount["name"]), {})
    expect(any(item["key"] == "sasl-password" and password_file.endswith("/" + item["path"])
               for item in volume.get("secret", {}).get("items", [])),
           f"the topics Job can read {password_file}: {job_pod.get('volumes')}")
    expect("ZEGO_BRIDGE_LIBRDKAFKA_CLIENT_ID" in job_env and job_main.get("envFrom") == job_values["envFrom"],
           "the topics Job takes extraEnv and envFrom")
    expect(any(m["name"] == "extra" for m in job_main["volumeMounts"])
           and any(v["name"] == "extra" for v in job_pod["volumes"]), "the topics Job takes extraVolumes")
    expect(job["spec"]["template"]["metadata"].get("annotations", {}).get("team") == "platform"
           and job_pod.get("nodeSelector") == job_values["nodeSelector"]
           and job_pod.get("tolerations") == job_values["tolerations"],
           "the topics Job takes podAnnotations, nodeSelector and tolerations")
    hpa = by_kind(all_on, "HorizontalPodAutoscaler")[0]
    expect("replicas" not in by_kind(all_on, "Deployment")[0]["spec"], "with an HPA the Deployment leaves replicas alone")
    expect(hpa["spec"]["scaleTargetRef"]["name"] == by_kind(all_on, "Deployment")[0]["metadata"]["name"], "HPA target")


BAD_VALUES = [
    ({"config": {"ackMode": "sometimes"}}, "ackMode"),
    ({"replicaCount": 0}, "replicaCount"),
    ({"replicas": 3}, "replicas"),
    ({"persistence": {"existingClaim": "mine"}}, "needs replicaCount=1"),
    ({"persistence": {"enabled": False, "existingClaim": "mine"}}, "needs persistence.enabled=true"),
    ({"service": {"externalTrafficPolicy": "Local"}}, "is for a NodePort or LoadBalancer"),
    ({"persistence": {"enabled": False}, "autoscaling": {"enabled": True, "targetCPUUtilizationPercentage": 0}},
     "autoscaling.enabled with no metric"),
    ({"prometheusRule": {"enabled": True, "severities": {"ZegoBridgeNoSuchAlert": "critical"}}},
     "ZegoBridgeNoSuchAlert"),
    ({"prometheusRule": {"enabled": True, "disabledAlerts": ["ZegoBridgeTypo"]}}, "ZegoBridgeTypo"),
    ({"kafka": {"topics": {"room.closd": "x"}}}, "/kafka/topics"),
    ({"kafka": {"topics": {"room.closd": "x"}}}, "room.closd"),
    ({"fullnameOverride": "a-release-name-long-enough-to-break-the-statefulset-x"}, "at most 52 characters"),
    ({"kafka": {"brokers": "kafka without port"}}, "brokers"),
    ({"config": {"maxBodyBytes": 100}}, "maxBodyBytes"),
    ({"config": {"logFormat": "xml"}}, "logFormat"),
    ({"config": {"products": "rtc,chat"}}, "products"),
    ({"kafka": {"brokers": ""}}, "kafka.brokers is required"),
    ({"callbackSecrets": ""}, "callbackSecrets is required"),
    ({"config": {"ackMode": "spooled"}, "autoscaling": {"enabled": True}}, "autoscaling.enabled cannot be used"),
    ({"persistence": {"enabled": True}, "autoscaling": {"enabled": True}}, "autoscaling.enabled cannot be used"),
    ({"terminationGracePeriodSeconds": 10}, "shorter than preStopSleepSeconds"),
    ({"kafka": {"librdkafka": {"sasl.password": "x"}}}, "kafka.librdkafka.sasl.password"),
    ({"schemaRegistry": {"url": "schema-registry:8081"}}, "url"),
]


def merge(base: dict, overlay: dict) -> dict:
    merged = dict(base)
    for key, value in overlay.items():
        merged[key] = merge(base.get(key, {}), value) if isinstance(value, dict) and value else value
    return merged


def chart_refuses_wrong_values() -> None:
    base = values_of("default")
    for overlay, mention in BAD_VALUES:
        try:
            render(merge(base, overlay))
        except helm.HelmError as err:
            expect(mention in str(err), f"{overlay}: refused, but the message does not name {mention!r}: {err}")
            continue
        raise CheckFailed(f"{overlay} was accepted")


def value_paths(values: dict, prefix: str = "") -> list[str]:
    paths = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and key not in ("resources", "podSecurityContext", "securityContext"):
            paths += value_paths(value, path + ".")
        else:
            paths.append(path)
    return paths


def chart_readme_lists_every_value() -> None:
    readme = (CHART / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Za-z0-9_.]+)` \|", readme, re.M))
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    missing = [path for path in value_paths(defaults) if path not in documented]
    expect(not missing, f"values missing from the chart README: {missing}")
    schema = json.loads((CHART / "values.schema.json").read_text())
    expect(schema.get("additionalProperties") is False, "the schema refuses unknown top-level keys")
    unknown = [path for path in documented if path.split(".")[0] not in defaults]
    expect(not unknown, f"the README lists values the chart does not have: {unknown}")


# --- Plain manifests (kustomize) --------------------------------------------------------------

GENERATED_NOTE = "# Generated from helm/zego-kafka-bridge by `scripts/check-deploy --update`; edit the chart.\n"


def kustomize_manifests() -> dict[str, str]:
    values = yaml.safe_load((KUSTOMIZE / "chart-values.yaml").read_text())
    rendered = render(values, name="zego-kafka-bridge")
    files = {}
    for template, docs in rendered.items():
        for doc in docs:
            labels = doc["metadata"].get("labels", {})
            labels.pop("helm.sh/chart", None)
            labels["app.kubernetes.io/managed-by"] = "kustomize"
            template_labels = doc.get("spec", {}).get("template", {}).get("metadata", {}).get("labels")
            if template_labels:
                template_labels.pop("helm.sh/chart", None)
                template_labels["app.kubernetes.io/managed-by"] = "kustomize"
            doc["metadata"].pop("namespace", None)
        files[template] = GENERATED_NOTE + yaml.safe_dump_all(docs, sort_keys=False)
    return files


def kustomize_in_step() -> None:
    expected = kustomize_manifests()
    kustomization = yaml.safe_load((KUSTOMIZE / "kustomization.yaml").read_text())
    expect(sorted(kustomization["resources"]) == sorted(expected),
           f"kustomization.yaml lists {sorted(kustomization['resources'])}, the chart renders {sorted(expected)}")
    for name, text in expected.items():
        path = KUSTOMIZE / name
        expect(path.exists() and path.read_text() == text,
               f"deploy/kubernetes/{name} is not what the chart renders: run scripts/check-deploy --update")
    kubernetes_validate([KUSTOMIZE / name for name in expected])


def update_kustomize() -> None:
    for path in KUSTOMIZE.glob("*.yaml"):
        if path.read_text().startswith(GENERATED_NOTE):
            path.unlink()
    for name, text in kustomize_manifests().items():
        (KUSTOMIZE / name).write_text(text)
        print(f"wrote deploy/kubernetes/{name}")


# --- Alerts -----------------------------------------------------------------------------------

def alerts() -> None:
    run("promtool", "check", "rules", str(ALERTS))
    run("promtool", "test", "rules", str(ALERT_TESTS))
    expect((CHART / "files" / "alerts.yml").read_text() == ALERTS.read_text(),
           "helm/zego-kafka-bridge/files/alerts.yml differs from deploy/prometheus/alerts.yml: copy it")
    names = {rule["alert"] for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]}
    tested = ALERT_TESTS.read_text()
    untested = [name for name in names if f"alertname: {name}" not in tested]
    expect(not untested, f"alerts without a promtool test: {untested}")
    # Every alert links its runbook, a section of docs/runbooks.md, and is scoped by namespace
    # and job (several bridges in one cluster alert apart).
    runbooks = (ROOT / "docs" / "runbooks.md").read_text()
    sections = {heading.lower() for heading in re.findall(r"^## (\S+)$", runbooks, re.M)}
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            url = rule["annotations"].get("runbook_url", "")
            expect(url.startswith(f"{REPOSITORY}/blob/main/docs/runbooks.md#")
                   and url.rsplit("#", 1)[1] == rule["alert"].lower() in sections,
                   f"{rule['alert']}: runbook_url {url!r} is no section of docs/runbooks.md")
            for aggregation in re.findall(r"\b(?:sum|max|min|count) by \(([^)]*)\)", rule["expr"]):
                by = {label.strip() for label in aggregation.split(",")}
                expect({"namespace", "job"} <= by, f"{rule['alert']}: aggregated by {sorted(by)}, not by namespace and job")
    expect(sections == {name.lower() for name in names}, "docs/runbooks.md has a section per alert, and no other")


# --- The running binary -----------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RootDir:
    """An empty root holding only what a container runtime gives distroless/static: the binary,
    /etc/hosts, /etc/resolv.conf, /tmp, /proc and the /dev nodes. `close` unmounts /proc."""

    def __init__(self, binary: Path):
        self.path = WORK / "root"
        for directory in ["usr/local/bin", "etc", "tmp", "data", "dev", "proc"]:
            (self.path / directory).mkdir(parents=True, exist_ok=True)
        # The process metrics read /proc/self, as in any container.
        subprocess.run(["mount", "-t", "proc", "proc", str(self.path / "proc")], check=True)
        shutil.copy2(binary, self.path / "usr/local/bin/zego-kafka-bridge")
        (self.path / "etc/hosts").write_text("127.0.0.1 localhost\n")
        shutil.copy2("/etc/resolv.conf", self.path / "etc/resolv.conf")
        for name, minor in [("null", 3), ("random", 8), ("urandom", 9)]:
            os.mknod(self.path / "dev" / name, 0o666 | 0o020000, os.makedev(1, minor))
            os.chmod(self.path / "dev" / name, 0o666)
        os.chmod(self.path / "tmp", 0o1777)
        os.chown(self.path / "data", 65532, 65532)

    def close(self) -> None:
        subprocess.run(["umount", str(self.path / "proc")], check=False)

    def command(self, *args: str) -> list[str]:
        return [CHROOT, "--userspec=65532:65532", str(self.path), "/usr/local/bin/zego-kafka-bridge", *args]

    def run(self, env: dict[str, str], *args: str) -> str:
        result = subprocess.run(self.command(*args), env=env, capture_output=True, text=True, timeout=120, cwd="/")
        if result.returncode != 0:
            raise CheckFailed(f"{' '.join(args)} exited {result.returncode}: {result.stdout}{result.stderr}")
        return result.stdout


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\b(?:zego_bridge|process)_[a-z0-9_]+", expr))


def exported_families(scrape: str) -> set[str]:
    families = set(re.findall(r"^# TYPE (\S+) ", scrape, re.M))
    histograms = set(re.findall(r"^# TYPE (\S+) histogram", scrape, re.M))
    return families | {f"{h}{suffix}" for h in histograms for suffix in ("_bucket", "_sum", "_count")}


def dashboard_exprs() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    expect(len(ids) == len(set(ids)), "panel ids are unique")
    exprs = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            exprs.append((panel["title"], target["expr"]))
    titles = " ".join(panel["title"].lower() for panel in dashboard["panels"])
    scope = 'namespace=~"$namespace", job=~"$job", pod=~"$pod"'
    for title, expr in exprs:
        for name, selector in re.findall(r"\b((?:zego_bridge|process)_[a-z0-9_]+)(\{[^}]*\})?", expr):
            expect(scope in selector, f"dashboard {title!r}: {name} is not scoped by namespace, job and pod")
    for subject in ["type and status", "ack latency", "deliveries by topic", "queue depth", "ready", "cpu", "memory"]:
        expect(subject in titles, f"the dashboard shows {subject}")
    return exprs


def alert_exprs() -> list[tuple[str, str]]:
    return [(rule["alert"], rule["expr"]) for group in yaml.safe_load(ALERTS.read_text())["groups"]
            for rule in group["rules"]]


def running_bridge(binary: Path, brokers: str) -> None:
    root = RootDir(binary)
    try:
        bridge_in_root(root, brokers)
    finally:
        root.close()


def bridge_in_root(root: RootDir, brokers: str) -> None:
    prefix = f"deploycheck{os.getpid()}"
    port = brokers.rsplit(":", 1)[1]
    kafka_env = {
        "ZEGO_BRIDGE_KAFKA_BROKERS": f"localhost:{port}",  # a name: resolved through /etc/hosts
        "ZEGO_BRIDGE_TOPIC_PREFIX": prefix,
    }
    created = root.run(kafka_env, "topics", "--create", "--partitions", "1", "--replication-factor", "1")
    expect(created.count(": created") == len(root.run(kafka_env, "topics").split()), f"topics: {created}")

    public, admin = free_port(), free_port()
    # Callbacks of unknown kinds go to a topic that was not created: they get 503.
    env = dict(kafka_env,
               ZEGO_BRIDGE_TOPIC_UNRECOGNIZED=f"{prefix}.not-created",
               ZEGO_BRIDGE_CALLBACK_SECRETS="deploy-check-secret",
               ZEGO_BRIDGE_LISTEN_ADDR=f"127.0.0.1:{public}",
               ZEGO_BRIDGE_ADMIN_ADDR=f"127.0.0.1:{admin}",
               ZEGO_BRIDGE_HTTP_WORKERS="1",
               # The image's working directory is /data; chroot starts in / instead, which the
               # bridge's user cannot write (and the bridge checks at start that it can).
               ZEGO_BRIDGE_DEAD_LETTER_PATH="/data/dead-letter.jsonl",
               ZEGO_BRIDGE_LOG_FORMAT="json",
               ZEGO_BRIDGE_LIBRDKAFKA_STATISTICS_INTERVAL_MS="500")
    checked = root.run(env, "check-config")
    expect("ZEGO_BRIDGE_CALLBACK_SECRETS=<redacted>" in checked and "deploy-check-secret" not in checked,
           f"check-config: {checked}")
    log = (WORK / "bridge.log").open("w")
    server = subprocess.Popen(root.command(), env=env, stdout=log, stderr=subprocess.STDOUT, cwd="/")
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                root.run({}, "healthcheck", "--url", f"http://127.0.0.1:{admin}/readyz")
                break
            except CheckFailed:
                expect(time.monotonic() < deadline, "the static binary did not become ready: "
                       + (WORK / "bridge.log").read_text()[-2000:])
                time.sleep(0.2)
        url = f"http://127.0.0.1:{public}/v1/callbacks"
        sent = root.run({"ZEGO_SEND_SECRET": "deploy-check-secret"}, "send", "--url", url)
        expect(re.search(r"^(\d+) of \1 callbacks accepted$", sent, re.M) is not None, sent)
        # A retry (duplicate), a forged callback (401) and a malformed one (400), so that those
        # series appear in the scrape.
        root.run({"ZEGO_SEND_SECRET": "deploy-check-secret"}, "send", "--url", url, "--sample", "room_close")
        forged = subprocess.run(root.command("send", "--url", url, "--sample", "room_create"),
                                env={"ZEGO_SEND_SECRET": "wrong"}, capture_output=True, text=True)
        expect(" 401 " in forged.stdout, f"a forged callback: {forged.stdout}")
        (root.path / "tmp" / "unknown.json").write_text(
            '{"event": "a_kind_zego_adds_later", "appid": 1, "timestamp": 0, "nonce": "n", "signature": "s"}')
        unknown = subprocess.run(root.command("send", "--url", url, "--file", "/tmp/unknown.json"),
                                 env={"ZEGO_SEND_SECRET": "deploy-check-secret"}, capture_output=True, text=True)
        expect(" 503 " in unknown.stdout, f"an unknown kind whose topic is missing: {unknown.stdout}")
        request = urllib.request.Request(url, data=b"{", headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(request, timeout=5)
            raise CheckFailed("a malformed body was accepted")
        except urllib.error.HTTPError as err:
            expect(err.code == 400, f"malformed body: {err.code}")
        # Some families describe librdkafka's last statistics interval (round trips, batches) and
        # are absent from a scrape that follows an interval without traffic: scrape while
        # callbacks come, and take every family seen.
        wanted = set().union(*(metric_names(expr) for _, expr in dashboard_exprs() + alert_exprs()))
        exported: set[str] = set()
        deadline = time.monotonic() + 20
        while True:
            # Every sample, signed afresh: types identified by their delivery are new events each
            # time (a sample whose body names its occurrence, like mix_stop's, would be a retry
            # after the first, and make no traffic).
            root.run({"ZEGO_SEND_SECRET": "deploy-check-secret"}, "send", "--url", url)
            time.sleep(0.5)
            scrape = urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5).read().decode()
            exported |= exported_families(scrape)
            if wanted <= exported or time.monotonic() > deadline:
                break
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=60)
        log.close()
    expect(code == 0, f"SIGTERM: exit {code}: " + (WORK / "bridge.log").read_text()[-2000:])
    expect(re.search(rf'zego_bridge_kafka_deliveries_total{{outcome="delivered",topic="{prefix}\.room\.closed"}} [1-9]', scrape)
           is not None, "events were delivered to the broker")

    run("promtool", "check", "metrics", stdin=scrape)
    for source, exprs in [("dashboard", dashboard_exprs()), ("alert", alert_exprs())]:
        for title, expr in exprs:
            names = metric_names(expr)
            expect(names, f"{source} {title!r} queries none of the bridge's metrics: {expr}")
            unknown = names - exported
            expect(not unknown, f"{source} {title!r} queries metrics the bridge does not export: {sorted(unknown)}")


RELEASE_WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"
REPOSITORY = "https://github.com/zego-kafka-bridge/zego-kafka-bridge"


def release_workflow() -> None:
    """actionlint on the workflows (they cannot run here), and one image name everywhere."""
    run("actionlint", "-no-color", *map(str, sorted((ROOT / ".github" / "workflows").glob("*.yml"))))
    workflow = yaml.safe_load(RELEASE_WORKFLOW.read_text())
    image = workflow["env"]["IMAGE"]
    chart = yaml.safe_load((CHART / "values.yaml").read_text())["image"]["repository"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["x-bridge-image"]["image"]
    expect(chart == image, f"the chart's image.repository {chart} is the released image {image}")
    expect(compose.rsplit(":", 1)[0] == image, f"compose builds {compose}, the release pushes {image}")
    chart_meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    crate = re.search(r'^version = "([^"]+)"', (ROOT / "Cargo.toml").read_text(), re.M).group(1)
    expect(chart_meta["version"] == chart_meta["appVersion"] == crate,
           f"Cargo.toml {crate}, chart {chart_meta['version']}, appVersion {chart_meta['appVersion']}")
    changelog = (ROOT / "CHANGELOG.md").read_text()
    expect(f"## [{crate}]" in changelog, f"CHANGELOG.md has an entry for {crate}")
    expect((ROOT / "LICENSE").read_text().lstrip().startswith("Apache License"), "LICENSE is Apache-2.0")


def shell_scripts() -> None:
    """The project's own bash scripts and the libraries they source."""
    commands = [ROOT / ".ci" / "run", *sorted((ROOT / "scripts").iterdir())]
    scripts = [str(path) for path in commands
               if path.is_file() and path.read_text().startswith("#!/usr/bin/env bash")]
    scripts += [str(path) for path in sorted((ROOT / "scripts" / "lib").glob("*.sh"))]
    expect(len(scripts) >= 8, f"expected the project's bash scripts, found {scripts}")
    # From the root, where the scripts' `source scripts/lib/…` paths start.
    run("shellcheck", "--shell=bash", "--external-sources", *scripts, cwd=ROOT)


def python_scripts() -> None:
    """The project's Python, pyflakes' rules and syntax errors only: scripts such as the
    benchmark's run rarely, and an undefined name would wait there for its first use."""
    tracked = run("git", "ls-files", "*.py", cwd=ROOT).split()
    files = [str(ROOT / name) for name in tracked] + [str(ROOT / "scripts" / "kafka")]
    expect(len(files) >= 8, f"expected the project's Python files, found {files}")
    run("ruff", "check", "--no-cache", "--select", "E9,F", *files)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", type=Path, help="the static release binary to run")
    parser.add_argument("--brokers", help="a Kafka-compatible broker, host:port")
    parser.add_argument("--update", action="store_true", help="rewrite deploy/kubernetes from the chart")
    args = parser.parse_args()
    if args.update:
        update_kustomize()
        return 0
    check("Dockerfile: hadolint, multi-stage, distroless, numeric non-root user", dockerfile)
    check("docker-compose.yml: docker-compose config, services, Prometheus config", compose)
    check(f"Helm chart: lint (strict) with the values of each ci/ case, Kubernetes {' and '.join(KUBERNETES_VERSIONS)}",
          chart_lint)
    check(f"Helm chart: render and validate against Kubernetes {' and '.join(KUBERNETES_VERSIONS)} (strict)",
          chart_render_and_validate)
    check(f"Helm chart: {len(BAD_VALUES)} wrong values refused with a message naming them", chart_refuses_wrong_values)
    check("Helm chart: README lists every value", chart_readme_lists_every_value)
    check("deploy/kubernetes: in step with the chart, valid", kustomize_in_step)
    check("alerts: promtool check rules, promtool test rules, same as the chart's", alerts)
    check("release workflow: actionlint; one image name in the workflow, the chart and compose; "
          "one version in Cargo.toml, the chart and CHANGELOG.md", release_workflow)
    check("shell scripts: shellcheck", shell_scripts)
    check("Python scripts: ruff (pyflakes' rules)", python_scripts)
    if args.binary:
        check("static binary in an empty root: topics, check-config, serve, healthcheck, send, SIGTERM; "
              "promtool check metrics; dashboard and alerts query only exported metrics",
              lambda: running_bridge(args.binary, args.brokers))
    shutil.rmtree(WORK, ignore_errors=True)
    if failures:
        print(f"\n{len(failures)} deployment check(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
