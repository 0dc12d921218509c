#!/usr/bin/env python3
"""Checks the deployment files under deploy/ (run by scripts/check-deploy.sh).

Every Kubernetes object is validated against the Kubernetes OpenAPI schema
(kubernetes-validate, strict: unknown fields fail), then the essentials the docs promise
are checked: three members with stable peer names, probes on /health, volumes, a
disruption budget; the compose file runs three distinct members that name each other;
the Dockerfile is multi-stage and runs as a non-root user with a data volume.

Usage: check_deploy.py RENDERED_MANIFESTS.yaml
"""

import re
import sys
from pathlib import Path

import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
FAILURES = []


def check(condition, what):
    if not condition:
        FAILURES.append(what)


def validate_schemas(docs, source):
    for doc in docs:
        name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(doc, "1.30.0", strict=True)
        except kubernetes_validate.ValidationError as err:
            FAILURES.append(f"{source}: {name}: {err.message} at {list(err.path)}")


def kubernetes(docs):
    by_kind = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    sets = by_kind.get("StatefulSet", [])
    check(len(sets) == 1, "one StatefulSet")
    if not sets:
        return
    sts = sets[0]
    spec = sts["spec"]
    check(spec.get("replicas") == 3, "StatefulSet has three replicas")
    services = {s["metadata"]["name"]: s for s in by_kind.get("Service", [])}
    peer = services.get(spec.get("serviceName"))
    check(peer is not None, "serviceName names a Service")
    if peer:
        check(peer["spec"].get("clusterIP") == "None", "the peer Service is headless")
        check(
            peer["spec"].get("publishNotReadyAddresses") is True,
            "the peer Service publishes members before they are ready",
        )
    ports = {p["port"] for s in services.values() for p in s["spec"]["ports"]}
    check({8080, 8081, 8085} <= ports, "Services for api (8080), proxy (8081), peer (8085)")
    selector = spec["selector"]["matchLabels"]
    labels = spec["template"]["metadata"]["labels"]
    check(selector.items() <= labels.items(), "the selector matches the pod labels")
    for service in services.values():
        check(
            service["spec"]["selector"].items() <= labels.items(),
            f"Service {service['metadata']['name']} selects the pods",
        )
    container = spec["template"]["spec"]["containers"][0]
    for probe in ("readinessProbe", "livenessProbe"):
        http = container.get(probe, {}).get("httpGet", {})
        check(http.get("path") == "/health", f"{probe} is GET /health")
    mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
    claims = [c["metadata"]["name"] for c in spec.get("volumeClaimTemplates", [])]
    check("data" in claims and mounts.get("data") == "/data", "a persistent volume at /data")
    env = {e["name"]: e for e in container.get("env", [])}
    check(env.get("MICRO_DATA_DIR", {}).get("value") == "/data", "MICRO_DATA_DIR is /data")
    check("secretKeyRef" in env.get("MICRO_ADMIN_PASSWORD", {}).get("valueFrom", {}),
          "the admin password comes from a Secret")
    pod_security = spec["template"]["spec"].get("securityContext", {})
    check(pod_security.get("runAsNonRoot") is True, "pods run as non-root")
    pdbs = by_kind.get("PodDisruptionBudget", [])
    check(
        len(pdbs) == 1 and pdbs[0]["spec"].get("maxUnavailable") == 1,
        "a PodDisruptionBudget allowing one member down",
    )
    scripts = [c for c in by_kind.get("ConfigMap", []) if "start.sh" in c.get("data", {})]
    check(len(scripts) == 1, "the start script ConfigMap")
    if scripts:
        script = scripts[0]["data"]["start.sh"]
        for word in ("MICRO_PEERS", "MICRO_JOIN", "MICRO_NODE_ID", "MICRO_PEER_ADDR"):
            check(word in script, f"the start script sets {word}")


def compose():
    path = ROOT / "deploy/docker/docker-compose.yml"
    doc = yaml.safe_load(path.read_text())
    services = doc.get("services", {})
    check(len(services) == 3, "compose runs three services")
    ids, peer_addrs, volumes, published = set(), set(), set(), []
    peers = None
    for name, service in services.items():
        env = service.get("environment", {})
        ids.add(env.get("MICRO_NODE_ID"))
        peer_addrs.add(env.get("MICRO_PEER_ADDR"))
        check(env.get("MICRO_PEER_ADDR", "").startswith(f"{name}:"), f"{name} advertises its name")
        peers = peers or env.get("MICRO_PEERS")
        check(env.get("MICRO_PEERS") == peers, f"{name} has the same MICRO_PEERS")
        volumes.update(v.split(":")[0] for v in service.get("volumes", []))
        published.extend(p.rsplit(":", 1)[0] for p in service.get("ports", []))
        check("healthcheck" in service, f"{name} has a health check")
    check(ids == {"1", "2", "3"}, "node ids 1, 2, 3")
    expected = {f"{i}={name}:8085" for i, name in zip("123", services)}
    check(set((peers or "").split(",")) == expected, f"MICRO_PEERS names every member: {expected}")
    check(len(volumes) == 3 and volumes <= set(doc.get("volumes", {})), "a named volume per node")
    check(len(published) == len(set(published)), "no host port published twice")


def dockerfile():
    text = (ROOT / "deploy/docker/Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\S+)", text, re.M)
    check(len(stages) >= 2, "the Dockerfile is multi-stage")
    check(stages and stages[-1] == "runtime", "the last (default) stage is the runtime image")
    last = text[text.rindex("FROM "):]
    check(re.search(r"^USER micro$", last, re.M) is not None, "the runtime image runs as micro")
    check('VOLUME ["/data"]' in text, "a data volume")
    check(re.search(r"^EXPOSE 8080 8081 8085$", text, re.M) is not None, "ports exposed")
    for binary in ("micro-node", "micro"):
        check(f"/usr/local/bin/{binary}" in text, f"the image has {binary}")


def main():
    rendered = Path(sys.argv[1])
    docs = [d for d in yaml.safe_load_all(rendered.read_text()) if d]
    validate_schemas(docs, rendered.name)
    kubernetes(docs)
    compose()
    dockerfile()
    if FAILURES:
        for failure in FAILURES:
            print(f"deploy check failed: {failure}", file=sys.stderr)
        sys.exit(1)
    print(f"deploy files: {len(docs)} Kubernetes objects valid, compose and Dockerfile checked")


if __name__ == "__main__":
    main()
