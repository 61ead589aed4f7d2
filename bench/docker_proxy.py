#!/usr/bin/env python3
"""docker_proxy: a counting pass-through proxy for the Docker API unix socket (benchmark aid).

    docker_proxy.py LISTEN_SOCK UPSTREAM_SOCK LOG_FILE

Listens on LISTEN_SOCK and relays every connection byte for byte to UPSTREAM_SOCK
(normally /var/run/docker.sock). Each HTTP request line the client sends
("GET /v1.41/_ping HTTP/1.1") is appended to LOG_FILE as

    <unix time, ms precision> <connection number> <method> <path>

so bench/agent_bench.sh can count the requests a monitored program made in its
measurement window. Requests are recognised at line starts of the client->daemon
stream, which also covers keep-alive connections; after an Upgrade the stream is
relayed without looking (nothing after it can be a request line of ours).
Standard library only; stops on SIGTERM/SIGINT and removes LISTEN_SOCK.
"""
import asyncio
import os
import re
import signal
import sys
import time

REQ = re.compile(rb"^(GET|HEAD|POST|PUT|DELETE|PATCH|OPTIONS) (\S+) HTTP/1\.[01]\r?$")
MAX_PENDING = 16384  # longest partial line kept while looking for request lines


class Counter:
    """Owns the log file and the connection numbering."""

    def __init__(self, path):
        self.log = open(path, "a", buffering=1)
        self.conns = 0

    def request(self, conn, method, path):
        self.log.write("%.3f %d %s %s\n" % (time.time(), conn, method, path))


async def pipe_requests(reader, writer, counter, conn):
    """Client -> daemon: relays bytes and logs every request line found at a line start."""
    pending = b""
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            buf = pending + data
            lines = buf.split(b"\n")
            pending = lines.pop()
            if len(pending) > MAX_PENDING:
                pending = b""  # a long body line: not a request line
            for line in lines:
                m = REQ.match(line)
                if m:
                    counter.request(conn, m.group(1).decode(), m.group(2).decode("latin-1"))
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.write_eof()
        except (OSError, RuntimeError):
            pass


async def pipe_raw(reader, writer):
    """Daemon -> client: relays bytes."""
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except (OSError, RuntimeError):
            pass


def make_handler(upstream, counter):
    async def handle(creader, cwriter):
        counter.conns += 1
        conn = counter.conns
        try:
            sreader, swriter = await asyncio.open_unix_connection(upstream)
        except OSError:
            cwriter.close()
            return
        await asyncio.gather(pipe_requests(creader, swriter, counter, conn),
                             pipe_raw(sreader, cwriter))
        swriter.close()
    return handle


async def main(listen, upstream, logpath):
    counter = Counter(logpath)
    if os.path.exists(listen):
        os.unlink(listen)
    server = await asyncio.start_unix_server(make_handler(upstream, counter), path=listen)
    os.chmod(listen, 0o666)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    try:
        os.unlink(listen)
    except OSError:
        pass


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.stderr.write("usage: docker_proxy.py LISTEN_SOCK UPSTREAM_SOCK LOG_FILE\n")
        sys.exit(2)
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
