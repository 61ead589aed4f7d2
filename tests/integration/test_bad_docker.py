#!/usr/bin/env python3
"""Bad input from "dockerd": the agent talks to a fake Docker socket (a python unix socket server
in this file) that misbehaves in one way per test: garbage bytes, broken HTTP, truncated JSON,
JSON of the wrong shape, an events stream that stalls mid-chunk, a daemon that accepts and never
answers, and a body that never ends.

For every mode the agent must stay up, keep collecting (the real containers are still found by
the cgroup scan, labelled by id), serve every /metrics within 1 s, log the problem at WARN or
ERROR, not reconnect in a tight loop (at most 4 connections a second on average), count what it
skipped where the mode produces something to skip, and exit 0 without sanitizer reports.
"""

import json
import os
import random
import re
import socket
import threading
import time

import harness as h
from harness import check, note

RUN_SECONDS = 8


class FakeDocker:
    """A unix socket server; `respond(conn, method, path, n)` answers the n-th request."""

    def __init__(self, respond):
        self.path = "/tmp/tit-%s-fake-docker.sock" % h.OWNER
        self.respond = respond
        self.connections = 0
        self.requests = []          # (time, method, path)
        self.conns = []
        self.lock = threading.Lock()
        self.halt = threading.Event()
        try:
            os.unlink(self.path)
        except OSError:
            pass
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(self.path)
        self.srv.listen(64)
        self.srv.settimeout(0.2)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()
        h.on_cleanup(self.stop)

    def url(self):
        return "unix://" + self.path

    def _accept(self):
        while not self.halt.is_set():
            try:
                c, _ = self.srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _read_request(self, c, buf):
        """Reads one request head from c (buf: bytes already read); returns (method, path, rest)."""
        while b"\r\n\r\n" not in buf:
            try:
                data = c.recv(65536)
            except OSError:
                return None
            if not data:
                return None
            buf += data
            if len(buf) > 1 << 20:
                return None
        head, _, rest = buf.partition(b"\r\n\r\n")
        line = head.split(b"\r\n", 1)[0].decode(errors="replace").split()
        if len(line) < 2:
            return None
        m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
        if m:  # skip a body (the agent sends none, but be safe)
            need = int(m.group(1))
            while len(rest) < need:
                data = c.recv(65536)
                if not data:
                    return None
                rest += data
            rest = rest[need:]
        return line[0], line[1], rest

    def _serve(self, c):
        c.settimeout(None)
        buf = b""
        n = 0
        try:
            while not self.halt.is_set():
                r = self._read_request(c, buf)
                if r is None:
                    return
                method, path, buf = r
                with self.lock:
                    self.requests.append((time.time(), method, path))
                n += 1
                if not self.respond(self, c, method, path, n):
                    return
        except OSError:
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    def hold(self):
        """For a handler: keep the connection open, sending nothing, until the server stops."""
        self.halt.wait()
        return False

    def stop(self):
        self.halt.set()
        try:
            self.srv.close()
        except OSError:
            pass
        with self.lock:
            for c in self.conns:
                try:
                    c.close()
                except OSError:
                    pass
        try:
            os.unlink(self.path)
        except OSError:
            pass


def reply(c, status, body, ctype="application/json", extra=""):
    if isinstance(body, str):
        body = body.encode()
    c.sendall(("HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nApi-Version: 1.41\r\n%s\r\n"
               % (status, ctype, len(body), extra)).encode() + body)
    return True


def ping_ok(c, path):
    if path.split("?")[0].endswith("/_ping"):
        reply(c, "200 OK", "OK", "text/plain")
        return True
    if path.split("?")[0].endswith("/version"):
        reply(c, "200 OK", json.dumps({"Version": "20.10.24", "ApiVersion": "1.41", "MinAPIVersion": "1.12"}))
        return True
    return False


def run_mode(respond, expect_state=None, expect_counted=False, min_errors_log=1):
    """Starts a burner, the fake socket and the agent; watches for RUN_SECONDS; checks.

    respond(fake, conn, method, path, n) answers the n-th request of a connection (False closes
    it), or is a factory respond(burner_id) -> such a function when it takes one argument."""
    burn = h.docker.run("bad-burn", "while :; do :; done", host_config={"NanoCpus": 100000000})
    if respond.__code__.co_argcount == 1:
        respond = respond(burn)
    fake = FakeDocker(respond)
    a = h.Agent(docker=fake.url()).start()
    m0 = a.scrape()
    c0 = m0.value("tether_collections_total")
    t0 = time.monotonic()
    slowest = 0.0
    m = m0
    while time.monotonic() - t0 < RUN_SECONDS * h.SLOW:
        check(a.alive(), "agent died (status %s): %s" % (a.proc.poll(), a.log_tail()))
        t = time.monotonic()
        m = a.scrape(timeout=3 * h.slack())
        slowest = max(slowest, time.monotonic() - t)
        time.sleep(0.3)
    dt = time.monotonic() - t0
    check(slowest <= 1.0 * h.slack(), "a /metrics scrape took %.2fs (limit %.1fs)" % (slowest, h.slack()))
    grown = m.value("tether_collections_total") - c0
    check(grown >= max(3, 0.5 * dt / a.interval), "only %d collections in %.0fs" % (grown, dt))
    check(m.samples("container_last_seen", id=h.of_container(burn)),
          "the real burner container is not measured (cgroup scan) while dockerd misbehaves")
    state = {s.labels.get("state"): s.value for s in m.samples("tether_docker_state")}
    if expect_state:
        check(state.get(expect_state) == 1 and m.value("tether_docker_up") == (1 if expect_state == "up" else 0),
              "docker state %s, tether_docker_up %s (want %s)" % (state, m.value("tether_docker_up"), expect_state))
    # No tight retry loop: at most about one attempt a second per request kind (per container
    # for inspects; a failed inspect is retried with a backoff), and no connections opened
    # without a request on them.
    kinds = {}
    for _, _, path in fake.requests:
        k = h.docker_request_kind(path)
        kinds[k] = kinds.get(k, 0) + 1
    known = max(1, m.value("tether_containers"))
    for k, n in kinds.items():
        limit = known * (dt + 1) if k == "inspect" else dt / a.interval + 3
        check(n <= limit, "%d %s requests in %.0fs (limit %d): tight retry loop? %s" % (n, k, dt, limit, kinds))
    check(fake.connections <= len(fake.requests) + 5, "%d connections but %d requests in %.0fs"
          % (fake.connections, len(fake.requests), dt))
    counted = {s.name + str(s.labels): s.value
               for f in m.families for s in m.families[f].samples
               if re.match(r"tether_(docker_\w*(error|malformed|fail|skip)\w*|inspect_fail\w*)_total$", s.name)
               and s.value > 0}
    if expect_counted:
        check(counted, "nothing counted as a docker error/malformed/failed skip (families: %s)"
              % sorted(f for f in m.families if f.startswith("tether_docker") or "inspect" in f))
    log = a.log_text()
    bad_lines = [l for l in log.splitlines() if re.search(r" (WARN|ERROR) ", l)]
    check(len(bad_lines) >= min_errors_log, "no WARN/ERROR line in the agent's log about the bad daemon")
    note("%d connections, requests %s, counted %s, e.g. log: %s"
         % (fake.connections, kinds, counted, bad_lines[0][:160] if bad_lines else "-"))
    a.stop()
    return fake, m


def test_fake_garbage():
    rnd = random.Random(7)

    def respond(fake, c, method, path, n):
        c.sendall(bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 3000))))
        return False
    run_mode(respond, expect_state="down")


def test_fake_broken_http():
    answers = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999999\r\n\r\nOK",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nOK\r\n",
        b"HTTP/9.9 999 WHAT\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nOK",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nOK!",
        b"\r\n\r\n\r\n",
    ]
    k = [0]

    def respond(fake, c, method, path, n):
        k[0] += 1
        try:
            c.sendall(answers[k[0] % len(answers)])
        except OSError:
            pass
        return False
    run_mode(respond, expect_state="down")


def _truncated(fake, c, method, path, n, real_id):
    p = path.split("?")[0]
    if ping_ok(c, path):
        return True
    if p.endswith("/containers/json"):
        body = json.dumps([{"Id": real_id, "Names": ["/x"], "Image": "img", "State": "running"}])
        return reply(c, "200 OK", body[: len(body) // 2])
    if "/containers/" in p and p.endswith("/json"):
        body = json.dumps({"Id": real_id, "Name": "/fake", "Config": {"Image": "img", "Labels": {}},
                           "State": {"Pid": 1, "StartedAt": "2026-01-01T00:00:00Z"}})
        return reply(c, "200 OK", body[: len(body) * 2 // 3])
    if p.endswith("/events"):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (b'{"status":"start","id":"', b"\n",
                      json.dumps({"status": "start", "id": real_id, "Type": "container", "Action": "start",
                                  "Actor": {"ID": real_id, "Attributes": {"name": "fake"}},
                                  "time": int(time.time()), "timeNano": time.time_ns()}).encode() + b"\n",
                      b"}}}]]]\n", b'{"status": 12, "id": ["x"]}\n'):
            c.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        return fake.hold()
    return reply(c, "404 Not Found", '{"message":"no such thing"}')


def test_fake_truncated_json():
    # The truncated answers name the real burner, a container the agent knows from the cgroups.
    run_mode(lambda burn: lambda fake, c, method, path, n: _truncated(fake, c, method, path, n, burn),
             expect_state="up", expect_counted=True)


def test_fake_wrong_shapes():
    def respond(fake, c, method, path, n):
        p = path.split("?")[0]
        if ping_ok(c, path):
            return True
        if p.endswith("/containers/json"):
            return reply(c, "200 OK", json.dumps([{"Id": 5}, {"Id": None}, "str", [], {"Id": "a" * 64,
                                                  "Names": "notalist", "Labels": [1, 2], "Image": {}}]))
        if "/containers/" in p and p.endswith("/json"):
            return reply(c, "200 OK", json.dumps({"Id": 7, "Name": ["x"], "Config": None,
                                                  "State": {"Pid": "x", "StartedAt": 5}}))
        if p.endswith("/events"):
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            for piece in (b"[]\n", b"null\n", b'{"status":"destroy"}\n', b'{"id":"' + b"b" * 5000 + b'"}\n',
                          b'"just a string"\n'):
                c.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            return fake.hold()
        return reply(c, "200 OK", "{}")
    run_mode(respond, expect_state="up", expect_counted=True)


def test_fake_stalled_events():
    def respond(fake, c, method, path, n):
        p = path.split("?")[0]
        if ping_ok(c, path):
            return True
        if p.endswith("/containers/json"):
            return reply(c, "200 OK", "[]")
        if p.endswith("/events"):
            # Chunk header promising 64 bytes, 10 sent, then nothing ever again.
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"40\r\n{\"status\":")
            return fake.hold()
        return reply(c, "404 Not Found", '{"message":"no such container"}')
    # Pings are answered: the daemon counts as up; nothing is malformed yet, so no WARN required.
    run_mode(respond, expect_state="up", min_errors_log=0)


def test_fake_accepts_never_answers():
    def respond(fake, c, method, path, n):
        return fake.hold()
    run_mode(respond, expect_state="hung")


def test_fake_endless_body():
    sent = [0]

    def respond(fake, c, method, path, n):
        if ping_ok(c, path):
            return True
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n[")
        chunk = b'{"Id":"' + b"f" * 64 + b'","Names":["/x"]},' * 100
        try:
            while sent[0] < (256 << 20) and not fake.halt.is_set():
                c.sendall(chunk)
                sent[0] += len(chunk)
        except OSError:
            pass
        return False
    fake, m = run_mode(respond)
    note("fake daemon sent %.1f MiB in total" % (sent[0] / 2**20))
    if not h.LEAK_CHECK:
        rss = m.value("tether_rss_bytes")
        check(rss < 64 << 20, "agent RSS %.1f MiB after an endless body (unbounded buffering?)" % (rss / 2**20))


if __name__ == "__main__":
    h.main(globals())
