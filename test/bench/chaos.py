#!/usr/bin/env python3
"""Chaos soak of a btcstream cluster (issue 12), run by hand: a local Redis
(appendonly yes, appendfsync always), 3 nodes in cluster mode (`--interval
1s`, default lease), HAProxy in front (docs/deploy/haproxy.cfg rewritten for
loopback), 2,000 sse_load clients through it that resume with
Last-Event-ID, and Python reference clients that keep every frame, `gap`
events included (sse_load ignores those). Meanwhile, at seeded random
moments, one fault at a time:

    kill-leader    kill -9 the node that holds the lease; start it again
                   (same port, new --node-id) after 2-8 s
    stop-node      SIGSTOP a random node for lease + 2-8 s, then SIGCONT
    restart-redis  kill -9 redis-server; start it again from its AOF on the
                   same port after 1-5 s

    test/bench/chaos.py                       # 10 min, a random seed
    test/bench/chaos.py --seconds 300 --seed 7

It prints the seed and the schedule first (the same seed gives the same
schedule), then what happened, and at the end:

- sse_load: duplicates and out-of-order ids (must be 0), ids missing
  against what the other clients got, reconnects;
- the reference clients checked against the cluster's log in Redis: every
  id between a client's first and last one must have arrived exactly once
  or lie inside a `gap` event it got (requested < id < oldest): gaps
  without a `gap` event (must be 0), gaps with one, duplicates;
- the longest time without an update: between consecutive entries of the
  log (retrieval times) and as the reference clients saw it;
- the log's own chain (`prev` of each entry = the entry before).

Everything runs on free loopback ports and stops by itself; logs are kept
when something fails. See test/bench/README.md and docs/performance.md.
"""

import argparse
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402
from compare import (Balancers, Cluster, Procs, RefClient, Upstream,  # noqa
                     check_refs, log, log_pause, run_load,
                     sanitizer_reports, stop_all, table)

KINDS = ("kill-leader", "stop-node", "restart-redis")


def plan(seed, seconds, lease_s):
    """The schedule: rounds of the three faults in a shuffled order, each
    after a random pause of 15-45 s, until `seconds` are used. Durations
    are drawn here too, so the seed fixes everything but which node leads."""
    rng = random.Random(seed)
    out, t = [], 0.0
    while True:
        kinds = list(KINDS)
        rng.shuffle(kinds)
        for kind in kinds:
            t += rng.uniform(15, 45)
            if kind == "kill-leader":
                hold = rng.uniform(2, 8)
            elif kind == "stop-node":
                hold = lease_s + rng.uniform(2, 8)
            else:
                hold = rng.uniform(1, 5)
            node = rng.randrange(3)
            if t + hold + 15 > seconds:
                return out
            out.append({"at_s": round(t, 1), "kind": kind,
                        "hold_s": round(hold, 1), "node": node})
            t += hold + 10  # the fault, then recovery before the next pause


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=int, default=600)
    p.add_argument("--seed", type=int)
    p.add_argument("--clients", type=int, default=2000)
    p.add_argument("--ref-clients", type=int, default=50)
    p.add_argument("--lease-ttl", type=float, default=10.0,
                   help="the nodes' --lease-ttl in seconds (default: theirs)")
    p.add_argument("--btcstream", default=os.path.join(compare.ROOT,
                                                       "build/btcstream"))
    p.add_argument("--out", help="also write the JSON result here")
    args = p.parse_args()
    seed = args.seed if args.seed is not None else \
        random.SystemRandom().randrange(1 << 31)
    schedule = plan(seed, args.seconds, args.lease_ttl)
    print("chaos: seed %d, %d s, %d faults" % (seed, args.seconds,
                                               len(schedule)))
    for f in schedule:
        print("  at %6.1f s  %-13s hold %4.1f s%s" % (
            f["at_s"], f["kind"], f["hold_s"],
            "  node n%d" % (f["node"] + 1) if f["kind"] == "stop-node"
            else ""))
    sys.stdout.flush()

    work = tempfile.mkdtemp(prefix="btcstream-chaos.")
    procs = Procs(work)
    cl = lb = None
    refs = []
    happened = []
    try:
        up = Upstream(procs)
        extra = ["--shutdown-grace", "3s"]
        if args.lease_ttl != 10.0:
            extra += ["--lease-ttl", "%gs" % args.lease_ttl]
        cl = Cluster(work, up, args.btcstream, n=3, reuse_port=False,
                     extra=extra)
        lb = Balancers(work, [nd.port for nd in cl.nodes], count=1)
        for nd in cl.nodes:
            lb.wait_up(nd.name, 20)
        t0 = time.time()

        def note(what):
            happened.append((round(time.time() - t0, 2), what))
            log("chaos: %7.2f s %s" % (happened[-1][0], what))

        def chaos():
            nonlocal t0
            t0 = time.time()
            note("all %d clients connected; chaos starts" % args.clients)
            refs.extend(RefClient(lb.ports[0])
                        for _ in range(args.ref_clients))
            for r in refs:
                r.start()
            for f in schedule:
                wait = t0 + f["at_s"] - time.time()
                if wait > 0:
                    time.sleep(wait)
                if f["kind"] == "kill-leader":
                    nd = cl.leader()
                    if nd is None:
                        note("kill-leader: no node leads now; skipped")
                        continue
                    nd.kill9()
                    note("kill -9 %s (the leader)" % nd.node_id)
                    time.sleep(f["hold_s"])
                    nd.start()
                    note("%s started" % nd.node_id)
                    nd.wait_ready(60)
                    note("%s ready" % nd.node_id)
                elif f["kind"] == "stop-node":
                    nd = cl.nodes[f["node"]]
                    leader = nd.is_leader()
                    nd.signal(signal.SIGSTOP)
                    note("SIGSTOP %s%s" % (nd.node_id, " (the leader)"
                                           if leader else ""))
                    time.sleep(f["hold_s"])
                    nd.signal(signal.SIGCONT)
                    note("SIGCONT %s" % nd.node_id)
                else:
                    cl.redis.kill9()
                    note("kill -9 redis-server")
                    time.sleep(f["hold_s"])
                    cl.redis.start()
                    note("redis-server started from its AOF")
            rest = t0 + args.seconds - time.time()
            if rest > 0:
                time.sleep(rest)
            time.sleep(15)  # the last resumes settle
            note("end")
            for r in refs:
                r.stop()
            return happened

        r = run_load(work, cl, args.clients, 1000000, processes=1,
                     ports=lb.ports, sample_server=False,
                     extra=("--reconnect", "1", "--last-event-id", "1"),
                     duration=args.seconds + 300, probe=chaos,
                     interrupt_after_probe=True)
        for ref in refs:
            ref.join(5)
        entries = cl.log_entries()
        r["seed"] = seed
        r["schedule"] = schedule
        r["happened"] = happened
        r["refs"] = check_refs(refs, entries)
        r["log"] = log_pause(entries, int(t0 * 1000))
        r["nodes_alive_at_end"] = [nd.running() for nd in cl.nodes]
        r["sanitizer_reports"] = sum(
            (sanitizer_reports(os.path.join(work, f)) for f in
             os.listdir(work) if f.startswith("n") and f.endswith(".log")),
            [])
        counters = {}
        for nd in cl.nodes:
            for name in ("btcstream_cluster_holes_total",
                         "btcstream_gap_events_total",
                         "btcstream_cluster_lease_acquisitions_total"):
                try:
                    v = nd.metric(name)
                except Exception:  # noqa: BLE001
                    v = None
                counters.setdefault(name, {})[nd.node_id] = v
        r["node_counters"] = counters
        table("chaos: %d clients through HAProxy, %d s, seed %d"
              % (args.clients, args.seconds, seed), [("btcstream x3", r)])
        print("chaos: sse_load duplicates %s, out of order %s, missing %s, "
              "reconnects %s, replayed %s, reconnect errors %s" % (
                  r.get("order_duplicates"), r.get("order_out_of_order"),
                  r.get("events_missing"), r.get("errors_reconnects"),
                  r.get("events_replayed"), {
                      k: r.get("reconnect_" + k) for k in (
                          "refused", "timeout", "reset", "status",
                          "other")}))
        print("chaos: reference clients " + json.dumps(r["refs"]))
        print("chaos: log " + json.dumps(r["log"]))
        print("chaos: node counters " + json.dumps(counters))
        print("chaos: what happened")
        for t, what in happened:
            print("  %7.2f s  %s" % (t, what))
        line = json.dumps(r, sort_keys=True)
        print(line)
        if args.out:
            with open(args.out, "w") as f:
                f.write(line + "\n")
        shutil.rmtree(work, ignore_errors=True)
    except Exception:
        log("chaos: failed; logs kept in %s" % work)
        raise
    finally:
        stop_all(refs, lb, cl, procs)


if __name__ == "__main__":
    main()
