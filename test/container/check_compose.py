#!/usr/bin/env python3
"""Checks docs/deploy/compose.yaml: YAML syntax and the shape of the one-node
deployment (the image, port 8080, the API key passed through and never given
a value, the health check, SIGTERM, limits).

Usage: check_compose.py COMPOSE_FILE [HELP_TEXT_FILE]
With HELP_TEXT_FILE (the output of `btcstream --help`), every BTCSTREAM_<FLAG>
variable the file sets must name a flag the binary has.
"""

import os
import re
import sys

import yaml


def fail(msg):
    print("check_compose: %s" % msg, file=sys.stderr)
    sys.exit(1)


def env_map(env):
    """Compose allows a list of NAME[=VALUE] or a mapping."""
    out = {}
    if isinstance(env, dict):
        for k, v in env.items():
            out[str(k)] = None if v is None else str(v)
    elif isinstance(env, list):
        for item in env:
            name, sep, value = str(item).partition("=")
            out[name] = value if sep else None
    else:
        fail("environment: expected a list or a mapping")
    return out


def main(argv):
    if len(argv) < 2:
        fail("usage: check_compose.py COMPOSE_FILE [HELP_TEXT_FILE]")
    path = argv[1]
    with open(path, encoding="utf-8") as f:
        try:
            doc = yaml.safe_load(f)
        except yaml.YAMLError as e:
            fail("%s: not valid YAML: %s" % (path, e))
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict):
        fail("no services mapping")
    services = doc["services"]
    if len(services) != 1:
        fail("expected one service (one node), got %d" % len(services))
    name, svc = next(iter(services.items()))
    if not isinstance(svc, dict):
        fail("service %s: not a mapping" % name)

    if not svc.get("image"):
        fail("service %s: no image" % name)
    build = svc.get("build")
    if build is not None:
        if isinstance(build, str):
            build = {"context": build}
        context = os.path.normpath(
            os.path.join(os.path.dirname(os.path.abspath(path)),
                         build.get("context", ".")))
        dockerfile = os.path.join(context, build.get("dockerfile", "Dockerfile"))
        if not os.path.isfile(dockerfile):
            fail("build: %s does not exist" % dockerfile)

    ports = [str(p) for p in svc.get("ports", [])]
    if not any(re.fullmatch(r"(?:[\d.]+:)?\d+:8080(?:/tcp)?", p) for p in ports):
        fail("ports: nothing published to container port 8080: %r" % ports)

    env = env_map(svc.get("environment", []))
    if "COINDESK_API_KEY" not in env:
        fail("environment: COINDESK_API_KEY is not passed through")
    for key in ("COINDESK_API_KEY", "BTCSTREAM_API_KEY"):
        value = env.get(key)
        if value is not None and not re.fullmatch(r"\$\{?\w+(?::?-)?\}?", value):
            fail("environment: %s has a literal value; pass it through from "
                 "the environment instead" % key)
    for key, value in env.items():
        if not (key == "COINDESK_API_KEY" or key.startswith("BTCSTREAM_")):
            fail("environment: unexpected variable %s" % key)

    if len(argv) > 2:
        with open(argv[2], encoding="utf-8") as f:
            flags = set(re.findall(r"--([a-z][a-z0-9-]*)", f.read()))
        for key in env:
            if key.startswith("BTCSTREAM_"):
                flag = key[len("BTCSTREAM_"):].lower().replace("_", "-")
                if flag not in flags:
                    fail("environment: %s names no flag of btcstream "
                         "(--%s)" % (key, flag))

    hc = svc.get("healthcheck")
    if not isinstance(hc, dict):
        fail("no healthcheck")
    test = hc.get("test")
    test_text = " ".join(test) if isinstance(test, list) else str(test)
    if "--healthcheck" not in test_text:
        fail("healthcheck.test does not run btcstream --healthcheck: %r" % test)
    for key in ("interval", "timeout", "retries"):
        if key not in hc:
            fail("healthcheck: no %s" % key)

    if svc.get("stop_signal", "SIGTERM") != "SIGTERM":
        fail("stop_signal: expected SIGTERM")
    if not svc.get("restart"):
        fail("no restart policy")
    print("check_compose: %s: ok (service %s, image %s)"
          % (path, name, svc["image"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
