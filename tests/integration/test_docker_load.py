#!/usr/bin/env python3
"""Docker API load: in steady state the agent sends dockerd nothing but the health ping.

The agent talks to dockerd through a counting proxy (a python unix socket relay in this file), so
the requests are counted on the wire, independently of the agent's own counters. Over a 10 s
window of steady state, requests other than GET /_ping must be zero, except one inspect per
container that had an event in the window (other users of the engine may be creating
containers); pings must be about one per interval; the agent's
tether_docker_requests_total{kind} must agree with the wire.
"""

import os
import re
import socket
import threading
import time

import harness as h
from harness import check, note

WINDOW = 10.0
_REQ = re.compile(rb"(GET|POST|PUT|DELETE|HEAD) (\S+) HTTP/1\.[01]\r\n")


class CountingProxy:
    """Relays unix socket connections to dockerd and records every request line sent to it."""

    def __init__(self, upstream=h.DOCKER_SOCK):
        self.path = "/tmp/tit-%s-proxy.sock" % h.OWNER
        self.upstream = upstream
        self.lock = threading.Lock()
        self.requests = []      # (time, method, path)
        self.connections = 0
        self.halt = threading.Event()
        self.socks = []
        try:
            os.unlink(self.path)
        except OSError:
            pass
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(self.path)
        self.srv.listen(64)
        self.srv.settimeout(0.2)
        threading.Thread(target=self._accept, daemon=True).start()
        h.on_cleanup(self.stop)

    def _accept(self):
        while not self.halt.is_set():
            try:
                c, _ = self.srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                u.connect(self.upstream)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.connections += 1
                self.socks += [c, u]
            threading.Thread(target=self._pump, args=(c, u, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, False), daemon=True).start()

    def _pump(self, src, dst, count):
        pending = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if count:
                    # The agent sends requests without bodies: every request line starts at a
                    # message boundary; keep a tail in case a line is split between reads.
                    pending += data
                    for mm in _REQ.finditer(pending):
                        with self.lock:
                            self.requests.append((time.time(), mm.group(1).decode(), mm.group(2).decode()))
                    cut = pending.rfind(b"\r\n")
                    pending = pending[cut + 2:] if cut >= 0 else pending
                    pending = pending[-4096:]
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def between(self, t0, t1):
        with self.lock:
            return [r for r in self.requests if t0 <= r[0] < t1]

    def stop(self):
        self.halt.set()
        try:
            self.srv.close()
        except OSError:
            pass
        with self.lock:
            for s in self.socks:
                try:
                    s.close()
                except OSError:
                    pass
        try:
            os.unlink(self.path)
        except OSError:
            pass


def test_steady_state_requests():
    h.docker.run("load-a", "sleep 600")
    h.docker.run("load-b", "while :; do sleep 1; done")
    watcher = h.CgroupWatcher()
    watcher.start()
    h.on_cleanup(watcher.stop)
    proxy = CountingProxy()
    a = h.Agent(docker="unix://" + proxy.path).start()
    names = ["tit-%s-load-a" % h.OWNER, "tit-%s-load-b" % h.OWNER]
    h.wait_until(lambda: all(a.scrape().samples("container_last_seen", name=n) for n in names),
                 15 * h.slack(), "both containers named")
    a.wait_collections(3)
    startup = proxy.between(0, time.time())
    note("start-up requests: %s" % sorted({h.docker_request_kind(p) for _, _, p in startup}))

    m0 = a.scrape()
    t0 = time.time()
    mono0 = time.monotonic()
    time.sleep(WINDOW)
    t1 = time.time()
    mono1 = time.monotonic()
    m1 = a.scrape()
    reqs = proxy.between(t0, t1)
    by_kind = {}
    for _, _, p in reqs:
        by_kind[h.docker_request_kind(p)] = by_kind.get(h.docker_request_kind(p), 0) + 1
    events = h.docker.events(t0 - 1, t1 + 1)
    busy = {e.get("id") or e.get("Actor", {}).get("ID") for e in events}
    busy |= watcher.changed(mono0 - 1, mono1 + 1)
    note("window %.1fs: requests on the wire %s; container events by other users: %d (%d containers)"
         % (t1 - t0, by_kind, len(events), len(busy)))
    pings = by_kind.pop("ping", 0)
    check(WINDOW / a.interval - 3 <= pings <= WINDOW / a.interval + 2,
          "%d pings in %.0fs at --interval %d" % (pings, WINDOW, a.interval))
    inspects = by_kind.pop("inspect", 0)
    check(inspects <= len(busy), "%d inspects in steady state with %d containers changing" % (inspects, len(busy)))
    check(not by_kind, "requests other than ping/inspect in steady state: %s" % by_kind)

    # The agent's own counters agree with the wire between the two scrapes (+-1 at each edge:
    # a page is rendered at some moment while it is being fetched).
    wire = {}
    for _, _, p in proxy.between(m0.t0, m1.t1):
        wire[h.docker_request_kind(p)] = wire.get(h.docker_request_kind(p), 0) + 1
    for kind in ("ping", "inspect", "list", "events"):
        d = m1.get("tether_docker_requests_total", 0, kind=kind) - m0.get("tether_docker_requests_total", 0, kind=kind)
        check(abs(d - wire.get(kind, 0)) <= 2, "tether_docker_requests_total{kind=%r} grew by %d, %d seen on the wire"
              % (kind, d, wire.get(kind, 0)))
    check(m1.value("tether_docker_up") == 1, "docker not up through the proxy")


if __name__ == "__main__":
    h.main(globals())
