#!/usr/bin/env python3
"""dockerd faults against a real engine: SIGSTOP (hung), SIGKILL + restart (down, then up), and an
agent started while dockerd is stopped.

The engine is shared with other users (benchmarks use containers named tbench-*), so the windows
are short (each bounded by the deadlines below) and dockerd is always continued or restarted
afterwards: in a `finally` here, and again by the runner after every test. A killed dockerd is
restarted with its own command line plus --live-restore (see harness.Dockerd), so containers
keep running across the restart.
"""

import signal
import time

import harness as h
from harness import check, note


def _state(m):
    return {s.labels.get("state"): s.value for s in m.samples("tether_docker_state")}


def _named(a, cid, name):
    m = a.scrape()
    return m if m.get("container_last_seen", id=h.of_container(cid), name=name) is not None else None


def test_sigstop_then_kill_and_restart():
    d = h.docker
    burn = d.run("fault-burn", "while :; do :; done", host_config={"NanoCpus": 200000000})
    name = "tit-%s-fault-burn" % h.OWNER
    a = h.Agent().start()
    h.wait_until(lambda: _named(a, burn, name), 15 * h.slack(), "the burner named in /metrics")
    m = a.scrape()
    check(m.value("tether_docker_up") == 1 and _state(m).get("up") == 1, "docker not up at start: %s" % _state(m))
    check(m.value("tether_containerd_up") == 1, "containerd not up at start")

    # ---- SIGSTOP: hung, while collection goes on.
    slowest = [0.0]

    def scrape_timed():
        t = time.monotonic()
        mm = a.scrape(timeout=3 * h.slack())
        slowest[0] = max(slowest[0], time.monotonic() - t)
        return mm

    t_stop = time.monotonic()
    h.dockerd.sigstop()
    try:
        def hung():
            mm = scrape_timed()
            return mm if _state(mm).get("hung") == 1 and mm.value("tether_docker_up") == 0 else None
        m1 = h.wait_until(hung, 10 * h.slack(), "tether_docker_state{state=\"hung\"} = 1 after SIGSTOP", step=0.25)
        note("hung detected %.1fs after SIGSTOP" % (time.monotonic() - t_stop))
        c1 = m1.value("tether_collections_total")
        u1 = m1.value("container_cpu_usage_seconds_total", id=h.of_container(burn), cpu="total")

        def moving():
            mm = scrape_timed()
            check(_state(mm).get("hung") == 1, "state left 'hung' while dockerd is still stopped: %s" % _state(mm))
            return mm if mm.value("tether_collections_total") >= c1 + 2 and mm.value(
                "container_cpu_usage_seconds_total", id=h.of_container(burn), cpu="total") > u1 else None
        h.wait_until(moving, 5 * h.slack(), "2 more collections and the burner's CPU moving while dockerd is stopped")
        st = a.state(timeout=2 * h.slack())
        check(st["docker"].get("state") == "hung", "/debug/state docker while stopped: %s" % st["docker"])
        check(slowest[0] < 1.0 * h.slack(), "a /metrics scrape took %.2fs while dockerd was stopped (limit %.1fs)"
              % (slowest[0], h.slack()))
    finally:
        h.dockerd.sigcont()
    t_cont = time.monotonic()

    def up(mm=None):
        mm = mm or a.scrape()
        return mm if _state(mm).get("up") == 1 and mm.value("tether_docker_up") == 1 else None
    h.wait_until(up, 15 * h.slack(), "docker up again after SIGCONT")
    note("up again %.1fs after SIGCONT" % (time.monotonic() - t_cont))

    # ---- SIGKILL dockerd (and its own containerd): down; then restart: up, new containers seen.
    pre = d.run("fault-pre", "sleep 600")
    h.wait_until(lambda: _named(a, pre, "tit-%s-fault-pre" % h.OWNER), 15 * h.slack(), "fault-pre named")
    t_kill = time.monotonic()
    h.dockerd.kill()
    try:
        def down():
            mm = scrape_timed()
            return mm if _state(mm).get("down") == 1 and mm.value("tether_docker_up") == 0 else None
        m3 = h.wait_until(down, 10 * h.slack(), "tether_docker_state{state=\"down\"} = 1 after killing dockerd",
                          step=0.25)
        note("down detected %.1fs after the kill" % (time.monotonic() - t_kill))
        h.wait_until(lambda: a.scrape().value("tether_containerd_up") == 0, 10 * h.slack(),
                     "tether_containerd_up = 0 after killing containerd")
        c3 = m3.value("tether_collections_total")
        u3 = m3.value("container_cpu_usage_seconds_total", id=h.of_container(burn), cpu="total")
        h.wait_until(lambda: a.scrape().value("tether_collections_total") >= c3 + 2 and a.scrape().value(
            "container_cpu_usage_seconds_total", id=h.of_container(burn), cpu="total") > u3, 5 * h.slack(),
            "collections and the burner (running under its shim) measured while dockerd is down")
    finally:
        if not h.docker.ping():
            h.dockerd.restart()
    t_up = time.monotonic()
    h.wait_until(up, 20 * h.slack(), "docker up after dockerd restarted")
    h.wait_until(lambda: a.scrape().value("tether_containerd_up") == 1, 20 * h.slack(), "containerd up again")
    note("up %.1fs after the restart" % (time.monotonic() - t_up))

    after = d.run("fault-after", "sleep 600")
    h.wait_until(lambda: _named(a, after, "tit-%s-fault-after" % h.OWNER), 15 * h.slack(),
                 "a container created after the restart, named in /metrics")
    if h.LIVE_RESTORE:
        # Containers survived the restart (--live-restore): still measured, still named.
        check(d.inspect(burn)["State"]["Running"], "the burner did not survive the restart")
        m5 = h.wait_until(lambda: _named(a, burn, name), 10 * h.slack(), "the burner still named after the restart")
        check(m5.get("container_last_seen", id=h.of_container(pre)) is not None,
              "fault-pre no longer in /metrics after the restart")
    a.stop()


def test_start_while_dockerd_stopped():
    d = h.docker
    burn = d.run("hung-burn", "while :; do :; done", host_config={"NanoCpus": 200000000})
    name = "tit-%s-hung-burn" % h.OWNER
    h.CgroupFiles(burn)   # its cgroup exists before dockerd stops
    h.dockerd.sigstop()
    try:
        a = h.Agent()
        a.start(wait=False)
        limit = 1.0 if h.slack() <= 1.0 else 0.75 * h.slack()

        def answers():
            check(a.alive(), "agent exited: %s" % a.log_tail())
            return a.get("/metrics", timeout=0.3)[0] == 200
        h.wait_until(answers, 5, "/metrics of an agent started while dockerd is stopped", step=0.02)
        first = time.monotonic() - a.started_at
        note("/metrics answered %.3fs after the start" % first)
        check(first <= limit, "/metrics answered only %.2fs after the start (want <= %.1fs)" % (first, limit))
        t = time.monotonic()
        st = a.state(timeout=limit)
        check(time.monotonic() - t <= limit and isinstance(st.get("containers"), list),
              "/debug/state while dockerd is stopped: %s" % str(st)[:300])

        def by_id():
            m = a.scrape()
            ss = m.samples("container_last_seen", id=h.of_container(burn))
            return m if ss else None
        m = h.wait_until(by_id, 6 * h.slack(), "the burner found by the cgroup scan (labelled by id)")
        lab = m.samples("container_last_seen", id=h.of_container(burn))[0].labels
        check(lab.get("name", "") in ("", burn, burn[:12]), "name label %r before any inspect could answer"
              % lab.get("name"))
        h.wait_until(lambda: _state(a.scrape()).get("hung") == 1, 6 * h.slack(),
                     "tether_docker_state{state=\"hung\"} while dockerd is stopped")
        check(a.scrape().value("tether_docker_up") == 0, "tether_docker_up != 0 while dockerd is stopped")
    finally:
        h.dockerd.sigcont()
    h.wait_until(lambda: _named(a, burn, name), 20 * h.slack(), "the burner's name after SIGCONT")
    h.wait_until(lambda: _state(a.scrape()).get("up") == 1, 10 * h.slack(), "docker up after SIGCONT")
    a.stop(sig=signal.SIGTERM)


if __name__ == "__main__":
    h.main(globals())
