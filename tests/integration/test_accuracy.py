#!/usr/bin/env python3
"""Accuracy: the agent's numbers against the kernel's files (tight) and `docker stats` (loose).

Four containers: a CPU burner capped at half a core (so CFS throttling moves too), a container
holding 64 MiB of anonymous memory and 32 MiB of tmpfs (/dev/shm) under a 256 MiB limit, and two
containers exchanging ICMP over the docker bridge (ping -s 1000 every 20 ms, bounded count and
time). A background sampler reads the same kernel files every 50 ms. Tolerances (README.md):

- kernel, counters: the agent's value must lie between the kernel's value (interval + slack)
  before the scrape started and the kernel's value when the page had arrived; the agent read
  the files during its last collection, which happened inside that window. Slack 0.5 s
  (1 s for the ASan build). cpuacct.stat is in USER_HZ ticks: +-1 tick.
- kernel, gauges: within [min, max] of the kernel's values over the same window, +-1% or
  256 KiB (steady by construction).
- docker stats: CPU% within 15 percentage points of the agent's rate over the scrape pair that
  encloses the docker stats call; memory (usage - inactive_file, as docker computes it) within
  3% or 2 MiB; network bytes between the agent's values before and after the call, +-1% + 10 kB
  (docker prints 3 significant digits).
"""

import datetime
import os
import time

import harness as h
from harness import check, note

MiB = 1 << 20


def _started_at(insp):
    s = insp["State"]["StartedAt"]             # 2026-11-22T00:10:11.123456789Z
    base, _, frac = s.rstrip("Z").partition(".")
    t = datetime.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return t.timestamp() + (float("0." + frac) if frac else 0.0)


def test_accuracy():
    d = h.docker
    roles = {}
    roles["burn"] = d.run("burn", "while :; do :; done", labels={"tit.role": "burn"},
                          host_config={"NanoCpus": 500000000})
    roles["mem"] = d.run("mem", "dd if=/dev/zero of=/dev/shm/fill bs=1M count=32 2>/dev/null; "
                                "(head -c 67108864 /dev/zero; sleep 3600) | tail -c 67108864 >/dev/null",
                         labels={"tit.role": "mem"}, host_config={"Memory": 256 * MiB})
    roles["netsrv"] = d.run("netsrv", "sleep 3600", labels={"tit.role": "netsrv"})
    ip = d.ip_of(roles["netsrv"])
    check(ip, "the server container has no bridge address")
    roles["netcli"] = d.run("netcli", "ping -q -s 1000 -i 0.02 -c 4500 -w 90 %s >/dev/null" % ip,
                            labels={"tit.role": "netcli"})
    names = {r: "tit-%s-%s" % (h.OWNER, r) for r in roles}
    insp = {r: d.inspect(c) for r, c in roles.items()}
    pids = {r: i["State"]["Pid"] for r, i in insp.items()}
    files = {r: h.CgroupFiles(c) for r, c in roles.items()}

    def kernel():
        out = {}
        for r in roles:
            out[r] = {"cpu": files[r].cpu(), "mem": files[r].mem(),
                      "net": h.read_netdev(pids[r]).get("eth0", {})}
            p, t = files[r].procs()
            out[r]["procs"] = {"processes": p, "threads": t}
        return out
    sampler = h.Sampler(kernel)
    sampler.start()
    h.on_cleanup(sampler.stop)

    h.wait_until(lambda: files["mem"].mem()["usage"] >= 95 * MiB, 30, "the memory container to fill 96 MiB")
    a = h.Agent("--label", "tit.role").start()

    def all_named():
        m = a.scrape()
        return m if all(m.get("container_last_seen", id=h.of_container(c), name=names[r]) is not None
                        for r, c in roles.items()) else None
    h.wait_until(all_named, 20 * h.slack(), "all four containers named in /metrics")
    a.wait_collections(2)

    slack = 0.5 * h.slack()
    for rnd in range(3):
        m = a.scrape()
        t_lo, t_hi = m.t0 - a.interval - slack, m.t1 + 0.05
        time.sleep(0.2)   # let the sampler record a row after the scrape

        def counter(metric, role, key, scale=1.0, tol=0.0, **labels):
            v = m.value(metric, id=h.of_container(roles[role]), **labels) * scale
            lo, hi = sampler.window(role + "." + key, t_lo, t_hi)
            eps = max(tol, 1e-6 * max(abs(hi), 1))
            check(lo - eps <= v <= hi + eps,
                  "%s{%s} = %r, kernel %s went from %r to %r in the window [scrape - %.1fs, scrape end]"
                  % (metric, role, v, key, lo, hi, a.interval + slack))
            return v

        def gauge(metric, role, key, **labels):
            v = m.value(metric, id=h.of_container(roles[role]), **labels)
            lo, hi = sampler.window(role + "." + key, t_lo, t_hi)
            tol = max(256 * 1024, 0.01 * hi)
            check(lo - tol <= v <= hi + tol, "%s{%s} = %r, kernel %s in [%r, %r] (+-%d)"
                  % (metric, role, v, key, lo, hi, tol))
            return v

        hz_tick = 1.0 / os.sysconf("SC_CLK_TCK")
        for r in roles:
            if r == "netcli" and m.get("container_last_seen", id=h.of_container(roles[r])) is None:
                continue
            counter("container_cpu_usage_seconds_total", r, "cpu.usage_ns", 1e9, cpu="total")
            counter("container_cpu_user_seconds_total", r, "cpu.user_s", tol=hz_tick)
            counter("container_cpu_system_seconds_total", r, "cpu.system_s", tol=hz_tick)
            gauge("container_memory_usage_bytes", r, "mem.usage")
            gauge("container_memory_working_set_bytes", r, "mem.working_set")
            gauge("container_memory_rss", r, "mem.rss")
            gauge("container_memory_cache", r, "mem.cache")
            gauge("container_memory_mapped_file", r, "mem.mapped_file")
            if not files[r].v2:
                gauge("container_memory_max_usage_bytes", r, "mem.max_usage")
                counter("container_memory_failcnt", r, "mem.failcnt")
            gauge("container_processes", r, "procs.processes")
            gauge("container_threads", r, "procs.threads")
        b = "burn"
        counter("container_cpu_cfs_periods_total", b, "cpu.nr_periods")
        counter("container_cpu_cfs_throttled_periods_total", b, "cpu.nr_throttled")
        counter("container_cpu_cfs_throttled_seconds_total", b, "cpu.throttled_ns", 1e9)
        check(m.value("container_processes", id=h.of_container(roles[b])) == 1 and
              m.value("container_threads", id=h.of_container(roles[b])) == 1,
              "the burner runs one process with one thread")
        check(m.value("container_spec_memory_limit_bytes", id=h.of_container(roles["mem"])) == 256 * MiB,
              "container_spec_memory_limit_bytes of the 256 MiB container: %r"
              % m.value("container_spec_memory_limit_bytes", id=h.of_container(roles["mem"])))
        check(m.value("container_memory_rss", id=h.of_container(roles["mem"])) >= 60 * MiB,
              "the memory container holds 64 MiB anonymous memory")
        check(m.value("container_memory_cache", id=h.of_container(roles["mem"])) >= 30 * MiB,
              "the memory container holds 32 MiB of tmpfs (page cache)")
        for r in ("netsrv", "netcli"):
            if r == "netcli" and m.get("container_last_seen", id=h.of_container(roles[r])) is None:
                continue
            for key in ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets"):
                metric = "container_network_%s_%s_total" % (
                    "receive" if key.startswith("rx") else "transmit", key.split("_")[1])
                counter(metric, r, "net." + key, interface="eth0")
            for key, metric in (("rx_errors", "container_network_receive_errors_total"),
                                ("tx_errors", "container_network_transmit_errors_total"),
                                ("rx_dropped", "container_network_receive_packets_dropped_total"),
                                ("tx_dropped", "container_network_transmit_packets_dropped_total")):
                counter(metric, r, "net." + key, interface="eth0")
            check(not m.samples("container_network_receive_bytes_total", id=h.of_container(roles[r]),
                                interface=lambda v: v == "lo" or v.startswith("veth")),
                  "lo/veth* interfaces must not be exported (cAdvisor skips them)")
        rx = m.value("container_network_receive_bytes_total", id=h.of_container(roles["netsrv"]), interface="eth0")
        check(rx > 50000, "the ping server received only %r bytes" % rx)

        # Metadata from inspect.
        for r, c in roles.items():
            ss = m.samples("container_last_seen", id=h.of_container(c))
            if not ss:
                check(r == "netcli", "container %s missing" % r)
                continue
            lab = ss[0].labels
            check(lab.get("name") == names[r] and lab.get("image") == h.IMAGE and
                  lab.get("container_label_tit_role") == r, "labels of %s: %s" % (r, lab))
            seen = ss[0].value
            check(t_lo - 1 <= seen <= m.t1 + 1, "container_last_seen %r outside [%r, %r]" % (seen, t_lo, m.t1))
            st = m.value("container_start_time_seconds", id=h.of_container(c))
            check(abs(st - _started_at(insp[r])) <= 1.0, "container_start_time_seconds %r vs StartedAt %s"
                  % (st, insp[r]["State"]["StartedAt"]))
        note("round %d: kernel comparisons passed" % (rnd + 1))
        a.wait_collections(1)

    # docker stats, taken between two scrapes.
    ma = a.scrape()
    t0 = time.time()
    ds = h.docker_stats([names["burn"], names["mem"], names["netsrv"]])
    t1 = time.time()
    time.sleep(max(0.0, 3.0 - (time.time() - ma.t1)))
    a.wait_collections(1)
    mb = a.scrape()
    burn = h.of_container(roles["burn"])
    va = ma.value("container_cpu_usage_seconds_total", id=burn, cpu="total")
    vb = mb.value("container_cpu_usage_seconds_total", id=burn, cpu="total")
    sa = ma.value("container_last_seen", id=burn)
    sb = mb.value("container_last_seen", id=burn)
    check(sb > sa, "container_last_seen did not move between scrapes (%r -> %r)" % (sa, sb))
    agent_pct = 100.0 * (vb - va) / (sb - sa)
    kern_pct = 100.0 * sampler.rate("burn.cpu.usage_ns", t0, t1) / 1e9
    docker_pct = ds[names["burn"]]["cpu_pct"]
    note("burner CPU: agent %.1f%%, docker stats %.1f%%, kernel over the call %.1f%%"
         % (agent_pct, docker_pct, kern_pct))
    check(agent_pct <= 55, "burner capped at 50%% shows %.1f%% in the agent" % agent_pct)
    check(abs(agent_pct - docker_pct) <= 15, "burner CPU: agent %.1f%% vs docker stats %.1f%% (tolerance 15)"
          % (agent_pct, docker_pct))
    wa = ma.value("container_memory_working_set_bytes", id=h.of_container(roles["mem"]))
    wb = mb.value("container_memory_working_set_bytes", id=h.of_container(roles["mem"]))
    dm = ds[names["mem"]]["mem_bytes"]
    tol = max(2 * MiB, 0.03 * dm)
    check(min(wa, wb) - tol <= dm <= max(wa, wb) + tol,
          "memory: docker stats %d vs agent working set %d..%d (tolerance %d)" % (dm, wa, wb, tol))
    check(abs(ds[names["mem"]]["mem_limit"] - 256 * MiB) < MiB, "docker stats limit %r" % ds[names["mem"]]["mem_limit"])
    srv = h.of_container(roles["netsrv"])
    for key, metric in (("net_rx", "container_network_receive_bytes_total"),
                        ("net_tx", "container_network_transmit_bytes_total")):
        lo = ma.value(metric, id=srv, interface="eth0")
        hi = mb.value(metric, id=srv, interface="eth0")
        dv = ds[names["netsrv"]][key]
        check(lo * 0.99 - 10e3 <= dv <= hi * 1.01 + 10e3,
              "%s: docker stats %d outside the agent's %d..%d (+-1%% + 10 kB)" % (key, dv, lo, hi))
    check(ds[names["burn"]]["pids"] == mb.value("container_threads", id=burn),
          "docker stats PIDs %r vs container_threads %r" % (ds[names["burn"]]["pids"],
                                                           mb.value("container_threads", id=burn)))
    note("docker stats comparisons passed (memory docker %.1f MiB, agent %.1f MiB)" % (dm / MiB, wb / MiB))
    check(sampler.errors < 10, "kernel sampler failed %d times" % sampler.errors)


if __name__ == "__main__":
    h.main(globals())
