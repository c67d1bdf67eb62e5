#!/usr/bin/env python3
"""Checks the Kubernetes manifests of docs/deploy/k8s/ without a cluster.

    check_k8s.py [K8S_DIR] [--binary BTCSTREAM]      (meson suite 'deploy')
    check_k8s.py [K8S_DIR] --play OUT.yaml --image IMG --redis-image IMG \\
        --upstream URL [--api-key KEY]

Checks: every manifest parses; kinds and apiVersions (apps/v1, v1, policy/v1,
autoscaling/v2); the set of objects (the btcstream Deployment with 3
replicas, its Service, PodDisruptionBudget, HorizontalPodAutoscaler, the
Redis StatefulSet and its Service, the ConfigMap, the Secret); selectors
match the pod template labels (Deployment, StatefulSet, Services, PDB);
liveness /healthz and readiness /readyz on a declared container port;
Service targetPorts resolve to container ports; a preStop pause and a
termination grace above pause + BTCSTREAM_SHUTDOWN_GRACE; resource requests
and limits; non-root, read-only root filesystem, no privilege escalation,
all capabilities dropped; envFrom/secret references resolve; BTCSTREAM_REDIS
names the Redis Service and its port; Redis runs with appendonly yes,
appendfsync always on a volumeClaimTemplate; the HPA and PDB point at the
Deployment; the Secret holds placeholders only. With --binary (or
$BTCSTREAM_BIN), every BTCSTREAM_<FLAG> set must be a flag in its --help.

--play writes what `podman kube play` (4.3) runs of it: the Deployment (one
pod: podman ignores replicas) and the Redis StatefulSet's pod template as a
Pod with a PersistentVolumeClaim, the ConfigMap inlined into the env, the
Secret's files as an inline env (podman 4.3 does not read Secret objects),
with the given images and upstream. Services, PDB and HPA have no podman
equivalent. The two documents go to OUT.yaml (btcstream) and
OUT.redis.yaml (Redis, played first); the btcstream one reads
BTCSTREAM_REDIS from --redis-url.

Exit 0: all good; 1: a problem (each printed); 77: python3-yaml missing
(a failure with BTCSTREAM_CI=1).
"""

import argparse
import copy
import glob
import os
import re
import subprocess
import sys

try:
    import yaml
except ImportError:  # pragma: no cover
    if os.environ.get("BTCSTREAM_CI") == "1":
        print("check_k8s: python3-yaml is missing (BTCSTREAM_CI=1)",
              file=sys.stderr)
        sys.exit(1)
    print("check_k8s: SKIP: python3-yaml is missing")
    sys.exit(77)

API = {
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "Service": "v1",
    "ConfigMap": "v1",
    "Secret": "v1",
    "PodDisruptionBudget": "policy/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
}

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DIR = os.path.join(os.path.dirname(os.path.dirname(HERE)), "docs",
                           "deploy", "k8s")


class Problems:
    def __init__(self):
        self.items = []

    def __call__(self, where, msg):
        self.items.append("%s: %s" % (where, msg))


def load(directory):
    docs = []
    files = sorted(glob.glob(os.path.join(directory, "*.yaml")) +
                   glob.glob(os.path.join(directory, "*.yml")))
    if not files:
        raise SystemExit("check_k8s: no manifests in %s" % directory)
    for path in files:
        with open(path, encoding="utf-8") as f:
            try:
                for doc in yaml.safe_load_all(f):
                    if doc is not None:
                        docs.append((os.path.basename(path), doc))
            except yaml.YAMLError as e:
                raise SystemExit("check_k8s: %s is not valid YAML: %s"
                                 % (path, e))
    return docs


def duration_s(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|min|m|h)", str(text).strip())
    if not m:
        return None
    value = float(m.group(1))
    return value * {"ms": 0.001, "s": 1, "min": 60, "m": 60,
                    "h": 3600}[m.group(2)]


def subset(small, big):
    return isinstance(small, dict) and isinstance(big, dict) and small and \
        all(big.get(k) == v for k, v in small.items())


def pod_spec(obj):
    return (((obj.get("spec") or {}).get("template") or {}).get("spec")) or {}


def template_labels(obj):
    return ((((obj.get("spec") or {}).get("template") or {})
             .get("metadata") or {}).get("labels")) or {}


def container_ports(obj):
    out = {}
    for c in pod_spec(obj).get("containers") or []:
        for p in c.get("ports") or []:
            out[p.get("containerPort")] = c.get("name")
            if p.get("name"):
                out[p["name"]] = c.get("name")
    return out


def help_flags(binary):
    try:
        out = subprocess.run([binary, "--help"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SystemExit("check_k8s: cannot run %s --help: %s" % (binary, e))
    return set(re.findall(r"^\s+--([a-z0-9-]+)", out.stdout.decode(
        "utf-8", "replace"), re.M))


def check(docs, flags=None):
    bad = Problems()
    by_kind = {}
    for fname, d in docs:
        where = fname
        if not isinstance(d, dict):
            bad(where, "a document is not a mapping")
            continue
        kind, api = d.get("kind"), d.get("apiVersion")
        name = (d.get("metadata") or {}).get("name")
        where = "%s %s/%s" % (fname, kind, name)
        if kind not in API:
            bad(where, "unexpected kind %r" % kind)
            continue
        if api != API[kind]:
            bad(where, "apiVersion %r, expected %r" % (api, API[kind]))
        if not name or not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?",
                                        name):
            bad(where, "metadata.name %r is not a DNS label" % name)
        if (kind, name) in {(k, n) for k, n, _ in
                            [(k, n, 0) for k in by_kind for n in by_kind[k]]}:
            bad(where, "defined twice")
        by_kind.setdefault(kind, {})[name] = d

    def one(kind, name):
        obj = by_kind.get(kind, {}).get(name)
        if obj is None:
            bad("manifests", "no %s %r" % (kind, name))
        return obj

    dep = one("Deployment", "btcstream")
    svc = one("Service", "btcstream")
    pdb = one("PodDisruptionBudget", "btcstream")
    hpa = one("HorizontalPodAutoscaler", "btcstream")
    sts = one("StatefulSet", "redis")
    rsvc = one("Service", "redis")
    cms = by_kind.get("ConfigMap", {})
    secrets = by_kind.get("Secret", {})
    if not cms:
        bad("manifests", "no ConfigMap")
    if not secrets:
        bad("manifests", "no Secret")
    if not dep or not sts:
        return bad.items

    workloads = list(by_kind.get("Deployment", {}).values()) + \
        list(by_kind.get("StatefulSet", {}).values())

    # -- workloads: selectors, containers, security ---------------------------
    for w in workloads:
        where = "%s/%s" % (w["kind"], w["metadata"]["name"])
        spec = w.get("spec") or {}
        sel = (spec.get("selector") or {}).get("matchLabels")
        if not subset(sel, template_labels(w)):
            bad(where, "selector %r does not match the template labels %r"
                % (sel, template_labels(w)))
        ps = pod_spec(w)
        psc = ps.get("securityContext") or {}
        containers = ps.get("containers") or []
        if not containers:
            bad(where, "no containers")
        volumes = {v.get("name"): v for v in ps.get("volumes") or []}
        claims = {(t.get("metadata") or {}).get("name")
                  for t in spec.get("volumeClaimTemplates") or []}
        for c in containers:
            cw = "%s container %s" % (where, c.get("name"))
            if not c.get("image"):
                bad(cw, "no image")
            csc = c.get("securityContext") or {}
            if not (csc.get("runAsNonRoot") or psc.get("runAsNonRoot")):
                bad(cw, "runAsNonRoot is not set")
            uid = csc.get("runAsUser", psc.get("runAsUser"))
            if uid == 0:
                bad(cw, "runAsUser 0")
            if csc.get("readOnlyRootFilesystem") is not True:
                bad(cw, "readOnlyRootFilesystem is not true")
            if csc.get("allowPrivilegeEscalation") is not False:
                bad(cw, "allowPrivilegeEscalation is not false")
            if "ALL" not in ((csc.get("capabilities") or {}).get("drop")
                             or []):
                bad(cw, "capabilities.drop lacks ALL")
            if csc.get("privileged"):
                bad(cw, "privileged")
            res = c.get("resources") or {}
            for part in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if not (res.get(part) or {}).get(r):
                        bad(cw, "no resources.%s.%s" % (part, r))
            ports = container_ports({"spec": {"template": {"spec": {
                "containers": [c]}}}})
            for probe in ("livenessProbe", "readinessProbe"):
                p = c.get(probe)
                if not p:
                    bad(cw, "no %s" % probe)
                    continue
                for h in ("httpGet", "tcpSocket"):
                    if h in p and p[h].get("port") not in ports:
                        bad(cw, "%s port %r is not a container port %r"
                            % (probe, p[h].get("port"), sorted(map(str,
                                                                ports))))
            for m in c.get("volumeMounts") or []:
                if m.get("name") not in volumes and m.get("name") not in \
                        claims:
                    bad(cw, "volumeMount %r has no volume" % m.get("name"))
            for ef in c.get("envFrom") or []:
                ref = (ef.get("configMapRef") or {}).get("name")
                if ref is not None and ref not in cms:
                    bad(cw, "envFrom names no ConfigMap %r" % ref)
                ref = (ef.get("secretRef") or {}).get("name")
                if ref is not None and ref not in secrets:
                    bad(cw, "envFrom names no Secret %r" % ref)
            for e in c.get("env") or []:
                skr = (e.get("valueFrom") or {}).get("secretKeyRef")
                if skr:
                    s = secrets.get(skr.get("name"))
                    if s is None or skr.get("key") not in secret_keys(s):
                        bad(cw, "env %s: no key %r in Secret %r"
                            % (e.get("name"), skr.get("key"),
                               skr.get("name")))
        for v in volumes.values():
            if "secret" in v:
                s = secrets.get(v["secret"].get("secretName"))
                if s is None:
                    bad(where, "volume %s: no Secret %r" % (
                        v.get("name"), v["secret"].get("secretName")))
                else:
                    for item in v["secret"].get("items") or []:
                        if item.get("key") not in secret_keys(s):
                            bad(where, "volume %s: no key %r in the Secret"
                                % (v.get("name"), item.get("key")))
            if "configMap" in v and v["configMap"].get("name") not in cms:
                bad(where, "volume %s: no ConfigMap" % v.get("name"))

    # -- the btcstream Deployment --------------------------------------------
    spec = dep["spec"]
    if spec.get("replicas") != 3:
        bad("Deployment/btcstream", "replicas %r, expected 3"
            % spec.get("replicas"))
    ru = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    if ru.get("maxUnavailable") not in (0, "0", "0%"):
        bad("Deployment/btcstream", "rollingUpdate.maxUnavailable should be "
            "0 (a surge pod first, then one drain at a time)")
    ps = pod_spec(dep)
    node = next((c for c in ps.get("containers") or []
                 if c.get("name") == "btcstream"), None)
    env = {}
    for ef in (node or {}).get("envFrom") or []:
        ref = (ef.get("configMapRef") or {}).get("name")
        if ref in cms:
            env.update({str(k): str(v) for k, v in
                        ((cms[ref].get("data") or {}).items())})
    for e in (node or {}).get("env") or []:
        env[e.get("name")] = e.get("value")
    if node is None:
        bad("Deployment/btcstream", "no container named btcstream")
    else:
        probes = {p: (node.get(p) or {}).get("httpGet") or {}
                  for p in ("livenessProbe", "readinessProbe")}
        if probes["livenessProbe"].get("path") != "/healthz":
            bad("Deployment/btcstream", "livenessProbe must GET /healthz")
        if probes["readinessProbe"].get("path") != "/readyz":
            bad("Deployment/btcstream", "readinessProbe must GET /readyz")
        ports = container_ports(dep)
        listen = env.get("BTCSTREAM_LISTEN", "0.0.0.0:8080")
        lport = int(listen.rsplit(":", 1)[1])
        if lport not in ports:
            bad("Deployment/btcstream", "BTCSTREAM_LISTEN port %d is not a "
                "containerPort" % lport)
        for p, h in probes.items():
            port = h.get("port")
            num = port if isinstance(port, int) else next(
                (pp.get("containerPort") for pp in node.get("ports") or []
                 if pp.get("name") == port), None)
            if num != lport:
                bad("Deployment/btcstream", "%s probes port %r, the service "
                    "listens on %d (the admin port comes later)"
                    % (p, port, lport))
        pre = ((node.get("lifecycle") or {}).get("preStop")) or {}
        pause = None
        if "sleep" in pre:
            pause = float(pre["sleep"].get("seconds", 0))
        elif "exec" in pre:
            cmd = pre["exec"].get("command") or []
            if cmd and os.path.basename(cmd[0]) == "sleep" and len(cmd) == 2:
                pause = float(cmd[1])
        if not pause:
            bad("Deployment/btcstream", "no preStop pause (sleep)")
            pause = 0
        grace = duration_s(env.get("BTCSTREAM_SHUTDOWN_GRACE", "1s"))
        if grace is None or grace > 4:
            bad("Deployment/btcstream", "BTCSTREAM_SHUTDOWN_GRACE %r (at "
                "most 4s)" % env.get("BTCSTREAM_SHUTDOWN_GRACE"))
            grace = 4
        tgp = ps.get("terminationGracePeriodSeconds", 30)
        if tgp < pause + grace + 5:
            bad("Deployment/btcstream", "terminationGracePeriodSeconds %s < "
                "preStop %gs + shutdown grace %gs + 5s" % (tgp, pause, grace))
        if not (env.get("BTCSTREAM_API_KEY_FILE") or any(
                ((e.get("valueFrom") or {}).get("secretKeyRef"))
                for e in node.get("env") or [])):
            bad("Deployment/btcstream", "the API key does not come from a "
                "Secret")
        for k, v in env.items():
            if k in ("COINDESK_API_KEY", "BTCSTREAM_API_KEY") and v:
                bad("Deployment/btcstream", "%s has a literal value" % k)
        redis_url = env.get("BTCSTREAM_REDIS", "")
        m = re.fullmatch(r"redis://(?:[^@/]*@)?([^:/]+)(?::(\d+))?(?:/\d+)?",
                         redis_url)
        if not m:
            bad("Deployment/btcstream", "BTCSTREAM_REDIS %r is not "
                "redis://host:port" % redis_url)
        elif rsvc is not None:
            host, port = m.group(1), int(m.group(2) or 6379)
            if host.split(".")[0] != rsvc["metadata"]["name"]:
                bad("Deployment/btcstream", "BTCSTREAM_REDIS host %r is not "
                    "the Redis Service %r" % (host, rsvc["metadata"]["name"]))
            if port not in [p.get("port") for p in
                            rsvc["spec"].get("ports") or []]:
                bad("Deployment/btcstream", "BTCSTREAM_REDIS port %d is not "
                    "a port of the Redis Service" % port)
            if "@" in redis_url:
                bad("Deployment/btcstream", "a password in BTCSTREAM_REDIS: "
                    "use BTCSTREAM_REDIS_PASSWORD_FILE")
        if flags is not None:
            for k in sorted(env):
                if k.startswith("BTCSTREAM_"):
                    flag = k[len("BTCSTREAM_"):].lower().replace("_", "-")
                    if flag not in flags:
                        bad("Deployment/btcstream", "%s: the binary has no "
                            "--%s" % (k, flag))

    # -- Services ---------------------------------------------------------------
    for s in by_kind.get("Service", {}).values():
        where = "Service/%s" % s["metadata"]["name"]
        sel = (s.get("spec") or {}).get("selector")
        targets = [w for w in workloads if subset(sel, template_labels(w))]
        if len(targets) != 1:
            bad(where, "selector %r matches %d workloads' pods, expected 1"
                % (sel, len(targets)))
            continue
        ports = container_ports(targets[0])
        for p in s["spec"].get("ports") or []:
            tp = p.get("targetPort", p.get("port"))
            if tp not in ports:
                bad(where, "targetPort %r is not a container port of %s/%s"
                    % (tp, targets[0]["kind"], targets[0]["metadata"]["name"]))
    if svc is not None and not subset((svc.get("spec") or {}).get(
            "selector"), template_labels(dep)):
        bad("Service/btcstream", "does not select the Deployment's pods")

    # -- PDB, HPA ---------------------------------------------------------------
    if pdb is not None:
        ps_ = pdb.get("spec") or {}
        if not subset((ps_.get("selector") or {}).get("matchLabels"),
                      template_labels(dep)):
            bad("PodDisruptionBudget/btcstream", "selector does not match the "
                "Deployment's pods")
        if "minAvailable" not in ps_ and "maxUnavailable" not in ps_:
            bad("PodDisruptionBudget/btcstream", "neither minAvailable nor "
                "maxUnavailable")
    if hpa is not None:
        hs = hpa.get("spec") or {}
        ref = hs.get("scaleTargetRef") or {}
        if (ref.get("apiVersion"), ref.get("kind"), ref.get("name")) != \
                ("apps/v1", "Deployment", dep["metadata"]["name"]):
            bad("HorizontalPodAutoscaler/btcstream", "scaleTargetRef %r is "
                "not the Deployment" % ref)
        lo, hi = hs.get("minReplicas", 1), hs.get("maxReplicas")
        if not hi or lo > hi or lo < 2:
            bad("HorizontalPodAutoscaler/btcstream", "min/max replicas %r/%r"
                % (lo, hi))
        if not hs.get("metrics"):
            bad("HorizontalPodAutoscaler/btcstream", "no metrics")

    # -- Redis --------------------------------------------------------------------
    ss = sts["spec"]
    if rsvc is not None and ss.get("serviceName") != \
            rsvc["metadata"]["name"]:
        bad("StatefulSet/redis", "serviceName %r is not the Redis Service"
            % ss.get("serviceName"))
    if ss.get("replicas", 1) != 1:
        bad("StatefulSet/redis", "one Redis (no Sentinel support)")
    rc = (pod_spec(sts).get("containers") or [{}])[0]
    args = [str(a) for a in (rc.get("command") or []) +
            (rc.get("args") or [])]
    joined = " ".join(args)
    for want in ("--appendonly yes", "--appendfsync always",
                 "--maxmemory-policy noeviction"):
        if want not in joined:
            bad("StatefulSet/redis", "redis-server without %s" % want)
    claims = {(t.get("metadata") or {}).get("name"): t
              for t in ss.get("volumeClaimTemplates") or []}
    data_dir = args[args.index("--dir") + 1] if "--dir" in args else None
    mounted = {m.get("mountPath"): m.get("name")
               for m in rc.get("volumeMounts") or []}
    if not claims:
        bad("StatefulSet/redis", "no volumeClaimTemplates")
    elif mounted.get(data_dir) not in claims:
        bad("StatefulSet/redis", "--dir %r is not on a volumeClaimTemplate"
            % data_dir)

    # -- Secret: placeholders only ------------------------------------------------
    for s in secrets.values():
        values = dict(s.get("stringData") or {})
        if s.get("data"):
            bad("Secret/%s" % s["metadata"]["name"], "use stringData "
                "placeholders, not data")
        for k, v in values.items():
            if str(v) != "REPLACE-ME":
                bad("Secret/%s" % s["metadata"]["name"], "key %s is not the "
                    "placeholder REPLACE-ME" % k)
    return bad.items


def secret_keys(s):
    return set((s.get("stringData") or {})) | set((s.get("data") or {}))


# -- podman kube play ------------------------------------------------------------

def play_documents(docs, image, redis_image, upstream, redis_url, api_key,
                   redis_password):
    """(btcstream docs, redis docs) for podman kube play 4.3."""
    by = {(d["kind"], d["metadata"]["name"]): d for _, d in docs}
    cms = {n: d for (k, n), d in by.items() if k == "ConfigMap"}
    secret_values = {"coindesk-api-key": api_key,
                     "redis-password": redis_password}

    def inline_env(container, extra):
        env = {}
        for ef in container.pop("envFrom", []) or []:
            ref = (ef.get("configMapRef") or {}).get("name")
            env.update({str(k): str(v) for k, v in
                        (cms[ref].get("data") or {}).items()})
        for e in container.get("env") or []:
            skr = (e.get("valueFrom") or {}).get("secretKeyRef")
            env[e["name"]] = secret_values[skr["key"]] if skr else \
                e.get("value")
        env.update(extra)
        container["env"] = [{"name": k, "value": v} for k, v in env.items()
                            if v is not None]

    dep = copy.deepcopy(by[("Deployment", "btcstream")])
    dep["spec"]["replicas"] = 1
    ps = dep["spec"]["template"]["spec"]
    c = ps["containers"][0]
    c["image"] = image
    c["imagePullPolicy"] = "Never"
    # Secret files -> the same values in the environment (test values only).
    ps["volumes"] = [v for v in ps.get("volumes") or [] if "secret" not in v]
    c["volumeMounts"] = [m for m in c.get("volumeMounts") or []
                         if m["name"] in {v["name"] for v in ps["volumes"]}]
    env_extra = {"BTCSTREAM_API_KEY_FILE": None,
                 "BTCSTREAM_REDIS_PASSWORD_FILE": None,
                 "COINDESK_API_KEY": api_key,
                 "BTCSTREAM_REDIS": redis_url,
                 "BTCSTREAM_UPSTREAM_URL": upstream,
                 "BTCSTREAM_INTERVAL": "300ms",
                 "BTCSTREAM_LEASE_TTL": "1s",
                 "BTCSTREAM_SHUTDOWN_GRACE": "1s"}
    inline_env(c, env_extra)
    c.pop("lifecycle", None)  # a preStop pause only slows `kube down`
    for p in ("startupProbe",):
        c.pop(p, None)

    sts = copy.deepcopy(by[("StatefulSet", "redis")])
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "redis",
                        "labels": sts["spec"]["template"]["metadata"][
                            "labels"]},
           "spec": copy.deepcopy(sts["spec"]["template"]["spec"])}
    rc = pod["spec"]["containers"][0]
    rc["image"] = redis_image
    rc["imagePullPolicy"] = "Never"
    inline_env(rc, {})
    # podman does not expand $(VAR) in args: put the value in.
    rc["args"] = [redis_password if a == "$(REDIS_PASSWORD)" else a
                  for a in rc.get("args") or []]
    # Probes run by systemd timers in podman; none here.
    rc.pop("readinessProbe", None)
    rc.pop("livenessProbe", None)
    pvcs, vols = [], []
    for t in sts["spec"].get("volumeClaimTemplates") or []:
        claim = "%s-redis-0" % t["metadata"]["name"]
        pvcs.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                     "metadata": {"name": claim},
                     "spec": copy.deepcopy(t["spec"])})
        vols.append({"name": t["metadata"]["name"],
                     "persistentVolumeClaim": {"claimName": claim}})
    pod["spec"]["volumes"] = (pod["spec"].get("volumes") or []) + vols
    return [dep], pvcs + [pod]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir", nargs="?", default=DEFAULT_DIR)
    ap.add_argument("--binary", default=os.environ.get("BTCSTREAM_BIN"))
    ap.add_argument("--play")
    ap.add_argument("--image")
    ap.add_argument("--redis-image")
    ap.add_argument("--upstream")
    ap.add_argument("--redis-url", default="redis://redis:6379")
    ap.add_argument("--api-key", default="test-key-not-for-logs")
    ap.add_argument("--redis-password", default="test-redis-password")
    args = ap.parse_args()
    docs = load(args.dir)
    flags = None
    if args.binary and os.access(args.binary, os.X_OK):
        flags = help_flags(args.binary)
    problems = check(docs, flags)
    for p in problems:
        print("check_k8s: %s" % p, file=sys.stderr)
    if problems:
        return 1
    kinds = sorted("%s/%s" % (d["kind"], d["metadata"]["name"])
                   for _, d in docs)
    print("check_k8s: %d objects OK%s: %s" % (
        len(docs), " (flags checked against %s)" % args.binary if flags
        else "", ", ".join(kinds)))
    if args.play:
        if not (args.image and args.redis_image and args.upstream):
            ap.error("--play needs --image, --redis-image and --upstream")
        node_docs, redis_docs = play_documents(
            docs, args.image, args.redis_image, args.upstream, args.redis_url,
            args.api_key, args.redis_password)
        with open(args.play, "w", encoding="utf-8") as f:
            yaml.safe_dump_all(node_docs, f, sort_keys=False)
        base = args.play[:-5] if args.play.endswith(".yaml") else args.play
        with open(base + ".redis.yaml", "w", encoding="utf-8") as f:
            yaml.safe_dump_all(redis_docs, f, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
