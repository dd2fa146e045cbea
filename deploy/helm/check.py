"""Checks the Helm chart's rendered manifests, for deploy/helm/check.sh.

    check.py settings VALUES_YAML REPO_ROOT
        Every setting (NATTER_* environment variable) of every service, read from the services'
        clap configs, is named in the chart's values.yaml, and values.yaml names none that the
        service does not have.

    check.py manifests RENDERED_YAML REPO_ROOT KUBE_VERSION...
        Every object is valid against the Kubernetes JSON schemas of each version (strict: an
        unknown field is an error; the schemas come with the kubernetes-validate package), and
        keeps Natter's rules: probes, resources, secrets from Secrets, unique worker ids, the
        edge's drain inside its grace period, a disruption budget over every workload, and every
        NATTER_* variable a container gets is a setting of that service.

    check.py engines ENGINES_DIR
        The engines' files parse as YAML; their custom resources name an apiVersion, a kind and a
        name (their operators' schemas are not available offline).

Runs with the Python of the venv check.sh makes (PyYAML and kubernetes-validate).
"""

import re
import sys
from pathlib import Path

import yaml

# Custom resources the chart may render, whose schemas come with their operators.
KNOWN_CUSTOM_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}

# Each service's folder (its clap `Config` is in its src/); the groups it flattens in are clap
# structs of its own src/ or of the shared crates.
SERVICES = ["edge", "auth", "presence", "persister", "media", "search", "notify"]
SHARED_SOURCES = "shared/*/src/**/*.rs"

# Settings whose values must come from a Secret, never a literal in the manifest.
SECRET_SETTINGS = {
    "NATTER_DATABASE_URL",
    "NATTER_MEDIA_URL_SIGNING_SECRET",
    "NATTER_S3_ACCESS_KEY_ID",
    "NATTER_S3_SECRET_ACCESS_KEY",
}

failures = []


def fail(message):
    failures.append(message)


# ------------------------------------------------------------------------------------------
# settings: the services' clap configs against values.yaml


def clap_structs(text):
    """struct name -> (env names, flattened type names) for every clap Args/Parser struct."""
    structs = {}
    for m in re.finditer(
        r"#\[derive\([^)]*\b(?:Args|Parser)\b[^)]*\)\]\s*(?:#\[[^\]]*\]\s*)*pub(?:\([^)]*\))?\s+struct\s+(\w+)\s*\{",
        text,
    ):
        depth, i = 1, m.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        body = text[m.end() : i - 1]
        envs = set(re.findall(r'\benv\s*=\s*"(NATTER_[A-Z0-9_]+)"', body))
        flattened = [
            t.split("::")[-1]
            for t in re.findall(r"#\[command\(flatten\)\]\s*(?:pub(?:\([^)]*\))?\s+)?\w+\s*:\s*([\w:]+)", body)
        ]
        structs[m.group(1)] = (envs, flattened)
    return structs


def structs_in(root, pattern):
    structs = {}
    for f in sorted(root.glob(pattern)):
        structs.update(clap_structs(f.read_text()))
    return structs


def service_settings(root):
    shared = structs_in(root, SHARED_SOURCES)
    settings = {}
    for service in SERVICES:
        own = structs_in(root, f"{service}/src/**/*.rs")
        if "Config" not in own:
            fail(f"settings: no clap `Config` struct in {service}/src/")
            continue
        every = dict(shared, **own)
        envs, todo, seen = set(), ["Config"], set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            if name not in every:
                fail(f"settings: {service} flattens {name}, a clap struct found neither in {service}/src nor in shared/")
                continue
            e, flat = every[name]
            envs |= e
            todo += flat
        settings[service] = envs
    return settings


def values_sections(values_text):
    """Top-level key -> the NATTER_* names its lines mention (keys and comments alike)."""
    sections, current = {}, None
    for line in values_text.splitlines():
        m = re.match(r"^([A-Za-z]\w*):", line)
        if m:
            current = m.group(1)
        if current:
            sections.setdefault(current, set()).update(re.findall(r"\bNATTER_[A-Z0-9_]+", line))
    return sections


def check_settings(values_path, root):
    settings = service_settings(root)
    sections = values_sections(Path(values_path).read_text())
    shared = sections.get("common", set())
    chat = sections.get("chat", set())
    for service, envs in sorted(settings.items()):
        named = sections.get(service, set())
        if service in ("edge", "persister", "search", "notify"):
            covered = named | shared | chat
        elif service == "media":  # the chart passes it chat's stream settings only ("streamOnly")
            covered = named | shared | {env for env in chat if env.startswith("NATTER_STREAM_")}
        else:
            covered = named | shared
        for env in sorted(envs - covered):
            fail(f"settings: values.yaml does not name {env}, a setting of {service} (add it to `{service}` or `common`)")
        for env in sorted(named - envs):
            fail(f"settings: values.yaml names {env} under `{service}`, which {service} has no setting of")
    every = set().union(*settings.values())
    for section in ("common", "chat"):
        for env in sorted(sections.get(section, set()) - every):
            fail(f"settings: values.yaml names {env} under `{section}`, which no service has")
    if not failures:
        count = sum(len(e) for e in settings.values())
        print(f"settings: {count} settings of {len(settings)} services, all named in values.yaml")


# ------------------------------------------------------------------------------------------
# manifests


def check_schemas(docs, versions):
    import kubernetes_validate.utils as kv

    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        for version in versions:
            try:
                kv.validate(doc, version, strict=True)
            except kv.SchemaNotFoundError:
                if (doc["apiVersion"], doc["kind"]) not in KNOWN_CUSTOM_KINDS:
                    fail(f"{name}: no schema for {doc['apiVersion']} {doc['kind']} in Kubernetes {version}")
            except kv.ValidationError as e:
                path = ".".join(str(p) for p in e.path)
                fail(f"{name}: invalid for Kubernetes {version} at {path}: {e.message}")


def env_of(container):
    return {e["name"]: e for e in container.get("env", [])}


def seconds(duration):
    m = re.fullmatch(r"(\d+)s", duration)
    if not m:
        raise ValueError(f"expected whole seconds, got {duration!r}")
    return int(m.group(1))


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def check_workloads(docs, settings):
    workloads = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]
    pdbs = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    worker_ranges = []
    for w in workloads:
        name = f"{w['kind']}/{w['metadata']['name']}"
        pod = w["spec"]["template"]
        labels = pod["metadata"]["labels"]
        if not selects(w["spec"]["selector"]["matchLabels"], labels):
            fail(f"{name}: its selector does not select its own pods")
        if not any(selects(p["spec"]["selector"]["matchLabels"], labels) for p in pdbs):
            fail(f"{name}: no PodDisruptionBudget covers its pods")
        if pod["spec"].get("enableServiceLinks") is not False:
            # Service variables of a Service named natter-* would be NATTER_*: settings.
            fail(f"{name}: enableServiceLinks must be false")
        for c in pod["spec"]["containers"]:
            where = f"{name} container {c['name']}"
            probes = {
                "livenessProbe": "/livez",
                "readinessProbe": "/readyz",
                "startupProbe": "/livez",
            }
            for probe, path in probes.items():
                got = c.get(probe, {}).get("httpGet", {})
                if got.get("path") != path or got.get("port") != "http":
                    fail(f"{where}: {probe} must GET {path} on the public port (http), has {got or 'none'}")
            ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
            if "http" not in ports or "metrics" not in ports or ports["http"] == ports["metrics"]:
                fail(f"{where}: needs a public port `http` and a separate `metrics` port, has {ports}")
            for kind in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in c.get("resources", {}).get(kind, {}):
                        fail(f"{where}: no {resource} {kind}")
            env = env_of(c)
            known = settings.get(c["name"])
            if known is None:
                fail(f"{where}: a container must be named for its service ({', '.join(SERVICES)})")
                known = set()
            for n, e in env.items():
                if n not in known:
                    fail(f"{where}: sets {n}, which is not a setting of {c['name']}")
                if n in SECRET_SETTINGS and "secretKeyRef" not in e.get("valueFrom", {}):
                    fail(f"{where}: {n} must come from a Secret (secretKeyRef), not a literal")
            metrics_addr = next((e.get("value", "") for n, e in env.items() if n.endswith("_METRICS_ADDR")), "")
            if not metrics_addr.endswith(f":{ports.get('metrics')}"):
                fail(f"{where}: its *_METRICS_ADDR ({metrics_addr!r}) is not its metrics port")
            keys = env.get("NATTER_AUTH_SIGNING_KEYS")
            if keys:
                secret_mounts = {
                    v["name"] for v in pod["spec"].get("volumes", []) if "secret" in v
                }
                mounted = [
                    m["mountPath"] for m in c.get("volumeMounts", []) if m["name"] in secret_mounts
                ]
                for path in keys["value"].split(","):
                    if not any(path.startswith(m.rstrip("/") + "/") for m in mounted):
                        fail(f"{where}: signing key {path} is not in a mounted Secret")
            worker = env.get("NATTER_WORKER_ID")
            if worker:
                field = worker.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
                if w["kind"] != "StatefulSet" or field != "metadata.labels['apps.kubernetes.io/pod-index']":
                    fail(f"{where}: a worker id must be a StatefulSet pod's ordinal (the pod-index label)")
                else:
                    start = w["spec"].get("ordinals", {}).get("start", 0)
                    worker_ranges.append((name, start, start + w["spec"]["replicas"]))
            if c["name"] == "edge":
                drain = seconds(env["NATTER_DRAIN_TIMEOUT"]["value"])
                grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
                if grace <= drain:
                    fail(f"{where}: terminationGracePeriodSeconds {grace} does not outlast the drain ({drain} s)")
                if "$(NATTER_WORKER_ID)" not in env["NATTER_EDGE_PUBLIC_URL"]["value"]:
                    fail(f"{where}: its public URL must name the pod's own host")
    for name, start, end in worker_ranges:
        if start < 0 or end > 1024:
            fail(f"{name}: worker ids {start}-{end - 1} fall outside 0-1023")
        for other, s, e in worker_ranges:
            if other != name and start < e and s < end:
                fail(f"{name} and {other}: worker id ranges overlap")
    return len(workloads)


def check_manifests(path, root, versions):
    docs = [d for d in yaml.safe_load_all(Path(path).read_text()) if d]
    check_schemas(docs, versions)
    n = check_workloads(docs, service_settings(root))
    if not failures:
        print(f"{path}: {len(docs)} objects valid for Kubernetes {', '.join(versions)}; {n} workloads keep Natter's rules")


def check_engines(folder):
    files = sorted(Path(folder).glob("*.yaml"))
    for f in files:
        try:
            docs = [d for d in yaml.safe_load_all(f.read_text()) if d]
        except yaml.YAMLError as e:
            fail(f"{f.name}: not YAML: {e}")
            continue
        for d in docs:
            if not isinstance(d, dict):
                fail(f"{f.name}: a document that is not a mapping")
            elif "kind" in d and not (d.get("apiVersion") and d.get("metadata", {}).get("name")):
                fail(f"{f.name}: {d['kind']} without an apiVersion or a name")
    if not failures:
        print(f"engines: {len(files)} files parse")


def main(argv):
    if len(argv) >= 3 and argv[0] == "settings":
        check_settings(argv[1], Path(argv[2]))
    elif len(argv) == 2 and argv[0] == "engines":
        check_engines(argv[1])
    elif len(argv) >= 4 and argv[0] == "manifests":
        check_manifests(argv[1], Path(argv[2]), argv[3:])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for f in failures:
        print(f"FAIL {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
