#!/usr/bin/env python3
"""Churn: hundreds of containers created, started and destroyed (10 in parallel) while the agent
runs at --interval 1 and is scraped every 0.5 s.

Afterwards the agent must be back where it was (baseline taken after a warm-up churn of 30, so
allocator arenas and connection pools already exist): no fd left open on a removed container's
cgroup files, at most one /proc/<pid>/ fd (net/dev) per known container, fds not tied to any
container within 2 of the baseline, and RSS within max(2 MiB, 10%) of
the baseline plus 32 KiB per container known beyond the baseline (other users of the engine may
add containers meanwhile). RSS is not checked with the ASan build, whose quarantine holds freed
memory on purpose: LeakSanitizer checks it at exit instead.
Every destroyed container leaves /metrics and /debug/state, the agent's table matches the
cgroup tree again, every page scraped during the churn is valid, and the agent inspects each
container about once.
"""

import os
import random
import re
import threading
import time

import harness as h
from harness import check, note

CYCLES = int(os.environ.get("TETHER_IT_CHURN", "300"))
PARALLEL = 10
WARMUP = 30


def churn(tag, n):
    """n create/start/destroy cycles, PARALLEL at a time; returns (ids, errors)."""
    ids = []
    errors = []
    lock = threading.Lock()
    counter = iter(range(n))

    def worker():
        rnd = random.Random()
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            try:
                cid = h.docker.run("%s-%d" % (tag, i), ["sleep", "60"], labels={"tit.role": "churn"})
                with lock:
                    ids.append(cid)
                time.sleep(1.0 + rnd.random())
                h.docker.remove(cid)
                h._current.containers.remove(cid)
            except Exception as e:  # noqa: BLE001
                with lock:
                    errors.append(repr(e))
    ts = [threading.Thread(target=worker) for _ in range(PARALLEL)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return ids, errors


HEX64 = re.compile(r"[0-9a-f]{64}")


def classify_fds(pid):
    """The agent's fds by target: (stale, procfs, other, total).

    stale: fds whose target names a container id whose cgroup is gone (kept-open cgroup files of
    a removed container). procfs: fds on /proc/<pid>/... of other processes (the kept-open
    net/dev of each container; the pid may be a child that has exited since, which is fine:
    the open file keeps reading the container's network namespace, so these are judged by
    count, at most one per known container). other: everything else (sockets, pipes, the
    cgroup root, ...)."""
    live = h.docker_cgroups()
    stale, procfs, other, total = [], 0, 0, 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        total += 1
        m = HEX64.search(target)
        pm = re.match(r"/proc/(\d+)/", target)
        if m:
            if m.group(0) not in live:
                stale.append(target)
        elif pm and int(pm.group(1)) != pid:
            procfs += 1
        else:
            other += 1
    return stale, procfs, other, total


def test_churn():
    watcher = h.CgroupWatcher()
    watcher.start()
    h.on_cleanup(watcher.stop)
    a = h.Agent().start()
    a.wait_collections(1)

    # Warm-up, then the baseline.
    ids, errors = churn("warm", WARMUP)
    check(not errors, "warm-up churn: docker errors: %s" % errors[:3])
    h.wait_until(lambda: not any(any(c in i for c in ids) for i in a.scrape().container_ids()),
                 20 * h.slack(), "warm-up containers to leave /metrics")
    a.wait_collections(3)
    _, _, base_other, base_fds = classify_fds(a.pid)
    base_rss = a.rss_bytes()
    m0 = a.scrape()
    base_known = m0.value("tether_containers")
    inspects0 = m0.get("tether_docker_requests_total", 0, kind="inspect")
    note("baseline after warm-up: %d fds (%d not tied to a container), RSS %.1f MiB, %d containers known, "
         "%d inspects so far" % (base_fds, base_other, base_rss / 2**20, base_known, inspects0))

    # The churn, with a scraper checking every page.
    stop = threading.Event()
    seen_named = set()
    scrape_errors = []
    pages = [0]

    def scraper():
        while not stop.is_set():
            try:
                m = a.scrape(timeout=5 * h.slack())
                pages[0] += 1
                for s in m.samples("container_last_seen"):
                    if s.labels.get("name", "").startswith("tit-%s-churn-" % h.OWNER):
                        seen_named.add(s.labels["id"])
            except Exception as e:  # noqa: BLE001
                scrape_errors.append(repr(e))
            stop.wait(0.5)
    st = threading.Thread(target=scraper)
    st.start()
    t0 = time.monotonic()
    try:
        ids, errors = churn("churn", CYCLES)
    finally:
        stop.set()
        st.join()
    dt = time.monotonic() - t0
    note("%d cycles in %.0fs; %d pages scraped; %d containers seen with their name (%.0f%%)"
         % (len(ids), dt, pages[0], len(seen_named), 100.0 * len(seen_named) / max(1, len(ids))))
    check(not errors, "churn: docker errors: %s" % errors[:3])
    check(not scrape_errors, "scrapes during the churn failed: %s" % scrape_errors[:3])
    check(seen_named, "no churn container ever appeared in /metrics with its name")

    # Destroyed containers leave /metrics and /debug/state.
    idset = set(ids)

    left = []

    def gone():
        m = a.scrape()
        left[:] = [i for i in m.container_ids() if i.rsplit("/", 1)[-1] in idset]
        left.extend("state:" + c.get("id", "") for c in a.state()["containers"] if c.get("id") in idset)
        return None if left else m
    try:
        m = h.wait_until(gone, 30 * h.slack(), "destroyed containers to leave /metrics and /debug/state")
    except h.TestFailure as e:
        raise h.TestFailure("%s; still listed: %s" % (e, left[:10]))
    inspects = m.get("tether_docker_requests_total", 0, kind="inspect") - inspects0
    # Containers other users started meanwhile are inspected too (dockerd's event log keeps only
    # the last 256 events, so they are counted from the cgroup watcher instead).
    others = {i for i, t in list(watcher.first_seen.items()) if t >= t0 and i not in idset}
    note("inspects during the churn: %d for %d containers (+%d created by others)"
         % (inspects, len(ids), len(others)))
    check(inspects <= 1.5 * (len(ids) + len(others)) + 20, "%d inspects for %d containers (want about one each)"
          % (inspects, len(ids) + len(others)))

    # The table matches the cgroup tree again, other users' containers included. Others may be
    # creating and removing containers right now, so: every container the agent lists has a
    # cgroup (or had one within the last 3 s), and every cgroup that has existed for longer than
    # a rescan period (+2 s) is listed.
    mismatch = {}

    def table_matches():
        st = a.state()
        now = time.monotonic()
        listed = {c.get("id") for c in st["containers"]}
        phantom = {i for i in listed if now - watcher.last_seen.get(i, -1e9) > 3}
        settled = now - 2 - 4 * a.interval     # rescan every 3 intervals by default
        missing = {i for i, t in watcher.first_seen.items()
                   if t < settled and now - watcher.last_seen[i] < 0.5 and i not in listed}
        mismatch.update(phantom=sorted(phantom)[:5], missing=sorted(missing)[:5])
        return not phantom and not missing
    try:
        h.wait_until(table_matches, 20 * h.slack(), "the agent's containers to match the docker cgroups")
    except h.TestFailure as e:
        raise h.TestFailure("%s: listed without a cgroup %s, cgroups not listed %s"
                            % (e, mismatch.get("phantom"), mismatch.get("missing")))

    # Resources back to the baseline. Other users of the engine may have added or removed
    # containers meanwhile, so fds are judged by what they point to, and the RSS margin grows
    # by 32 KiB per container known beyond the baseline.
    a.wait_collections(3)
    stale, procfs, other, fds = classify_fds(a.pid)
    rss = a.rss_bytes()
    known = a.scrape().value("tether_containers")
    note("after the churn: %d fds (%d not tied to a container, baseline %d/%d), RSS %.1f MiB (baseline %.1f MiB), "
         "%d containers known (baseline %d)" % (fds, other, base_fds, base_other, rss / 2**20, base_rss / 2**20,
                                                known, base_known))
    check(not stale, "%d fds still open on removed containers' files after %d containers: %s"
          % (len(stale), len(ids), stale[:10]))
    check(procfs <= known, "%d fds open on /proc/<pid>/ files for %d known containers (net/dev kept open "
          "for removed containers?)" % (procfs, known))
    check(other <= base_other + 2, "fds not tied to a container grew from %d to %d after %d containers"
          % (base_other, other, len(ids)))
    if not h.LEAK_CHECK:
        margin = max(2 << 20, 0.10 * base_rss) + max(0, known - base_known) * 32 * 1024
        check(rss <= base_rss + margin, "RSS grew from %.1f MiB to %.1f MiB after %d containers (margin %.1f MiB)"
              % (base_rss / 2**20, rss / 2**20, len(ids), margin / 2**20))


if __name__ == "__main__":
    h.main(globals())
