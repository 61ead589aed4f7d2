#!/usr/bin/env python3
"""open-falcon push: a python HTTP receiver stands in for the open-falcon agent (POST /v1/push).

Every push must be a JSON array of items with endpoint (the --falcon-endpoint), metric,
timestamp (whole unix seconds, recent), step (the interval), value (a finite number),
counterType (GAUGE or COUNTER) and tags ("k=v,k=v"); our container's cpu.usage item must be
there and plausible against cpuacct.usage. Then the receiver goes away for 5 s: the agent keeps
collecting and counts failed pushes; when the receiver is back on the same port, pushes arrive
again within a few intervals.
"""

import http.server
import json
import math
import re
import socket
import threading
import time

import harness as h
from harness import check, note

ITEM_KEYS = {"endpoint", "metric", "timestamp", "step", "value", "counterType", "tags"}
TAGS_RE = re.compile(r"^$|^[^=,]+=[^=,]*(,[^=,]+=[^=,]*)*$")


class Receiver:
    """A threaded HTTP server recording POSTs: (time, path, headers, parsed JSON or exception)."""

    def __init__(self, port):
        self.port = port
        self.pushes = []
        self.lock = threading.Lock()
        outer = self

        self.conns = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                with outer.lock:
                    outer.conns.append(self.connection)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                if not n and self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    body = b""
                    while True:
                        size = int(self.rfile.readline().strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            break
                        body += self.rfile.read(size)
                        self.rfile.readline()
                try:
                    doc = json.loads(body)
                except ValueError as e:
                    doc = e
                with outer.lock:
                    outer.pushes.append((time.time(), self.path, dict(self.headers), doc))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "7")
                self.end_headers()
                self.wfile.write(b"success")

            def log_message(self, *args):
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.srv.daemon_threads = True
        self.thread = threading.Thread(target=self.srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()
        h.on_cleanup(self.stop)

    def since(self, t):
        with self.lock:
            return [p for p in self.pushes if p[0] >= t]

    def stop(self):
        """Stops listening and cuts every open (keep-alive) connection: the receiver is gone."""
        if self.srv is not None:
            self.srv.shutdown()
            self.srv.server_close()
            self.srv = None
            with self.lock:
                for c in self.conns:
                    try:
                        c.shutdown(socket.SHUT_RDWR)
                        c.close()
                    except OSError:
                        pass


def _check_push(push, endpoint, step):
    t, path, headers, doc = push
    check(path == "/v1/push", "push to %r (want /v1/push)" % path)
    check(not isinstance(doc, Exception), "push body is not JSON: %s" % doc)
    check(isinstance(doc, list) and doc, "push body is not a non-empty JSON array: %s" % str(doc)[:200])
    for it in doc:
        check(isinstance(it, dict) and set(it) >= ITEM_KEYS, "item lacks keys %s: %s"
              % (ITEM_KEYS - set(it) if isinstance(it, dict) else "-", str(it)[:200]))
        check(it["endpoint"] == endpoint, "endpoint %r (want %r)" % (it["endpoint"], endpoint))
        check(isinstance(it["metric"], str) and it["metric"], "bad metric %r" % it["metric"])
        check(isinstance(it["timestamp"], int) and t - 60 <= it["timestamp"] <= t + 2,
              "timestamp %r not whole recent seconds (received at %.0f)" % (it["timestamp"], t))
        check(it["step"] == step and isinstance(it["step"], int), "step %r (want %d)" % (it["step"], step))
        check(isinstance(it["value"], (int, float)) and not isinstance(it["value"], bool)
              and math.isfinite(it["value"]), "value %r not a finite number" % it["value"])
        check(it["counterType"] in ("GAUGE", "COUNTER"), "counterType %r" % it["counterType"])
        check(isinstance(it["tags"], str) and TAGS_RE.match(it["tags"]), "tags %r not k=v,k=v" % it["tags"])


def test_falcon_push_and_outage():
    burn = h.docker.run("falcon-burn", "while :; do :; done", host_config={"NanoCpus": 200000000})
    files = h.CgroupFiles(burn)
    port = h.free_port()
    rcv = Receiver(port)
    endpoint = "tit-host-%s" % h.OWNER
    a = h.Agent("--falcon-url", "http://127.0.0.1:%d/v1/push" % port, "--falcon-endpoint", endpoint).start()

    def cpu_item():
        for p in rcv.since(0):
            if isinstance(p[3], list):
                for it in p[3]:
                    if isinstance(it, dict) and it.get("metric") == "cpu.usage" and \
                            "id=%s" % burn[:12] in str(it.get("tags")) and "container=tit-" in str(it.get("tags")):
                        return p, it
        return None
    push, item = h.wait_until(cpu_item, 15 * h.slack(), "a push with the burner's cpu.usage (named)")
    kernel = files.cpu()["usage_ns"] / 1e9
    check(item["counterType"] == "COUNTER" and 0 < item["value"] <= kernel + 1e-6,
          "cpu.usage item %s vs cpuacct.usage %.3f s" % (item, kernel))
    time.sleep(2)
    pushes = rcv.since(0)
    for p in pushes:
        _check_push(p, endpoint, a.interval)
    note("%d pushes, %d items in the last; e.g. %s" % (len(pushes), len(pushes[-1][3]), json.dumps(item)))
    m = a.scrape()
    ok0 = m.get("tether_falcon_pushes_total", 0, result="ok")
    check(ok0 >= len(pushes) - 1, "tether_falcon_pushes_total{result=\"ok\"} %r for %d pushes received"
          % (ok0, len(pushes)))

    # Receiver down: collection goes on, failures are counted.
    rcv.stop()
    t_down = time.time()
    err0 = m.get("tether_falcon_pushes_total", 0, result="error")
    c0 = m.value("tether_collections_total")
    time.sleep(5)
    m = a.scrape()
    check(m.value("tether_collections_total") >= c0 + 2, "collection stalled while the receiver is down: %r -> %r"
          % (c0, m.value("tether_collections_total")))
    check(m.get("tether_falcon_pushes_total", 0, result="error") > err0,
          "no failed push counted while the receiver was down")
    note("while down: pushes_total %s, queue %s, dropped %s" % (
        {s.labels.get("result"): s.value for s in m.samples("tether_falcon_pushes_total")},
        m.get("tether_falcon_queue_length"), m.get("tether_falcon_dropped_total")))

    # Back up on the same port: delivery resumes.
    rcv2 = Receiver(port)
    t_up = time.time()
    h.wait_until(lambda: [p for p in rcv2.since(t_up) if isinstance(p[3], list) and p[3]], 20 * h.slack(),
                 "pushes after the receiver came back")
    note("delivery resumed %.1fs after the receiver came back (down %.0fs)" % (time.time() - t_up, t_up - t_down))
    time.sleep(2)
    for p in rcv2.since(0):
        _check_push(p, endpoint, a.interval)
    stamps = sorted({it["timestamp"] for p in rcv2.since(0) for it in p[3]})
    check(stamps and stamps[-1] >= int(t_up) - 1, "no fresh data after the outage (timestamps %s)" % stamps[-5:])
    m2 = a.scrape()
    check(m2.get("tether_falcon_pushes_total", 0, result="ok") > ok0, "ok pushes did not grow after recovery")


if __name__ == "__main__":
    h.main(globals())
