"""The chaos run (issue 18): a bounded random mix against one lighttpd on
127.0.0.1 with several workers: uploads of every kind (id in the header or
the query, chunked, HTTP/2, aborted, refused for their size, rewritten into
the progress URL, sent to the progress URL by server.error-handler-404),
polls, event streams, graceful restarts (SIGUSR1) and worker kills
(SIGKILL).  Chaos(server).run(seconds) returns its figures; every finding
is a string in figures["findings"].  tests/integration/test_chaos.py runs
it; doc/security.md, "The chaos run", has its figures."""
import json
import os
import random
import signal
import socket
import threading
import time

import h2.exceptions

from h2client import H2Client
from lighty import SlowUpload, counts, read_response, workers_of

CONFIG = """
upload-progress.progress-url = "/progress"
server.max-worker = {workers}
server.max-request-size = 64
server.graceful-shutdown-timeout = 5
url.rewrite-if-not-file = ( "^/up$" => "/progress" )
$HTTP["url"] =~ "^/missing" {{ server.error-handler-404 = "/progress" }}
status.statistics-url = "/server-statistics"
"""
MODULES = ("mod_uploadprogress", "mod_rewrite", "mod_status", "mod_cgi")
STATES = ("starting", "uploading", "done", "error")
KINDS = ("header", "query", "chunked", "http2", "aborted", "too-large",
         "rewritten", "error-handler-404")
# a restart is settled (old workers no longer accept) this long after it
SETTLE = 2.0


def done(n):
    return {"state": "done", "received": n, "size": n}


def error(status):
    return {"state": "error", "status": status}


class Chaos:
    def __init__(self, server, workers, seed=None):
        self.server = server
        self.workers = workers
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.figures = {"uploads": 0, "checked": 0, "lost": 0, "polls": 0,
                        "streams": 0, "restarts": 0, "kills": 0,
                        "connection errors": 0, "findings": []}
        self.by_kind = dict.fromkeys(KINDS, 0)
        self.signals = []          # monotonic times of SIGUSR1s sent
        self.killed = set()
        self.old = set()           # workers of a generation a restart ended
        self.seen = {}             # worker: when it was first seen
        self.ids = []              # ids of this run, for polls and streams
        self.counter = 0

    # --- bookkeeping ------------------------------------------------------

    def add(self, key, n=1):
        with self.lock:
            self.figures[key] += n

    def finding(self, text):
        with self.lock:
            self.figures["findings"].append(text)

    def new_id(self):
        with self.lock:
            self.counter += 1
            pid = "%08x%024x" % (self.rng.getrandbits(32), self.counter)
            self.ids.append(pid)
            return pid

    def quiet_since(self, t0):
        """Whether no restart can have touched what ran since t0."""
        with self.lock:
            return not any(t0 - SETTLE <= t for t in self.signals)

    def poll(self, pid):
        """A poll (retried across connections cut by kills and restarts,
        for up to 10 s): the answer."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                status, headers, body = self.server.request(
                    "GET", "/progress?X-Progress-ID=" + pid)
            except OSError:
                self.add("connection errors")
                time.sleep(0.05)
                continue
            self.add("polls")
            answer = json.loads(body)
            if status != 200 or answer.get("state") not in STATES:
                self.finding("poll %s: %d %r" % (pid, status, body))
            return answer
        self.finding("poll %s: no answer for 10 s" % pid)
        return None

    # --- uploads ----------------------------------------------------------

    def upload(self, kind, pid, size):
        """Sends one upload of its kind; returns the final answer it must
        have once its client has the response, or None (no response)."""
        port = self.server.port
        if kind == "http2":
            client = H2Client(port)
            try:
                sid = client.upload("/sink.cgi", pid=pid, size=size)
                client.send(sid, size // 2)
                client.send(sid, size - size // 2, end=True)
                status, _ = client.response(sid)
            finally:
                client.close()
            return done(size) if status == 200 else None
        path = {"rewritten": "/up", "error-handler-404": "/missing/up"}.get(kind, "/sink.cgi")
        if kind == "too-large":
            size = 100 * 1024
        up = SlowUpload(port, path, size=size, pid=pid,
                        via="query" if kind == "query" else "header",
                        chunked=kind == "chunked")
        try:
            if kind in ("too-large", "rewritten", "error-handler-404"):
                # refused without a handler that reads the body
                status, _ = read_response(up.sock)
                return {413: error(413), 404: error(404)}.get(status)
            up.send(size // 2)
            if kind == "aborted":
                up.sock.shutdown(socket.SHUT_RDWR)
                return None
            up.send(size - size // 2)
            status, _ = up.finish()
            return done(size) if status == 200 else None
        finally:
            up.close()

    def uploader(self):
        while not self.stop.is_set():
            kind = self.rng.choice(KINDS)
            pid = self.new_id()
            t0 = time.monotonic()
            try:
                final = self.upload(kind, pid, self.rng.randrange(1, 40000))
            except (OSError, h2.exceptions.H2Error):   # a kill or a restart
                final = None                          # cut the connection
            self.add("uploads")
            with self.lock:
                self.by_kind[kind] += 1
            if kind == "aborted":
                self.check_aborted(pid, t0)
            elif final is None:
                self.add("lost")
            else:
                answer = self.poll(pid)
                if self.quiet_since(t0):
                    self.add("checked")
                    if answer is None or counts(answer) != final:
                        self.finding("%s upload %s: polled %r, expected %r"
                                     % (kind, pid, answer, final))

    def check_aborted(self, pid, t0):
        """An abort ends as an error, never done."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not self.stop.is_set():
            answer = self.poll(pid)
            if answer is None or answer["state"] == "error":
                return
            if answer["state"] == "done":
                self.finding("aborted upload %s says done" % pid)
                return
            if not self.quiet_since(t0):   # its table may be gone
                return
            time.sleep(0.05)

    # --- polls and streams ---------------------------------------------------

    def poller(self):
        while not self.stop.is_set():
            with self.lock:
                pid = self.rng.choice(self.ids) if self.ids else "0" * 32
            if self.rng.random() < 0.2:
                pid = "%032x" % self.rng.getrandbits(128)   # never used
            self.poll(pid)
            time.sleep(0.005)

    def streamer(self):
        while not self.stop.is_set():
            with self.lock:
                pid = self.rng.choice(self.ids[-20:]) if self.ids else "0" * 32
            try:
                self.stream(pid, self.rng.uniform(0.1, 1.5))
            except OSError:
                self.add("connection errors")

    def stream(self, pid, seconds):
        """Watches pid's event stream for a while (or to its end)."""
        sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=5)
        try:
            sock.sendall(("GET /progress?X-Progress-ID=%s HTTP/1.1\r\nHost: x\r\n"
                          "Accept: text/event-stream\r\n\r\n" % pid).encode())
            self.add("streams")
            status, data = read_response(sock)
            if status not in (200, 429, 503):
                self.finding("stream %s: status %d" % (pid, status))
                return
            end = time.monotonic() + seconds
            sock.settimeout(0.2)
            while time.monotonic() < end and not self.stop.is_set():
                try:
                    got = sock.recv(65536)
                except socket.timeout:
                    continue
                if not got:
                    break
                data += got
            for line in data.split(b"\n"):
                if line.startswith(b"data: ") and json.loads(line[6:])["state"] not in STATES:
                    self.finding("stream %s: event %r" % (pid, line))
        finally:
            sock.close()

    # --- restarts and kills ------------------------------------------------

    def ended_by_a_restart(self, pid):
        """Whether pid was of a generation that a restart ended: seen before
        one was signalled, or first seen so soon after one (SETTLE) that the
        restart was still under way (lighttpd forks a generation, then takes
        the next SIGUSR1 and ends it)."""
        return pid in self.old or any(t >= self.seen[pid] - SETTLE for t in self.signals)

    def current_workers(self):
        pids = set(workers_of(self.server)) - {self.server.proc.pid}
        now = time.monotonic()
        with self.lock:
            gone = set(self.seen) - pids
            for pid in gone - self.killed:
                if not self.ended_by_a_restart(pid):
                    self.figures["findings"].append("worker %d died unasked" % pid)
                del self.seen[pid]
            for pid in pids - set(self.seen):
                self.seen[pid] = now
        return pids

    def chaos(self):
        while not self.stop.wait(self.rng.uniform(1.0, 3.0)):
            pids = self.current_workers() - self.old
            if self.rng.random() < 0.3:
                with self.lock:
                    self.old |= set(self.seen)
                    self.signals.append(time.monotonic())
                os.kill(self.server.proc.pid, signal.SIGUSR1)
                self.add("restarts")
            elif pids:
                pid = self.rng.choice(sorted(pids))
                with self.lock:
                    self.killed.add(pid)
                self.server.kill_worker(pid)   # (so stop() does not count it)
                self.add("kills")

    def watcher(self):
        while not self.stop.wait(0.1):
            self.current_workers()

    def run(self, seconds, uploaders=3, streamers=2):
        self.current_workers()
        threads = [threading.Thread(target=f, daemon=True) for f in
                   [self.uploader] * uploaders + [self.streamer] * streamers
                   + [self.poller, self.chaos, self.watcher]]
        for t in threads:
            t.start()
        self.stop.wait(seconds)
        self.stop.set()
        for t in threads:
            t.join(30)
            if t.is_alive():
                self.finding("a client thread did not stop")
        self.figures["by kind"] = dict(self.by_kind)
        return self.figures
