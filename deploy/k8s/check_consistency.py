"""Consistency of the manifests in deploy/k8s beyond their schemas: every
name, port, secret key and volume one object refers to exists in another.

    python3 check_consistency.py FILE...            # exit 1 on any problem
    python3 check_consistency.py --self-test FILE... # each seeded mistake is caught

Needs PyYAML (installed with kubernetes-validate).
"""
import copy
import re
import sys

import yaml

WORKLOADS = {"StatefulSet", "Deployment", "Job", "DaemonSet"}


def load(paths):
    docs = []
    for path in paths:
        with open(path) as handle:
            for doc in yaml.safe_load_all(handle):
                if doc:
                    docs.append((path, doc))
    return docs


def pod_spec(doc):
    return doc["spec"]["template"]["spec"]


def check(docs):
    problems = []
    secrets = {}
    services = {}
    for path, doc in docs:
        kind, name = doc["kind"], doc["metadata"]["name"]
        if kind == "Secret":
            secrets[name] = set(doc.get("stringData", {})) | set(doc.get("data", {}))
        elif kind == "Service":
            services[name] = doc
    for path, doc in docs:
        if doc["kind"] not in WORKLOADS:
            continue
        where = "%s: %s %s" % (path, doc["kind"], doc["metadata"]["name"])
        spec = doc["spec"]
        template_labels = spec["template"]["metadata"].get("labels", {})
        selector = spec.get("selector", {}).get("matchLabels", {})
        for key, value in selector.items():
            if template_labels.get(key) != value:
                problems.append("%s: selector %s=%s does not match the pod labels" % (where, key, value))
        if doc["kind"] == "StatefulSet":
            service = services.get(spec.get("serviceName"))
            if service is None:
                problems.append("%s: serviceName %s is no Service" % (where, spec.get("serviceName")))
            elif service["spec"].get("clusterIP") != "None":
                problems.append("%s: serviceName %s is not headless" % (where, spec.get("serviceName")))
        pod = pod_spec(doc)
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        claims = {c["metadata"]["name"] for c in spec.get("volumeClaimTemplates", [])}
        mounted = set()
        for volume in volumes.values():
            secret = volume.get("secret")
            if secret is None:
                continue
            keys = secrets.get(secret["secretName"])
            if keys is None:
                problems.append("%s: volume %s names the Secret %s, which is not defined"
                                % (where, volume["name"], secret["secretName"]))
                continue
            for item in secret.get("items", []):
                if item["key"] not in keys:
                    problems.append("%s: volume %s takes key %s, which the Secret %s does not have"
                                    % (where, volume["name"], item["key"], secret["secretName"]))
        for container in pod["containers"]:
            cwhere = "%s container %s" % (where, container["name"])
            ports = {p["containerPort"]: p.get("name") for p in container.get("ports", [])}
            files = {}  # mount path -> file names it holds (None: any)
            for mount in container.get("volumeMounts", []):
                mounted.add(mount["name"])
                if mount["name"] in volumes:
                    secret = volumes[mount["name"]].get("secret")
                    items = secret.get("items") if secret else None
                    files[mount["mountPath"]] = (
                        {item["path"] for item in items} if items
                        else (secrets.get(secret["secretName"], set()) if secret else None))
                elif mount["name"] in claims:
                    files[mount["mountPath"]] = None
                else:
                    problems.append("%s: mounts %s, which is neither a volume nor a claim"
                                    % (cwhere, mount["name"]))
            for probe_name in ("readinessProbe", "livenessProbe", "startupProbe"):
                probe = container.get(probe_name)
                if probe and "grpc" in probe and probe["grpc"]["port"] not in ports:
                    problems.append("%s: %s asks port %s, which the container does not open"
                                    % (cwhere, probe_name, probe["grpc"]["port"]))
            args = container.get("args", [])
            options = dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)
            for option, value in options.items():
                if not value.startswith("/"):
                    continue
                mount = max((m for m in files if value.startswith(m.rstrip("/") + "/")), key=len, default=None)
                if mount is None:
                    problems.append("%s: --%s=%s is under no mounted volume" % (cwhere, option, value))
                    continue
                names = files[mount]
                rest = value[len(mount.rstrip("/")) + 1:]
                if names is not None and rest not in names:
                    problems.append("%s: --%s=%s: the volume at %s holds no %s"
                                    % (cwhere, option, value, mount, rest))
            url = options.get("coordinator")
            if url is not None:
                match = re.fullmatch(r"https://([a-z0-9.-]+):(\d+)", url)
                if match is None:
                    problems.append("%s: --coordinator=%s is not https://SERVICE:PORT" % (cwhere, url))
                else:
                    host, port = match.group(1).split(".")[0], int(match.group(2))
                    service = services.get(host)
                    if service is None:
                        problems.append("%s: --coordinator names %s, which is no Service" % (cwhere, host))
                    elif port not in [p["port"] for p in service["spec"]["ports"]]:
                        problems.append("%s: the Service %s has no port %d" % (cwhere, host, port))
                if "ca" not in options:
                    problems.append("%s: a worker without --ca cannot check the coordinator's certificate" % cwhere)
            if args and args[0] == "coordinator":
                for option in ("tls-cert", "tls-key", "tokens"):
                    if option not in options:
                        problems.append("%s: the coordinator has no --%s" % (cwhere, option))
            if "threads" in options:
                resources = container.get("resources", {})
                for kind in ("requests", "limits"):
                    cpu = resources.get(kind, {}).get("cpu")
                    if cpu is not None and str(cpu) != options["threads"]:
                        problems.append("%s: --threads=%s but %s.cpu is %s"
                                        % (cwhere, options["threads"], kind, cpu))
                if resources.get("requests", {}).get("cpu") is None:
                    problems.append("%s: --threads=%s but no CPU request" % (cwhere, options["threads"]))
        for name in set(volumes) - mounted:
            problems.append("%s: volume %s is mounted by no container" % (where, name))
    for name, service in services.items():
        selector = service["spec"].get("selector", {})
        targets = [pod_spec(doc) for _, doc in docs if doc["kind"] in WORKLOADS
                   and all(doc["spec"]["template"]["metadata"].get("labels", {}).get(k) == v
                           for k, v in selector.items())]
        if not targets:
            problems.append("Service %s selects no pod template" % name)
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            for pod in targets:
                opened = [(p["containerPort"], p.get("name")) for c in pod["containers"] for p in c.get("ports", [])]
                if not any(target in pair for pair in opened):
                    problems.append("Service %s: targetPort %s is no container port of the pods it selects"
                                    % (name, target))
    return problems


def find(docs, kind, name=None):
    for _, doc in docs:
        if doc["kind"] == kind and (name is None or doc["metadata"]["name"] == name):
            return doc
    raise SystemExit("self-test: no %s %s in the manifests" % (kind, name or ""))


def self_test(docs):
    """Seeds one mistake at a time; each must be reported."""
    def rename_secret_key(d):
        find(d, "Secret", "zonesweep-tls")["stringData"]["server-cert.pem"] = (
            find(d, "Secret", "zonesweep-tls")["stringData"].pop("server.pem"))

    def wrong_mount(d):
        pod_spec(find(d, "StatefulSet"))["containers"][0]["volumeMounts"][0]["name"] = "database"

    def wrong_port(d):
        find(d, "Service", "zonesweep-coordinator")["spec"]["ports"][0]["targetPort"] = "http"

    def wrong_threads(d):
        container = pod_spec(find(d, "Deployment"))["containers"][0]
        container["args"] = [a if not a.startswith("--threads=") else "--threads=4" for a in container["args"]]

    def wrong_service(d):
        container = pod_spec(find(d, "Job"))["containers"][0]
        container["args"] = [a.replace("zonesweep-coordinator", "coordinator") for a in container["args"]]

    def wrong_file(d):
        container = pod_spec(find(d, "StatefulSet"))["containers"][0]
        container["args"] = [a.replace("server-key.pem", "key.pem") for a in container["args"]]

    def wrong_probe(d):
        pod_spec(find(d, "StatefulSet"))["containers"][0]["livenessProbe"]["grpc"]["port"] = 8080

    failures = 0
    for mistake in (rename_secret_key, wrong_mount, wrong_port, wrong_threads, wrong_service, wrong_file,
                    wrong_probe):
        seeded = copy.deepcopy(docs)
        mistake(seeded)
        found = check(seeded)
        print("  self-test %-18s %s" % (mistake.__name__, "caught: " + found[0] if found else "NOT CAUGHT"))
        failures += not found
    return failures


def main():
    args = sys.argv[1:]
    test = args[:1] == ["--self-test"]
    docs = load(args[1:] if test else args)
    problems = check(docs)
    for problem in problems:
        print("inconsistent: " + problem)
    if problems:
        return 1
    if test:
        return 1 if self_test(docs) else 0
    print("consistent: %d objects (names, ports, secret keys, volumes, files, --threads)" % len(docs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
