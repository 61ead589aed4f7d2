"""harness: shared helpers for tether's integration tests (python3 standard library only).

The tests are black-box: they start the real binary (`tether agent`) as a subprocess on a free
port, drive a real dockerd (containers, SIGSTOP/SIGCONT, kill and restart) and compare what the
agent publishes with what the kernel and docker say.

What lives here
  - the test runner (main): runs every test_* function of a test file in order, cleans up after
    each one and prints "RESULT <file> passed=N failed=M" for run.sh to add up;
  - a strict parser of the Prometheus text exposition format 0.0.4 (parse_exposition) and a small
    query object over a parsed page (Metrics), plus promtool's check;
  - Agent: one agent process (start, wait ready, scrape, /debug/state, signals, stop with the
    exit-status and sanitizer checks);
  - Docker: a minimal Docker Engine API client over the unix socket (own timeouts, so a stopped
    dockerd never hangs a test) and the `docker stats` CLI reading;
  - Dockerd: SIGSTOP/SIGCONT, kill and restart of the engine, and the guarantee that it is running
    again after every test whatever happened;
  - kernel readers for cgroup v1/v2 files and /proc/<pid>/net/dev, and a background sampler that
    records them every 50 ms so an agent value can be bracketed by kernel values in time.

Ownership and cleanup: every agent and container a test starts is registered with the current
test; when the test ends (pass, fail or exception) the runner stops its agents with SIGTERM
(failing the test if an agent does not exit 0 or printed a sanitizer report) and removes its
containers. Only containers named tit-* that this process created, or that a dead test process
left behind (label tit.owner names a pid that no longer exists), are ever removed.

Timing: every deadline and latency bound a test states is multiplied by slack() (2 for the ASan
build, more when the shared machine is overloaded); see slack().

Environment: TETHER_BIN (agent binary, default build/tether), TETHER_LEAK_CHECK=1 (ASan build:
no RSS assertions, longer deadlines), TETHER_IT_IMAGE (default tether-test:busybox), DOCKER_SOCK
(default /var/run/docker.sock), TETHER_IT_LOGS (agent logs, default /tmp/tether-it-logs),
TETHER_IT_LIVE_RESTORE=0 (restart a killed dockerd without adding --live-restore).
"""

import http.client
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

BINARY = os.environ.get("TETHER_BIN", os.path.join(ROOT, "build", "tether"))
LEAK_CHECK = os.environ.get("TETHER_LEAK_CHECK", "") == "1"
IMAGE = os.environ.get("TETHER_IT_IMAGE", "tether-test:busybox")
DOCKER_SOCK = os.environ.get("DOCKER_SOCK", "/var/run/docker.sock")
LOG_ROOT = os.environ.get("TETHER_IT_LOGS", "/tmp/tether-it-logs")
LIVE_RESTORE = os.environ.get("TETHER_IT_LIVE_RESTORE", "1") != "0"
DOCKERD_LOG = "/tmp/tether-dockerd.log"
DOCKERD_PIDFILE = "/tmp/tether-dockerd.pid"
OWNER = str(os.getpid())
# Sanitizer reports that fail a test (LeakSanitizer is on by default in an ASan build).
SANITIZER_PATTERNS = ("ERROR: LeakSanitizer", "runtime error:", "AddressSanitizer")
# Extra slack for the ASan build, which is 2-3x slower.
SLOW = 2.0 if LEAK_CHECK else 1.0


def slack():
    """Factor for every timing bound and deadline: SLOW (ASan) times how overloaded the machine
    is right now: the 1-minute load average per core over 2, clamped to 1..4. On a quiet
    machine it is 1 (2 for ASan); tests share the machine with builds, fuzzers and benchmarks,
    and a deadline meant to catch a blocked agent must not fail because the scheduler is busy."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = 0.0
    return SLOW * min(4.0, max(1.0, load / (2.0 * (os.cpu_count() or 1))))


class TestFailure(AssertionError):
    """A test's expectation was not met (the message says what and the evidence)."""


def note(msg):
    """Progress line on stdout (the run log), prefixed with the wall-clock time."""
    print("  [%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def wait_until(fn, timeout, what, step=0.2):
    """Calls fn until it returns a true value (returned) or timeout seconds pass (TestFailure).

    fn may raise; the last exception or value is quoted in the failure message.
    """
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = fn()
            if v:
                return v
            last = v
        except Exception as e:  # noqa: BLE001 - quoted in the message
            last = "%s: %s" % (type(e).__name__, e)
        if time.monotonic() >= deadline:
            raise TestFailure("timed out after %.1fs waiting for %s (last: %r)" % (timeout, what, last))
        time.sleep(step)


# --------------------------------------------------------------------------------------------
# Prometheus text exposition 0.0.4

class ExpoError(TestFailure):
    """The page violates the text format (or tether's stricter contract)."""


class Sample:
    __slots__ = ("name", "labels", "value", "ts")

    def __init__(self, name, labels, value, ts):
        self.name = name        # sample name (family name, or family_bucket/_sum/_count)
        self.labels = labels    # dict label -> value (unescaped)
        self.value = value      # float
        self.ts = ts            # int milliseconds or None

    def __repr__(self):
        return "%s%s %r" % (self.name, self.labels, self.value)


class Family:
    __slots__ = ("name", "type", "help", "samples")

    def __init__(self, name):
        self.name = name
        self.type = None        # counter|gauge|histogram|summary|untyped
        self.help = None
        self.samples = []


_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


def _parse_value(s, lineno):
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if s == "NaN":
        return math.nan
    if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", s):
        raise ExpoError("line %d: bad value %r" % (lineno, s))
    return float(s)


def _parse_labels(line, i, lineno):
    """Parses `{a="x",b="y"}` starting at line[i] == '{'; returns (dict, index after '}')."""
    labels = {}
    i += 1
    n = len(line)
    while True:
        while i < n and line[i] in " \t":
            i += 1
        if i < n and line[i] == "}":
            return labels, i + 1
        m = _LABEL_RE.match(line, i)
        if not m:
            raise ExpoError("line %d: bad label name at column %d" % (lineno, i + 1))
        lname = m.group(0)
        i = m.end()
        while i < n and line[i] in " \t":
            i += 1
        if i >= n or line[i] != "=":
            raise ExpoError("line %d: expected '=' after label %s" % (lineno, lname))
        i += 1
        while i < n and line[i] in " \t":
            i += 1
        if i >= n or line[i] != '"':
            raise ExpoError("line %d: expected '\"' for label %s" % (lineno, lname))
        i += 1
        val = []
        while True:
            if i >= n:
                raise ExpoError("line %d: unterminated value of label %s" % (lineno, lname))
            c = line[i]
            if c == "\\":
                if i + 1 >= n:
                    raise ExpoError("line %d: dangling backslash in label %s" % (lineno, lname))
                e = line[i + 1]
                if e == "n":
                    val.append("\n")
                elif e in '\\"':
                    val.append(e)
                else:
                    raise ExpoError("line %d: bad escape \\%s in label %s" % (lineno, e, lname))
                i += 2
                continue
            if c == '"':
                i += 1
                break
            val.append(c)
            i += 1
        if lname in labels:
            raise ExpoError("line %d: label %s repeated" % (lineno, lname))
        labels[lname] = "".join(val)
        while i < n and line[i] in " \t":
            i += 1
        if i < n and line[i] == ",":
            i += 1
            continue
        if i < n and line[i] == "}":
            return labels, i + 1
        raise ExpoError("line %d: expected ',' or '}' after label %s" % (lineno, lname))


def _family_of(name, families):
    """Family a sample name belongs to (histogram/summary suffixes), or None."""
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix):
            base = name[: -len(suffix)]
            f = families.get(base)
            if f is not None and (f.type == "histogram" or (f.type == "summary" and suffix != "_bucket")):
                return f
    f = families.get(name)
    if f is not None and f.type not in ("histogram", "summary"):
        return f
    if f is not None and f.type == "summary":
        return f  # quantile samples carry the bare name
    return None


def parse_exposition(text, require_type=True):
    """Parses a /metrics page strictly; returns {family name: Family}.

    Raises ExpoError on: a malformed line; HELP/TYPE repeated or after the family's first sample;
    a family whose samples are split by another family's; a sample without TYPE (when
    require_type); a repeated series; a counter that is negative or NaN; a histogram whose
    buckets are not cumulative, lack le="+Inf", or whose +Inf bucket differs from _count, or
    lacks _sum/_count.
    """
    families = {}
    done = set()        # families whose samples are finished (another family's started)
    current = None      # family whose samples are being read
    seen_series = set()
    for lineno, line in enumerate(text.split("\n"), 1):
        if line == "":
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not _NAME_RE.fullmatch(name):
                    raise ExpoError("line %d: bad metric name %r" % (lineno, name))
                f = families.get(name)
                if f is None:
                    f = families[name] = Family(name)
                if name in done or f.samples:
                    raise ExpoError("line %d: # %s for %s after its samples" % (lineno, parts[1], name))
                rest = parts[3] if len(parts) > 3 else ""
                if parts[1] == "HELP":
                    if f.help is not None:
                        raise ExpoError("line %d: second HELP for %s" % (lineno, name))
                    f.help = rest
                else:
                    if f.type is not None:
                        raise ExpoError("line %d: second TYPE for %s" % (lineno, name))
                    if rest not in _TYPES:
                        raise ExpoError("line %d: bad TYPE %r for %s" % (lineno, rest, name))
                    f.type = rest
                if current is not None and current is not f:
                    done.add(current.name)
                    current = None
            continue
        m = _NAME_RE.match(line)
        if not m:
            raise ExpoError("line %d: cannot parse %r" % (lineno, line[:120]))
        name = m.group(0)
        i = m.end()
        labels = {}
        if i < len(line) and line[i] == "{":
            labels, i = _parse_labels(line, i, lineno)
        rest = line[i:].split()
        if not rest or len(rest) > 2 or (i < len(line) and line[i] not in " \t"):
            raise ExpoError("line %d: expected value [timestamp] in %r" % (lineno, line[:120]))
        value = _parse_value(rest[0], lineno)
        ts = None
        if len(rest) == 2:
            if not re.fullmatch(r"-?\d+", rest[1]):
                raise ExpoError("line %d: bad timestamp %r" % (lineno, rest[1]))
            ts = int(rest[1])
        f = _family_of(name, families)
        if f is None:
            if require_type:
                raise ExpoError("line %d: sample %s has no # TYPE" % (lineno, name))
            f = families[name] = Family(name)
            f.type = "untyped"
        if f.name in done:
            raise ExpoError("line %d: family %s appears twice (its samples are split)" % (lineno, f.name))
        if current is not None and current is not f:
            done.add(current.name)
        current = f
        key = (name, tuple(sorted(labels.items())))
        if key in seen_series:
            raise ExpoError("line %d: series repeated: %s%s" % (lineno, name, labels))
        seen_series.add(key)
        if f.type == "counter" and (math.isnan(value) or value < 0):
            raise ExpoError("line %d: counter %s has value %r" % (lineno, name, value))
        f.samples.append(Sample(name, labels, value, ts))
    for f in families.values():
        if f.type == "histogram":
            _check_histogram(f)
    return families


def _check_histogram(f):
    groups = {}
    for s in f.samples:
        key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
        g = groups.setdefault(key, {"buckets": [], "sum": None, "count": None})
        if s.name == f.name + "_bucket":
            if "le" not in s.labels:
                raise ExpoError("histogram %s: bucket without le" % f.name)
            g["buckets"].append((_parse_value(s.labels["le"], 0), s.value))
        elif s.name == f.name + "_sum":
            g["sum"] = s.value
        elif s.name == f.name + "_count":
            g["count"] = s.value
        else:
            raise ExpoError("histogram %s: stray sample %s" % (f.name, s.name))
    for key, g in groups.items():
        b = g["buckets"]
        if not b or b[-1][0] != math.inf:
            raise ExpoError("histogram %s%s: last bucket is not le=\"+Inf\"" % (f.name, dict(key)))
        for (le1, v1), (le2, v2) in zip(b, b[1:]):
            if not le1 < le2:
                raise ExpoError("histogram %s: buckets not in increasing le order" % f.name)
            if v2 < v1:
                raise ExpoError("histogram %s: bucket counts not cumulative" % f.name)
        if g["count"] is None or g["sum"] is None:
            raise ExpoError("histogram %s%s: _sum or _count missing" % (f.name, dict(key)))
        if g["count"] != b[-1][1]:
            raise ExpoError("histogram %s: +Inf bucket %r != _count %r" % (f.name, b[-1][1], g["count"]))


class Metrics:
    """A parsed page with lookups. Label filters: exact string, or a callable(value) -> bool
    (a label that is absent matches ""). The metric name and default are positional-only, so
    `name=` and `default=` are label filters."""

    def __init__(self, text, t0=None, t1=None, headers=None):
        self.text = text
        self.families = parse_exposition(text)
        self.t0 = t0            # time.time() when the scrape started
        self.t1 = t1            # time.time() when the whole page had arrived
        self.headers = headers or {}

    def samples(self, name, /, **labels):
        f = _family_of(name, self.families)
        if f is None:
            return []
        out = []
        for s in f.samples:
            if s.name != name:
                continue
            ok = True
            for k, want in labels.items():
                have = s.labels.get(k, "")
                if callable(want):
                    if not want(have):
                        ok = False
                        break
                elif have != want:
                    ok = False
                    break
            if ok:
                out.append(s)
        return out

    def value(self, name, /, **labels):
        """The value of exactly one matching series (TestFailure otherwise)."""
        ss = self.samples(name, **labels)
        if len(ss) != 1:
            raise TestFailure("expected one series %s%s, found %d: %s" % (name, labels, len(ss), ss[:5]))
        return ss[0].value

    def get(self, name, default=None, /, **labels):
        ss = self.samples(name, **labels)
        return ss[0].value if len(ss) == 1 else default

    def total(self, name, /, **labels):
        return sum(s.value for s in self.samples(name, **labels))

    def has_family(self, name):
        return name in self.families

    def container_ids(self):
        """The `id` labels of container_last_seen (one per container the agent reports)."""
        return {s.labels.get("id", "") for s in self.samples("container_last_seen")}


def of_container(cid):
    """Label filter for the `id` label of container cid (v1 /docker/<id>, v2 .../docker-<id>.scope)."""
    return lambda v: v.endswith("/" + cid) or v.endswith("docker-%s.scope" % cid)


def promtool_check(text):
    """Runs `promtool check metrics` on a page; returns (exit code, output lines)."""
    p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True,
                       timeout=60)
    out = (p.stdout + p.stderr).decode(errors="replace").splitlines()
    return p.returncode, [l for l in out if l.strip()]


# --------------------------------------------------------------------------------------------
# HTTP

def http_request(host, port, method, path, body=None, headers=None, timeout=5.0):
    """One request on a new connection; returns (status, {header: value} lowercased, body bytes)."""
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --------------------------------------------------------------------------------------------
# Per-test registry (filled by the helpers, emptied by the runner)

class _Registry:
    def __init__(self, test):
        self.test = test
        self.agents = []
        self.containers = []    # ids
        self.cleanups = []      # callables, run in reverse order


_current = _Registry("-")


def on_cleanup(fn):
    """Registers fn() to run when the current test ends (after its agents are stopped)."""
    _current.cleanups.append(fn)


# --------------------------------------------------------------------------------------------
# The agent process

def _proc_status(pid):
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                out[k] = v.strip()
    except OSError:
        pass
    return out


class Agent:
    """One `tether agent` subprocess, listening on 127.0.0.1:<free port>."""

    _seq = 0

    def __init__(self, *args, interval=1, log_level="info", docker=None, env=None, binary=None):
        self.interval = interval
        self.args = list(args)
        self.log_level = log_level
        self.docker = docker                # --docker URL or None for the default
        self.binary = binary or BINARY
        self.env = dict(os.environ)
        self.env.setdefault("ASAN_OPTIONS", "detect_leaks=1:halt_on_error=1")
        self.env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        if env:
            self.env.update(env)
        self.proc = None
        self.port = None
        self.started_at = None              # time.monotonic() just before exec
        self.stopped = False
        self.rc = None
        Agent._seq += 1
        os.makedirs(LOG_ROOT, exist_ok=True)
        self.log_path = os.path.join(LOG_ROOT, "%s-%s-agent%d.stderr" % (OWNER, _current.test, Agent._seq))

    def cmdline(self):
        cmd = [self.binary, "agent", "--listen", "127.0.0.1:%d" % self.port,
               "--interval", str(self.interval), "--log-level", self.log_level]
        if self.docker:
            cmd += ["--docker", self.docker]
        return cmd + self.args

    def start(self, wait=True):
        """Starts the process (and by default waits until /metrics answers). Returns self."""
        check(os.access(self.binary, os.X_OK), "agent binary %s missing or not executable" % self.binary)
        self.port = free_port()
        self.logf = open(self.log_path, "wb")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(self.cmdline(), stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        _current.agents.append(self)
        note("agent pid %d on :%d: %s" % (self.proc.pid, self.port, " ".join(self.cmdline()[1:])))
        if wait:
            self.wait_ready()
        return self

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def wait_ready(self, timeout=10.0):
        def ready():
            check(self.alive(), "agent exited during start-up (status %s): %s"
                  % (self.proc.returncode, self.log_tail()))
            return self.get("/metrics", timeout=1.0)[0] == 200
        wait_until(ready, timeout * slack(), "the agent's /metrics", step=0.05)

    def get(self, path, timeout=5.0):
        return http_request("127.0.0.1", self.port, "GET", path, timeout=timeout)

    def scrape(self, timeout=5.0):
        """GET /metrics, checked (200, content type) and parsed strictly: a Metrics."""
        check(self.alive(), "agent is not running (status %s): %s" % (self.proc.returncode, self.log_tail()))
        t0 = time.time()
        status, headers, body = self.get("/metrics", timeout=timeout)
        t1 = time.time()
        check(status == 200, "/metrics answered %d: %r" % (status, body[:200]))
        ctype = headers.get("content-type", "")
        check(ctype.startswith("text/plain") and "version=0.0.4" in ctype,
              "/metrics content type %r (want text/plain; version=0.0.4)" % ctype)
        return Metrics(body.decode("utf-8"), t0, t1, headers)

    def state(self, timeout=5.0):
        status, headers, body = self.get("/debug/state", timeout=timeout)
        check(status == 200, "/debug/state answered %d: %r" % (status, body[:200]))
        return json.loads(body)

    def send(self, sig):
        """Sends signal sig to the agent."""
        os.kill(self.proc.pid, sig)

    def fd_count(self):
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))

    def rss_bytes(self):
        v = _proc_status(self.proc.pid).get("VmRSS", "0 kB").split()[0]
        return int(v) * 1024

    def threads(self):
        return int(_proc_status(self.proc.pid).get("Threads", "0"))

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def log_tail(self, n=30):
        lines = self.log_text().splitlines()
        return "\n    ".join([""] + lines[-n:]) if lines else "(no output)"

    def wait_collections(self, n=2, timeout=None):
        """Waits until tether_collections_total has grown by n; returns the last page."""
        start = self.scrape().value("tether_collections_total")
        last = [None]

        def grown():
            m = self.scrape()
            last[0] = m
            return m.value("tether_collections_total") >= start + n
        wait_until(grown, timeout or (n * self.interval + 5) * slack(), "%d collections" % n)
        return last[0]

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        """Stops the agent with sig and checks the exit: TestFailure unless it exits 0 within
        timeout with no sanitizer report. Idempotent."""
        if self.stopped:
            return self.rc
        self.stopped = True
        problems = []
        if self.proc.poll() is not None:
            problems.append("agent had already exited with status %s" % self.proc.returncode)
        else:
            self.proc.send_signal(sig)
            try:
                limit = timeout * slack()
                self.proc.wait(limit)
            except subprocess.TimeoutExpired:
                problems.append("agent did not exit within %.0fs of %s" % (limit, sig.name))
                self.proc.kill()
                self.proc.wait()
            else:
                if self.proc.returncode != 0:
                    problems.append("agent exited with status %s after %s" % (self.proc.returncode, sig.name))
        self.rc = self.proc.returncode
        self.logf.close()
        text = self.log_text()
        for pat in SANITIZER_PATTERNS:
            if pat in text:
                i = text.index(pat)
                problems.append("sanitizer report (%r) in the agent's stderr:\n%s" % (pat, text[max(0, i - 200):i + 3000]))
                break
        if problems:
            raise TestFailure("; ".join(problems) + "\n  agent log: %s%s" % (self.log_path, self.log_tail()))
        return self.rc

    def kill(self):
        """Last-resort cleanup: SIGKILL without checks."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc is not None and not self.logf.closed:
            self.logf.close()
        self.stopped = True


# --------------------------------------------------------------------------------------------
# Docker Engine API over the unix socket

class _UnixConn(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("docker", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class DockerError(TestFailure):
    pass


class Docker:
    """Minimal Docker Engine API client (API 1.41); one connection per request, with timeouts."""

    def __init__(self, sock=DOCKER_SOCK):
        self.sock = sock

    def request(self, method, path, body=None, timeout=30.0, ok=(200, 201, 204), raw=False):
        """One API call: (status, parsed JSON), or (status, bytes) when raw or not JSON.
        DockerError on a transport error, a timeout or a status not in ok."""
        c = _UnixConn(self.sock, timeout)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            hdrs = {"Content-Type": "application/json"} if payload is not None else {}
            c.request(method, "/v1.41" + path, body=payload, headers=hdrs)
            r = c.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException) as e:
            raise DockerError("docker %s %s: %s: %s" % (method, path, type(e).__name__, e)) from e
        finally:
            c.close()
        if ok and r.status not in ok:
            raise DockerError("docker %s %s: %d %s" % (method, path, r.status, data[:300]))
        if data and not raw and r.getheader("Content-Type", "").startswith("application/json"):
            return r.status, json.loads(data)
        return r.status, data

    def ping(self, timeout=2.0):
        try:
            return self.request("GET", "/_ping", timeout=timeout)[1] == b"OK"
        except DockerError:
            return False

    def run(self, suffix, cmd, labels=None, host_config=None, env=None, start=True):
        """Creates (and starts) container tit-<pid>-<suffix> running cmd (a list, or a string
        for `sh -c`); registered with the current test for removal. Returns the full id."""
        if isinstance(cmd, str):
            cmd = ["sh", "-c", cmd]
        name = "tit-%s-%s" % (OWNER, suffix)
        lab = {"tit.owner": OWNER, "tit.test": _current.test}
        lab.update(labels or {})
        body = {"Image": IMAGE, "Cmd": cmd, "Labels": lab, "HostConfig": host_config or {}}
        if env:
            body["Env"] = ["%s=%s" % kv for kv in env.items()]
        _, data = self.request("POST", "/containers/create?name=" + urllib.parse.quote(name), body)
        cid = data["Id"]
        _current.containers.append(cid)
        if start:
            self.request("POST", "/containers/%s/start" % cid)
        return cid

    def start(self, cid):
        self.request("POST", "/containers/%s/start" % cid)

    def inspect(self, cid, timeout=30.0):
        return self.request("GET", "/containers/%s/json" % cid, timeout=timeout)[1]

    def remove(self, cid, timeout=60.0):
        self.request("DELETE", "/containers/%s?force=1&v=1" % cid, timeout=timeout, ok=(204, 404))

    def list(self, name_filter="tit-", all_=True, timeout=30.0):
        q = urllib.parse.quote(json.dumps({"name": [name_filter]}))
        return self.request("GET", "/containers/json?all=%d&filters=%s" % (int(all_), q), timeout=timeout)[1]

    def pid_of(self, cid):
        return self.inspect(cid)["State"]["Pid"]

    def ip_of(self, cid):
        return self.inspect(cid)["NetworkSettings"]["IPAddress"]

    def events(self, since, until, timeout=30.0):
        """Container events between two unix times (the stream ends at `until`)."""
        q = urllib.parse.quote(json.dumps({"type": ["container"]}))
        _, data = self.request("GET", "/events?since=%.3f&until=%.3f&filters=%s" % (since, until, q),
                               timeout=timeout, raw=True)
        out = []
        dec = json.JSONDecoder()
        text = data.decode()
        i = 0
        while i < len(text):
            while i < len(text) and text[i] in " \r\n\t":
                i += 1
            if i >= len(text):
                break
            obj, i = dec.raw_decode(text, i)
            out.append(obj)
        return out

    def sweep_stale(self):
        """Removes tit-* containers left by test processes that no longer exist."""
        try:
            conts = self.list()
        except DockerError:
            return
        for c in conts:
            owner = c.get("Labels", {}).get("tit.owner", "")
            names = c.get("Names") or []
            if not any(n.lstrip("/").startswith("tit-") for n in names):
                continue
            if owner.isdigit() and (owner == OWNER or os.path.exists("/proc/%s" % owner)):
                continue
            if not owner and time.time() - c.get("Created", 0) < 600:
                continue  # e.g. dockerd.sh's image check, still running
            try:
                self.remove(c["Id"])
                note("removed stale container %s (owner %s)" % (names[0], owner or "?"))
            except DockerError:
                pass


docker = Docker()


def docker_request_kind(path):
    """Kind of a Docker API request path, as tether_docker_requests_total{kind} names it:
    ping, events, list, inspect, version, or the path itself."""
    p = re.sub(r"^/v[0-9.]+", "", path.split("?")[0])
    if p == "/_ping":
        return "ping"
    if p == "/events":
        return "events"
    if p == "/containers/json":
        return "list"
    if re.fullmatch(r"/containers/[^/]+/json", p):
        return "inspect"
    if p == "/version":
        return "version"
    return p


_UNITS = {"B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
          "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3, "TiB": 1024 ** 4}


def parse_size(s):
    """docker's human sizes ('96.77MiB', '209kB', '0B') -> bytes."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]+)\s*", s)
    if not m or m.group(2) not in _UNITS:
        raise ValueError("bad size %r" % s)
    return float(m.group(1)) * _UNITS[m.group(2)]


def docker_stats(names, timeout=60):
    """`docker stats --no-stream --format '{{json .}}'` for names -> {name: parsed dict} with
    cpu_pct, mem_bytes, mem_limit, net_rx, net_tx, pids, plus the raw fields."""
    p = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{json .}}"] + list(names),
                       capture_output=True, timeout=timeout,
                       env=dict(os.environ, DOCKER_HOST="unix://" + DOCKER_SOCK))
    check(p.returncode == 0, "docker stats failed: %s" % p.stderr.decode(errors="replace"))
    out = {}
    for line in p.stdout.decode().splitlines():
        if not line.strip():
            continue
        d = json.loads(line)
        used, _, limit = d["MemUsage"].partition("/")
        rx, _, tx = d["NetIO"].partition("/")
        d["cpu_pct"] = float(d["CPUPerc"].rstrip("%"))
        d["mem_bytes"] = parse_size(used)
        d["mem_limit"] = parse_size(limit)
        d["net_rx"] = parse_size(rx)
        d["net_tx"] = parse_size(tx)
        d["pids"] = int(d["PIDs"]) if d["PIDs"].isdigit() else None
        out[d["Name"]] = d
    return out


# --------------------------------------------------------------------------------------------
# dockerd control

def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _proc_state(pid):
    s = _read("/proc/%d/stat" % pid)
    # The comm field may contain spaces: the state follows the last ')'.
    return s[s.rfind(")") + 2:][:1] if s else ""


def _is_live(pid, comm):
    return _read("/proc/%d/comm" % pid).strip() == comm and _proc_state(pid) not in ("", "Z", "X")


class Dockerd:
    """The dockerd on DOCKER_SOCK: find, stop/continue, kill and restart it.

    kill() remembers the command line; restart() (and ensure_up()) start it again with it, adding
    --live-restore (unless TETHER_IT_LIVE_RESTORE=0) so containers keep running across restarts.
    """

    def __init__(self):
        self.cmdline = None     # argv of the dockerd last killed
        self.cwd = "/"
        self.child = None       # Popen of a dockerd we started (reaped when killed)

    def pid(self):
        for f in (DOCKERD_PIDFILE, "/var/run/docker.pid"):
            v = _read(f).strip()
            if v.isdigit() and _is_live(int(v), "dockerd"):
                return int(v)
        for d in os.listdir("/proc"):
            if d.isdigit() and _is_live(int(d), "dockerd"):
                return int(d)
        return None

    def managed_containerd(self, dpid):
        """Pid of the containerd dockerd started as its own child, or None (system containerd)."""
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            st = _read("/proc/%s/stat" % d)
            if not st:
                continue
            fields = st[st.rfind(")") + 2:].split()
            if len(fields) > 1 and fields[1] == str(dpid) and _is_live(int(d), "containerd"):
                return int(d)
        return None

    def stopped(self):
        p = self.pid()
        return p is not None and _proc_state(p) == "T"

    def sigstop(self):
        p = self.pid()
        check(p is not None, "no dockerd process to stop")
        os.kill(p, signal.SIGSTOP)
        note("dockerd pid %d SIGSTOPped" % p)
        return p

    def sigcont(self):
        p = self.pid()
        if p is not None:
            os.kill(p, signal.SIGCONT)
            note("dockerd pid %d SIGCONTinued" % p)
        return p

    def kill(self, with_containerd=True):
        """SIGKILLs dockerd (and the containerd it started itself); waits until they are gone."""
        p = self.pid()
        check(p is not None, "no dockerd process to kill")
        self.cmdline = [a for a in _read("/proc/%d/cmdline" % p).split("\0") if a]
        try:
            self.cwd = os.readlink("/proc/%d/cwd" % p)
        except OSError:
            self.cwd = "/"
        cd = self.managed_containerd(p) if with_containerd else None
        os.kill(p, signal.SIGKILL)
        if cd:
            os.kill(cd, signal.SIGKILL)
        note("dockerd pid %d killed%s" % (p, " with its containerd pid %d" % cd if cd else ""))
        if self.child is not None and self.child.pid == p:
            self.child.wait(10)
        wait_until(lambda: not _is_live(p, "dockerd"), 30, "dockerd pid %d to die" % p)
        if cd:
            wait_until(lambda: not _is_live(cd, "containerd"), 30, "containerd pid %d to die" % cd)
        return p

    def restart(self, timeout=60):
        """Starts dockerd again (the killed command line) and waits for /_ping."""
        cmd = list(self.cmdline or ["dockerd", "--storage-driver=vfs"])
        if LIVE_RESTORE and "--live-restore" not in cmd:
            cmd.append("--live-restore")
        # dockerd refuses to start while its pid file names an existing process, and a killed
        # dockerd whose parent has not reaped it yet still exists (as a zombie).
        pidfile = "/var/run/docker.pid"
        for i, arg in enumerate(cmd):
            if arg in ("-p", "--pidfile") and i + 1 < len(cmd):
                pidfile = cmd[i + 1]
            elif arg.startswith("--pidfile="):
                pidfile = arg.split("=", 1)[1]
        old = _read(pidfile).strip()
        if old.isdigit() and not _is_live(int(old), "dockerd"):
            try:
                os.unlink(pidfile)
            except OSError:
                pass
        log = open(DOCKERD_LOG, "ab")
        self.child = subprocess.Popen(cmd, cwd=self.cwd or "/", stdin=subprocess.DEVNULL, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        with open(DOCKERD_PIDFILE, "w") as f:
            f.write("%d\n" % self.child.pid)
        note("dockerd restarted: pid %d: %s" % (self.child.pid, " ".join(cmd)))
        wait_until(lambda: docker.ping(), timeout, "dockerd to answer /_ping after restart", step=0.25)

    def ensure_up(self, timeout=60):
        """Whatever a test did: continue a stopped dockerd, start a dead one; wait for /_ping.
        Returns a description of what had to be repaired ("" when nothing)."""
        fixed = []
        p = self.pid()
        if p is not None and _proc_state(p) == "T":
            os.kill(p, signal.SIGCONT)
            fixed.append("SIGCONT to dockerd %d" % p)
        if p is None:
            self.restart(timeout)
            fixed.append("restarted dockerd")
        wait_until(lambda: docker.ping(), timeout, "dockerd /_ping", step=0.25)
        return ", ".join(fixed)


dockerd = Dockerd()


def _emergency(signum, frame):
    # Never leave dockerd stopped or our agents running when interrupted.
    try:
        p = dockerd.pid()
        if p is not None and _proc_state(p) == "T":
            os.kill(p, signal.SIGCONT)
    finally:
        for a in _current.agents:
            a.kill()
        raise KeyboardInterrupt


# --------------------------------------------------------------------------------------------
# Kernel files

class CgroupFiles:
    """Paths of one docker container's cgroup files (v1 cgroupfs, v2 cgroupfs or systemd)."""

    def __init__(self, cid):
        self.cid = cid
        v1 = "/sys/fs/cgroup/cpuacct/docker/" + cid
        if os.path.isdir(v1):
            self.v2 = False
            self.dirs = {c: "/sys/fs/cgroup/%s/docker/%s" % (c, cid) for c in ("cpu", "cpuacct", "memory", "pids")}
        else:
            self.v2 = True
            for d in ("/sys/fs/cgroup/docker/" + cid, "/sys/fs/cgroup/system.slice/docker-%s.scope" % cid):
                if os.path.isdir(d):
                    self.dirs = {c: d for c in ("cpu", "cpuacct", "memory", "pids")}
                    break
            else:
                raise TestFailure("no cgroup directory for container %s" % cid)

    def read(self, ctrl, name):
        with open(os.path.join(self.dirs[ctrl], name)) as f:
            return f.read()

    def kv(self, ctrl, name):
        out = {}
        for line in self.read(ctrl, name).splitlines():
            parts = line.split()
            if len(parts) == 2:
                out[parts[0]] = int(parts[1])
        return out

    def cpu(self):
        """usage_ns, user_s, system_s, nr_periods, nr_throttled, throttled_ns."""
        if self.v2:
            st = self.kv("cpu", "cpu.stat")
            return {"usage_ns": st["usage_usec"] * 1000, "user_s": st["user_usec"] / 1e6,
                    "system_s": st["system_usec"] / 1e6, "nr_periods": st.get("nr_periods", 0),
                    "nr_throttled": st.get("nr_throttled", 0), "throttled_ns": st.get("throttled_usec", 0) * 1000}
        hz = os.sysconf("SC_CLK_TCK")
        st = self.kv("cpuacct", "cpuacct.stat")
        cs = self.kv("cpu", "cpu.stat")
        return {"usage_ns": int(self.read("cpuacct", "cpuacct.usage")), "user_s": st["user"] / hz,
                "system_s": st["system"] / hz, "nr_periods": cs["nr_periods"],
                "nr_throttled": cs["nr_throttled"], "throttled_ns": cs["throttled_time"]}

    def mem(self):
        """usage, working_set, rss, cache, mapped_file, swap, max_usage, failcnt, limit (bytes)."""
        if self.v2:
            st = self.kv("memory", "memory.stat")
            usage = int(self.read("memory", "memory.current"))
            lim = self.read("memory", "memory.max").strip()
            return {"usage": usage, "working_set": max(0, usage - st.get("inactive_file", 0)),
                    "rss": st.get("anon", 0), "cache": st.get("file", 0),
                    "mapped_file": st.get("file_mapped", 0), "limit": 0 if lim == "max" else int(lim)}
        st = self.kv("memory", "memory.stat")
        usage = int(self.read("memory", "memory.usage_in_bytes"))
        return {"usage": usage, "working_set": max(0, usage - st.get("total_inactive_file", 0)),
                "rss": st.get("total_rss", 0), "cache": st.get("total_cache", 0),
                "mapped_file": st.get("total_mapped_file", 0), "swap": st.get("total_swap", 0),
                "max_usage": int(self.read("memory", "memory.max_usage_in_bytes")),
                "failcnt": int(self.read("memory", "memory.failcnt")),
                "limit": int(self.read("memory", "memory.limit_in_bytes"))}

    def procs(self):
        """(processes, threads) of the container."""
        pids = [p for p in self.read("pids", "cgroup.procs").split()]
        threads = len(self.read("pids", "cgroup.threads" if self.v2 else "tasks").split())
        return len(pids), threads


def docker_cgroups():
    """Ids (64 hex) of the docker container cgroups present now (v1 cpuacct or v2 cgroupfs)."""
    root = "/sys/fs/cgroup/cpuacct/docker"
    if not os.path.isdir(root):
        root = "/sys/fs/cgroup/docker"
    try:
        return {d for d in os.listdir(root) if len(d) == 64}
    except OSError:
        return set()


class CgroupWatcher(threading.Thread):
    """Polls the docker cgroup directory every 0.2 s and records, per container id, the first and
    last time.monotonic() it was seen: who appeared or went away during a window, even when
    other users of the engine create containers faster than dockerd's event log keeps them."""

    def __init__(self):
        super().__init__(daemon=True)
        self.first_seen = {}
        self.last_seen = {}
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            now = time.monotonic()
            for i in docker_cgroups():
                self.first_seen.setdefault(i, now)
                self.last_seen[i] = now
            self.halt.wait(0.2)

    def changed(self, t0, t1):
        """Ids that appeared or disappeared between monotonic times t0 and t1."""
        out = set()
        for i, first in list(self.first_seen.items()):
            last = self.last_seen.get(i, first)
            if t0 <= first <= t1 or t0 <= last < t1 - 0.3:
                out.add(i)
        return out

    def stop(self):
        self.halt.set()
        self.join(2)


def read_netdev(pid):
    """/proc/<pid>/net/dev -> {iface: {rx_bytes, rx_packets, rx_errors, rx_dropped, tx_...}}."""
    out = {}
    for line in _read("/proc/%d/net/dev" % pid).splitlines()[2:]:
        name, _, rest = line.partition(":")
        v = [int(x) for x in rest.split()]
        if len(v) < 16:
            continue
        out[name.strip()] = {"rx_bytes": v[0], "rx_packets": v[1], "rx_errors": v[2], "rx_dropped": v[3],
                             "tx_bytes": v[8], "tx_packets": v[9], "tx_errors": v[10], "tx_dropped": v[11]}
    return out


def _flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, prefix + k + "."))
        else:
            out[prefix + k] = v
    return out


class Sampler(threading.Thread):
    """Calls fn() (-> dict, nested dicts flattened to 'a.b' keys) every `period` seconds in the
    background and keeps (time.time(), values) so a value published by the agent can be compared
    with the kernel's values over a time window."""

    def __init__(self, fn, period=0.05):
        super().__init__(daemon=True)
        self.fn = fn
        self.period = period
        self.rows = []
        self.lock = threading.Lock()
        self.halt = threading.Event()
        self.errors = 0

    def run(self):
        while not self.halt.is_set():
            try:
                row = _flatten(self.fn())
                t = time.time()
                with self.lock:
                    self.rows.append((t, row))
            except (OSError, ValueError, KeyError):
                self.errors += 1
            self.halt.wait(self.period)

    def stop(self):
        self.halt.set()
        self.join(2)

    def window(self, key, t0, t1):
        """(min, max) of key over the rows in [t0, t1], widened by the row just before t0 and the
        one just after t1 (so a counter read anywhere in the window is bracketed)."""
        with self.lock:
            rows = list(self.rows)
        vals = []
        before = after = None
        for t, r in rows:
            if key not in r:
                continue
            if t < t0:
                before = r[key]
            elif t <= t1:
                vals.append(r[key])
            elif after is None:
                after = r[key]
        if before is not None:
            vals.append(before)
        if after is not None:
            vals.append(after)
        check(vals, "kernel sampler has no %s values around [%.2f, %.2f]" % (key, t0, t1))
        return min(vals), max(vals)

    def rate(self, key, t0, t1):
        """Average per-second change of key between t0 and t1 (nearest rows)."""
        with self.lock:
            rows = [(t, r[key]) for t, r in self.rows if key in r]
        a = min(rows, key=lambda x: abs(x[0] - t0))
        b = min(rows, key=lambda x: abs(x[0] - t1))
        return (b[1] - a[1]) / (b[0] - a[0]) if b[0] > a[0] else 0.0


# --------------------------------------------------------------------------------------------
# Test runner

def _cleanup(reg):
    """Stops the test's agents (collecting failures), removes its containers, runs cleanups,
    and makes sure dockerd is running. Returns a list of failure strings."""
    failures = []
    for a in reg.agents:
        try:
            if not a.stopped:
                a.stop()
        except TestFailure as e:
            failures.append("at the end of the test: %s" % e)
        except Exception as e:  # noqa: BLE001
            failures.append("stopping the agent: %r" % e)
            a.kill()
    for fn in reversed(reg.cleanups):
        try:
            fn()
        except Exception as e:  # noqa: BLE001
            failures.append("cleanup %s: %r" % (getattr(fn, "__name__", fn), e))
    try:
        fixed = dockerd.ensure_up()
        if fixed:
            note("dockerd repaired after the test: %s" % fixed)
    except Exception as e:  # noqa: BLE001
        failures.append("dockerd is not answering after the test: %s" % e)
    for cid in reg.containers:
        try:
            docker.remove(cid)
        except Exception as e:  # noqa: BLE001
            failures.append("removing container %s: %s" % (cid[:12], e))
    return failures


def main(module_globals):
    """Runs the test_* functions of a test file (in definition order). Arguments:
    [--binary PATH] [--leak-check] [-k SUBSTRING] [--list]."""
    global BINARY, LEAK_CHECK, SLOW, _current
    args = sys.argv[1:]
    only = None
    while args:
        a = args.pop(0)
        if a == "--binary":
            BINARY = os.path.abspath(args.pop(0))
        elif a == "--leak-check":
            LEAK_CHECK = True
            SLOW = 2.0
        elif a == "-k":
            only = args.pop(0)
        elif a == "--list":
            only = "\0list"
        else:
            print("usage: %s [--binary PATH] [--leak-check] [-k SUBSTRING] [--list]" % sys.argv[0])
            sys.exit(2)
    fname = os.path.basename(module_globals.get("__file__", "?"))
    tests = [(n, f) for n, f in module_globals.items() if n.startswith("test_") and callable(f)]
    if only == "\0list":
        for n, _ in tests:
            print(n)
        return
    if only:
        tests = [(n, f) for n, f in tests if only in n]
    signal.signal(signal.SIGTERM, _emergency)
    signal.signal(signal.SIGINT, _emergency)
    os.makedirs(LOG_ROOT, exist_ok=True)
    passed = failed = 0
    if os.access(BINARY, os.X_OK) and docker.ping(5):
        docker.sweep_stale()
    for name, fn in tests:
        _current = _Registry(name)
        print("=== RUN   %s (%s%s)" % (name, BINARY, ", leak check" if LEAK_CHECK else ""), flush=True)
        t0 = time.monotonic()
        errors = []
        try:
            fn()
        except TestFailure as e:
            errors.append(str(e))
        except KeyboardInterrupt:
            errors.append("interrupted")
            _cleanup(_current)
            print("--- FAIL: %s: interrupted" % name, flush=True)
            print("RESULT %s passed=%d failed=%d" % (fname, passed, failed + 1), flush=True)
            sys.exit(130)
        except Exception:  # noqa: BLE001 - a bug in the test or an unexpected agent answer
            errors.append(traceback.format_exc())
        errors += _cleanup(_current)
        dt = time.monotonic() - t0
        if errors:
            failed += 1
            print("--- FAIL: %s (%.1fs)" % (name, dt), flush=True)
            for e in errors:
                print("    " + str(e).replace("\n", "\n    "), flush=True)
            for a in _current.agents:
                print("    agent log %s (last lines):%s" % (a.log_path, a.log_tail(15)), flush=True)
        else:
            passed += 1
            print("--- PASS: %s (%.1fs)" % (name, dt), flush=True)
    print("RESULT %s passed=%d failed=%d" % (fname, passed, failed), flush=True)
    sys.exit(1 if failed else 0)
