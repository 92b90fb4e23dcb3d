"""The bench's clients on 127.0.0.1: wrk and its figures, uploads (one
big, many finished, one kept in flight), keep-alive requests one after
another, event streams.  Raw HTTP and the piecewise upload are the shared
harness's (tests/harness/clients.py)."""
import re
import resource
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from harness.clients import SlowUpload, http_get, received_of

HERE = Path(__file__).resolve().parent
WRK = "/usr/bin/wrk"
# The upload in flight that lines 1, 6, 7 and I poll.
ID = "%032x" % 0xfeed


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)$", text)
    return float(m.group(1)) * UNITS[m.group(2)]


def wrk_command(url, seconds, conns=32, script=None, args=(), threads=1):
    cmd = [WRK, "-t%d" % threads, "-c%d" % conns, "-d%ds" % max(1, round(seconds)),
           "--latency"]
    if script:
        cmd += ["-s", str(HERE / script)]
    cmd.append(url)
    if args:
        cmd += ["--"] + [str(a) for a in args]
    return cmd


def wrk_results(cmd, out, err=""):
    """requests/s, latency p50/p99/max (ms), requests, non-2xx answers."""
    if "Requests/sec" not in out:
        raise RuntimeError("%s:\n%s%s" % (" ".join(cmd), out, err))
    res = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
           "requests": int(re.search(r"(\d+) requests in", out).group(1))}
    res["max"] = ms(re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", out).group(1))
    for pct in ("50", "99"):
        res["p" + pct] = ms(re.search(r"\s%s%%\s+(\S+)" % pct, out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non2xx"] = int(errors.group(1)) if errors else 0
    return res


def wrk(url, seconds, **kw):
    cmd = wrk_command(url, seconds, **kw)
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 600)
    return wrk_results(cmd, run.stdout, run.stderr)


def ok_wrk(url, seconds, **kw):
    """wrk, but every answer must be a success."""
    res = wrk(url, seconds, **kw)
    if res["non2xx"]:
        raise RuntimeError("%d of %d answers from %s were not 2xx"
                           % (res["non2xx"], res["requests"], url))
    return res


class SteadyUpload(threading.Thread):
    """An upload in flight (harness SlowUpload): `piece` bytes every
    `interval` seconds once started, until closed; the declared size is
    never reached."""

    def __init__(self, port, pid, piece=1024, interval=0.05, size=1 << 40):
        super().__init__(daemon=True)
        self.upload = SlowUpload(port, "/upload", size=size, pid=pid, via="query")
        self.piece, self.interval = piece, interval
        self.halt = threading.Event()

    @property
    def sent(self):
        return self.upload.sent

    def run(self):
        try:
            while not self.halt.wait(self.interval):
                self.send_piece()
        except OSError:
            pass

    def send_piece(self):
        self.upload.send(self.piece)

    def close(self):
        self.halt.set()
        self.upload.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class UploadCrowd(threading.Thread):
    """n uploads in flight (ids first, first+1, ...; first None: no ids, so
    untracked), each sent 1 KiB every INTERVAL seconds by one thread, until
    closed."""
    INTERVAL = 0.5

    def __init__(self, port, n, first):
        super().__init__(daemon=True)
        self.ids = [None] * n if first is None else ["%032x" % (first + k) for k in range(n)]
        self.uploads = [SlowUpload(port, "/upload", size=1 << 40, pid=pid, via="query")
                        for pid in self.ids]
        self.halt = threading.Event()
        self.went_round = threading.Event()

    def wait_sending(self, timeout=60):
        """Waits until every upload has sent its first piece."""
        if not self.went_round.wait(timeout):
            raise RuntimeError("the crowd's first round took more than %d s" % timeout)

    @property
    def sent(self):
        return sum(up.sent for up in self.uploads)

    def run(self):
        try:
            while True:
                for up in self.uploads:
                    up.send(1024)
                self.went_round.set()
                if self.halt.wait(self.INTERVAL):
                    return
        except OSError:
            pass

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.halt.set()
        self.join(10)
        for up in self.uploads:
            up.close()


def wait_uploading(port, pid, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = http_get(port, "/progress?X-Progress-ID=" + pid)
        if "uploading" in body and (received_of(body) or 0) > 0:
            return body
        time.sleep(0.1)
    raise RuntimeError("no upload in progress seen at port %d: %s" % (port, body))


def upload(port, pid, size):
    """One upload of size bytes as fast as the client can send; seconds."""
    piece = b"x" * (1 << 20)
    head = "POST /upload%s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % (
        "?X-Progress-ID=" + pid if pid else "", size)
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(head.encode())
        left = size
        while left > 0:
            n = min(left, len(piece))
            s.sendall(piece[:n])
            left -= n
        answer = s.recv(4096)
    seconds = time.monotonic() - t0
    if not answer.startswith(b"HTTP/1.1 200") and not answer.startswith(b"HTTP/1.0 200"):
        raise RuntimeError("upload answered %r" % answer[:80])
    return seconds


def populate(port, count, first, conns=64):
    """count finished uploads with ids first+1 .. first+count (and up to
    conns more); returns uploads/s.  wrk runs until the last one is done
    (populate.lua stops sending then; SIGINT ends wrk's timed run)."""
    if count <= 0:
        return 0.0
    last = "/progress?X-Progress-ID=%032x" % (first + count)
    cmd = wrk_command("http://127.0.0.1:%d/upload" % port, 86400,
                      conns=min(conns, count), script="populate.lua", args=(count, first))
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while proc.poll() is None and '"done"' not in http_get(port, last)[1]:
            time.sleep(0.1)
        seconds = time.monotonic() - t0
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    res = wrk_results(cmd, out, err)
    if res["non2xx"]:
        raise RuntimeError("%d uploads failed while populating" % res["non2xx"])
    return res["requests"] / seconds


def recv_some(sock):
    data = sock.recv(65536)
    if not data:
        raise RuntimeError("the server closed a keep-alive connection")
    return data


def keepalive_gets(port, path, n, method="GET", status=200):
    """n requests without a body (GETs, or reports: POSTs with their form
    in the query), one after another on one keep-alive connection; each
    answer must have the status."""
    request = ("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n"
               % (method, path, "" if method == "GET" else "Content-Length: 0\r\n")).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        pending = b""
        for _ in range(n):
            s.sendall(request)
            while b"\r\n\r\n" not in pending:
                pending += recv_some(s)
            head, _, pending = pending.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 %d" % status):
                raise RuntimeError("%s %s answered %r" % (method, path, head[:80]))
            length = re.search(rb"(?i)content-length:\s*(\d+)", head)
            length = int(length.group(1)) if length else 0   # (a 204 has none)
            while len(pending) < length:
                pending += recv_some(s)
            pending = pending[length:]


def event_stream_request(pid):
    return ("GET /progress?X-Progress-ID=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Accept: text/event-stream\r\n\r\n" % pid).encode()


class EventReader:
    """The events of one stream, from a chunked HTTP/1.1 response fed to
    it piece by piece: each event's JSON as it comes, and a count."""

    def __init__(self):
        self.raw, self.body, self.head = b"", b"", None
        self.count = 0

    def feed(self, data):
        """The JSON texts of the events completed by data."""
        self.raw += data
        if self.head is None:
            if b"\r\n\r\n" not in self.raw:
                return []
            self.head, _, self.raw = self.raw.partition(b"\r\n\r\n")
            if not self.head.startswith(b"HTTP/1.1 200") or b"text/event-stream" not in self.head:
                raise RuntimeError("not an event stream: %r" % self.head[:200])
        while b"\r\n" in self.raw:   # chunks: hex size, CRLF, data, CRLF
            size_line, _, rest = self.raw.partition(b"\r\n")
            size = int(size_line, 16)
            if len(rest) < size + 2:
                break
            self.body += rest[:size]
            self.raw = rest[size + 2:]
        events = []
        while b"\n\n" in self.body:
            event, _, self.body = self.body.partition(b"\n\n")
            for line in event.split(b"\n"):
                if line.startswith(b"data: "):
                    events.append(line[6:].decode())
                    self.count += 1
        return events


class EventStream(threading.Thread):
    """One event stream of upload pid, read in a thread: (received, when)
    for each event."""

    def __init__(self, port, pid):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(event_stream_request(pid))
        self.events = []

    def run(self):
        reader = EventReader()
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return
                now = time.monotonic()
                for text in reader.feed(data):
                    self.events.append((received_of(text) or 0, now))
        except OSError:
            pass

    def close(self):
        self.sock.close()


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
