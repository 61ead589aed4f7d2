#!/usr/bin/env python3
"""Basic behaviour of `tether agent`: command line, /metrics format (strict parser and promtool),
the families and labels dashboards expect, self metrics against /proc, /debug/state, SIGUSR1,
clean exit on SIGTERM and SIGINT, --percpu."""

import http.client
import os
import re
import signal
import socket
import subprocess
import threading

import harness as h
from harness import check, note

# Families every container gets on a cgroup v1 host like this one (PSI and block IO are not
# accounted per cgroup here; they are checked on fixtures by the unit tests).
CONTAINER_FAMILIES = [
    "container_cpu_usage_seconds_total", "container_cpu_user_seconds_total",
    "container_cpu_system_seconds_total", "container_cpu_cfs_periods_total",
    "container_cpu_cfs_throttled_periods_total", "container_cpu_cfs_throttled_seconds_total",
    "container_memory_usage_bytes", "container_memory_working_set_bytes", "container_memory_rss",
    "container_memory_cache", "container_memory_mapped_file", "container_memory_max_usage_bytes",
    "container_memory_failcnt", "container_spec_memory_limit_bytes",
    "container_network_receive_bytes_total", "container_network_transmit_bytes_total",
    "container_network_receive_packets_total", "container_network_transmit_packets_total",
    "container_network_receive_packets_dropped_total", "container_network_transmit_packets_dropped_total",
    "container_network_receive_errors_total", "container_network_transmit_errors_total",
    "container_processes", "container_threads", "container_last_seen", "container_start_time_seconds",
]
SELF_FAMILIES = [
    "tether_docker_up", "tether_docker_state", "tether_docker_ping_seconds", "tether_containerd_up",
    "tether_containers", "tether_threads", "tether_open_fds", "tether_rss_bytes",
    "tether_loop_lag_seconds", "tether_collection_duration_seconds", "tether_collections_total",
    "tether_docker_requests_total",
]
# promtool lint findings that are accepted because cAdvisor's names are kept for compatibility
# (see README.md): container_memory_failcnt is a counter without the _total suffix.
LINT_EXCEPTIONS = ("container_memory_failcnt",)


def run_cli(*args, timeout=10):
    p = subprocess.run([h.BINARY] + list(args), capture_output=True, timeout=timeout * h.slack(),
                       env=dict(os.environ, ASAN_OPTIONS="detect_leaks=1"))
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def find_key(obj, key):
    """Every value stored under `key` at any depth of a JSON document, if it is a list."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == key and isinstance(v, list):
                out.append(v)
            out += find_key(v, key)
    elif isinstance(obj, list):
        for v in obj:
            out += find_key(v, key)
    return out


def test_cli():
    for args in (["version"], ["--version"]):
        rc, out, err = run_cli(*args)
        check(rc == 0 and re.match(r"tether \d+\.\d+\.\d+", out),
              "tether %s: rc %d, stdout %r, stderr %r" % (args[0], rc, out, err))
    rc, out, err = run_cli("help")
    check(rc == 0 and "agent" in out, "tether help: rc %d, %r" % (rc, out))
    rc, out, err = run_cli()
    check(rc == 2 and "usage" in err, "tether without a command: rc %d (want 2), stderr %r" % (rc, err))
    rc, out, err = run_cli("no-such-command")
    check(rc == 2, "unknown command: rc %d (want 2)" % rc)
    rc, out, err = run_cli("agent", "--help")
    check(rc == 0, "agent --help: rc %d" % rc)
    for opt in ("--listen", "--interval", "--docker", "--containerd", "--cgroup-root", "--proc-root",
                "--falcon-url", "--falcon-endpoint", "--label", "--percpu", "--rescan", "--log-level"):
        check(opt in out, "agent --help does not mention %s" % opt)
    # Bad options end the process at once with a message and a non-zero status.
    for bad in (["--interval", "0"], ["--interval", "x"], ["--rescan", "0"], ["--log-level", "loud"],
                ["--no-such-option"], ["stray-argument"]):
        rc, out, err = run_cli("agent", "--listen", "127.0.0.1:0", *bad)
        check(rc != 0 and err.strip(), "agent %s: rc %d, stderr %r (want an error)" % (" ".join(bad), rc, err))
    # A port already in use is a start-up error, not a hang.
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        rc, out, err = run_cli("agent", "--listen", "127.0.0.1:%d" % busy.getsockname()[1], "--interval", "1")
        check(rc != 0 and "listen" in err.lower(), "agent on a busy port: rc %d, stderr %r" % (rc, err[-300:]))
    finally:
        busy.close()


def test_metrics_page():
    cid = h.docker.run("basic", "while :; do sleep 1; done", labels={"tit.role": "basic"})
    name = "tit-%s-basic" % h.OWNER
    a = h.Agent("--label", "tit.role").start()

    def named():
        m = a.scrape()
        return m if m.get("container_last_seen", id=h.of_container(cid), name=name) is not None else None
    m = h.wait_until(named, 15 * h.slack(), "container %s with its name in /metrics" % name)

    for fam in CONTAINER_FAMILIES + SELF_FAMILIES:
        check(m.has_family(fam), "family %s missing from /metrics" % fam)
    for fam, f in m.families.items():
        check(f.help is not None and f.type is not None, "family %s lacks HELP or TYPE" % fam)
        if fam.startswith("container_"):
            for s in f.samples:
                check(s.labels.get("id"), "%s sample without an id label: %s" % (fam, s))
                check("name" in s.labels and "image" in s.labels,
                      "%s sample without name/image labels: %s" % (fam, s))
    check(m.value("container_cpu_usage_seconds_total", id=h.of_container(cid), cpu="total") >= 0,
          "no cpu=\"total\" usage series for the container")
    check(m.get("container_memory_usage_bytes", id=h.of_container(cid), image=h.IMAGE,
                container_label_tit_role="basic") is not None,
          "image label or container_label_tit_role missing on the container's series")
    check(not any("container_label_tit_owner" in s.labels for s in m.samples("container_last_seen")),
          "container_label_tit_owner exported although only --label tit.role was asked for")
    ids = [s.labels["id"] for s in m.samples("container_last_seen", id=h.of_container(cid))]
    check(ids == ["/docker/" + cid] or ids[0].endswith(cid) or ids[0].endswith(cid + ".scope"),
          "id label %r is not the container's cgroup path" % ids)

    # Docker health and self metrics.
    check(m.value("tether_docker_up") == 1, "tether_docker_up != 1 with a healthy dockerd")
    check(m.value("tether_docker_state", state="up") == 1, "tether_docker_state{state=\"up\"} != 1")
    for st in ("hung", "down"):
        check(m.get("tether_docker_state", 0, state=st) == 0, "tether_docker_state{state=%r} != 0" % st)
    check(m.value("tether_containerd_up") == 1, "tether_containerd_up != 1 (containerd is running)")
    check(m.value("tether_containers") >= 1, "tether_containers < 1")
    check(m.value("tether_collections_total") >= 1, "no collection counted")
    check(m.value("tether_threads") == a.threads(), "tether_threads %s != /proc threads %d"
          % (m.value("tether_threads"), a.threads()))
    fds = a.fd_count()
    check(abs(m.value("tether_open_fds") - fds) <= 3, "tether_open_fds %s vs /proc/%d/fd %d"
          % (m.value("tether_open_fds"), a.pid, fds))
    rss = a.rss_bytes()
    check(abs(m.value("tether_rss_bytes") - rss) <= max(0.25 * rss, 2 << 20),
          "tether_rss_bytes %s vs VmRSS %d" % (m.value("tether_rss_bytes"), rss))
    check(m.value("tether_docker_ping_seconds") < 1.0, "ping of a healthy dockerd took %ss"
          % m.value("tether_docker_ping_seconds"))
    check(m.value("tether_collection_duration_seconds_count") >= 1, "collection histogram empty")

    rc, lines = h.promtool_check(m.text)
    check(rc in (0, 3), "promtool check metrics: exit %d (1 = parse error): %s" % (rc, lines[:10]))
    if rc == 3:
        bad = [l for l in lines if not any(e in l for e in LINT_EXCEPTIONS)]
        check(not bad, "promtool lint findings beyond the documented exceptions: %s" % bad[:10])
    note("promtool: exit %d %s" % (rc, lines[:3]))

    status, _, _ = a.get("/no-such-page")
    check(status == 404, "GET /no-such-page answered %d (want 404)" % status)
    status, _, body = a.get("/healthz")
    check(status == 200, "GET /healthz answered %d" % status)

    # SIGUSR1: the same dump on stderr; the agent keeps serving.
    before = len(a.log_text())
    a.send(signal.SIGUSR1)
    h.wait_until(lambda: cid[:12] in a.log_text()[before:] and "containers" in a.log_text()[before:],
                 5 * h.slack(), "the SIGUSR1 state dump in the log")
    a.scrape()

    st = a.state()
    # Contract: containers, connections, requests (in flight), timers and docker's state. The
    # containers list and docker are top-level members; the other three may be nested (e.g.
    # per HTTP client), and timers may be the loop's handle walk (entries of type "timer").
    for key in ("containers", "docker"):
        check(key in st, "/debug/state has no %r member (keys: %s)" % (key, sorted(st)))
    for key in ("connections", "requests"):
        check(find_key(st, key), "/debug/state has no %r list anywhere (top-level keys: %s)" % (key, sorted(st)))
    check(find_key(st, "timers") or any(isinstance(x, dict) and x.get("type") == "timer"
                                        for v in find_key(st, "loop_handles") for x in v),
          "/debug/state shows no timers (neither a 'timers' list nor timer entries in a handle walk)")
    mine = [c for c in st["containers"] if c.get("id") == cid]
    check(len(mine) == 1, "/debug/state containers: ours (%s) appears %d times" % (cid[:12], len(mine)))
    check(mine[0].get("name") == name and mine[0].get("image") == h.IMAGE and cid in mine[0].get("cgroup", ""),
          "/debug/state entry for our container: %s" % mine[0])
    check(isinstance(st["docker"], dict) and st["docker"].get("state") == "up",
          "/debug/state docker: %s" % st["docker"])
    a.stop()    # SIGTERM: must exit 0 without sanitizer reports


def test_sigint_clean_exit():
    a = h.Agent().start()
    a.wait_collections(2)
    a.stop(sig=signal.SIGINT)


def test_concurrent_scrapes():
    """20 scrapes at once, plus HTTP/1.0 and keep-alive: every page complete and valid."""
    a = h.Agent().start()
    a.wait_collections(1)
    errors = []

    def one():
        try:
            a.scrape(timeout=10 * h.slack())
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
    ts = [threading.Thread(target=one) for _ in range(20)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(not errors, "concurrent scrapes failed: %s" % errors[:3])
    # HTTP/1.0 (close-delimited body) and a keep-alive connection reused for 3 requests.
    s = socket.create_connection(("127.0.0.1", a.port), timeout=5)
    s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    check(head.startswith(b"HTTP/1.") and b" 200 " in head.split(b"\r\n")[0], "HTTP/1.0 answer: %r" % head[:100])
    h.parse_exposition(body.decode())
    c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=5)
    for _ in range(3):
        c.request("GET", "/metrics")
        r = c.getresponse()
        h.parse_exposition(r.read().decode())
    c.close()


def test_percpu():
    cid = h.docker.run("percpu", "while :; do :; done", host_config={"NanoCpus": 300000000})
    a = h.Agent("--percpu").start()
    ncpu = os.cpu_count()

    def series():
        m = a.scrape()
        ss = m.samples("container_cpu_usage_seconds_total", id=h.of_container(cid))
        return (m, ss) if len(ss) >= ncpu else None
    m, ss = h.wait_until(series, 10 * h.slack(), "per-cpu usage series")
    cpus = sorted(s.labels.get("cpu", "") for s in ss if s.labels.get("cpu") != "total")
    want = ["cpu%02d" % i for i in range(ncpu)]
    check(cpus == want, "per-cpu labels %s (want %s)" % (cpus, want))
    check(sum(s.value for s in ss if s.labels.get("cpu") != "total") > 0, "per-cpu usage all zero")


def test_fd_budget():
    """With a small open-file limit the agent keeps files open for the containers that fit its
    budget and still measures every container (the rest with readers opened per cycle)."""
    cids = [h.docker.run("fdb%d" % i, "while :; do sleep 1; done") for i in range(3)]
    wrapper = os.path.join(h.LOG_ROOT, "tether-nofile-%d.sh" % os.getpid())
    with open(wrapper, "w") as f:
        # exec keeps the pid; 100 fds -> a reader budget of 50: two containers fit, the third does not
        f.write('#!/bin/sh\nulimit -n 100\nexec %s "$@"\n' % os.path.abspath(h.BINARY))
    os.chmod(wrapper, 0o755)
    h.on_cleanup(lambda: os.unlink(wrapper))
    a = h.Agent(binary=wrapper).start()

    def all_measured():
        m = a.scrape()
        got = [c for c in cids if m.samples("container_memory_usage_bytes", id=h.of_container(c))]
        return m if len(got) == len(cids) else None
    h.wait_until(all_measured, 15 * h.slack(), "every container measured under the fd budget")
    agent = a.state()["agent"]
    check(agent["reader_fd_budget"] == 50, "fd budget %s (want 50 with 100 files)" % agent["reader_fd_budget"])
    check(agent["reader_fds"] <= agent["reader_fd_budget"], "readers keep %d fds over the budget %d"
          % (agent["reader_fds"], agent["reader_fd_budget"]))
    check(agent["transient_reads"] > 0, "no transient reads although the budget is spent")
    check(a.fd_count() < 100, "agent holds %d fds with a limit of 100" % a.fd_count())


if __name__ == "__main__":
    h.main(globals())
