"""Benchmarks of mod_uploadprogress against nginx's and Apache's upload
progress modules, on 127.0.0.1, one worker process per server.

Started by bench/run (which builds the module first); see doc/benchmarks.md.
Every server runs from a throw-away directory in its own session and is
stopped on the way out, whatever happens (an error, Ctrl-C, SIGTERM)."""
import argparse
import asyncio
import random
import resource
import statistics
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from random_ids import ask_random_ids, rss_shmem_kb

HERE = Path(__file__).resolve().parent
TOP = HERE.parent
LIGHTTPD = "/usr/sbin/lighttpd"
LIGHTTPD_MODULES = Path("/usr/lib/lighttpd")
NGINX = "/usr/sbin/nginx"
NGINX_MODULE = "/usr/lib/nginx/modules/ngx_http_uploadprogress_module.so"
APACHE = "/usr/sbin/apache2"
APACHE_MODULES = Path("/usr/lib/apache2/modules")
WRK = "/usr/bin/wrk"
VALGRIND = "/usr/bin/valgrind"
CALLGRIND_CONTROL = "/usr/bin/callgrind_control"
STRACE = "/usr/bin/strace"
# The servers run on CPU 0; this script, and so wrk, the backends and our
# clients (which inherit its affinity), on CPU 1.  Each measured server then
# has a core of its own instead of taking turns with its load.
PINNED = hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2
SERVER_CPU, CLIENT_CPU = 0, 1
TINY_JSON = b'{"state":"starting"}\n'
# The module's defaults (doc/mod_uploadprogress.md), which the servers here
# keep: the targets of lines 6 and 7 are stated in them.
PUBLISH_INTERVAL_MS = 100
PUSH_INTERVAL_MS = 250

RUNNING = []   # every process we started and have not stopped yet


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(proc, port, name, log, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited %s:\n%s" % (name, proc.returncode, read(log)))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("%s did not listen on %d:\n%s" % (name, port, read(log)))


def read(path):
    try:
        return Path(path).read_text(errors="replace")[-3000:]
    except OSError:
        return ""


def stop(proc):
    """Stops a process we started (its whole session: workers too)."""
    if proc in RUNNING:
        RUNNING.remove(proc)
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass


def stop_all():
    for proc in list(RUNNING):
        stop(proc)


def spawn(cmd, log, **kw):
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, **kw)
    RUNNING.append(proc)
    return proc


def rss_kib(pid):
    """Resident memory of pid and its children (the workers), in KiB."""
    total = 0
    pids = [pid] + [int(p) for p in subprocess.run(
        ["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()]
    for p in pids:
        for line in Path("/proc/%d/status" % p).read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


# --- servers ---------------------------------------------------------------

class Server:
    name = "?"

    def __init__(self, root):
        self.prefix = ["taskset", "-c", str(SERVER_CPU)] if PINNED else []
        self.dir = Path(tempfile.mkdtemp(prefix=self.name + ".", dir=root))
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.proc = None
        self.log = self.dir / "out.log"
        www = self.dir / "www"
        www.mkdir()
        (www / "tiny.json").write_bytes(TINY_JSON)
        os.chmod(www, 0o755)
        os.chmod(www / "tiny.json", 0o644)

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def start(self):
        self.proc = spawn(self.prefix + self.command(), self.log, cwd=self.dir)
        try:
            wait_listening(self.proc, self.port, self.name, self.log, timeout=60)
        except RuntimeError as e:
            raise RuntimeError("%s\n%s" % (e, read(self.dir / "error.log"))) from None
        return self

    def stop(self):
        if self.proc:
            stop(self.proc)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Lighttpd(Server):
    """Debian's lighttpd; with_module loads build/mod_uploadprogress.so."""
    name = "lighttpd"

    def __init__(self, root, module, with_module=True, backend=None, workers=1,
                 remove_timeout=60, max_entries=None, stream=0, push_interval=None,
                 report_url=None):
        super().__init__(root)
        mods = self.dir / "modules"
        mods.mkdir()
        for so in LIGHTTPD_MODULES.glob("*.so"):
            (mods / so.name).symlink_to(so)
        (mods / "mod_uploadprogress.so").symlink_to(module)
        names = ["mod_uploadprogress"] if with_module else []
        names.append("mod_proxy")
        conf = [
            'server.document-root = "%s/www"' % self.dir,
            'server.bind = "127.0.0.1"', "server.port = %d" % self.port,
            'server.errorlog = "%s/error.log"' % self.dir,
            'server.pid-file = "%s/lighttpd.pid"' % self.dir,
            'server.upload-dirs = ( "%s" )' % self.dir,
            "server.max-worker = %d" % workers,
            "server.max-connections = 4096", "server.max-fds = 8192",
            "server.max-keep-alive-requests = 1000000",   # as nginx's keepalive_requests
            "server.stream-request-body = %d" % stream,
            "server.modules = ( %s )" % ", ".join('"%s"' % m for m in names),
            'mimetype.assign = ( ".json" => "application/json" )',
        ]
        if with_module:
            conf += ['upload-progress.progress-url = "/progress"',
                     "upload-progress.remove-timeout = %d" % remove_timeout,
                     # every stream of the bench comes from 127.0.0.1
                     "upload-progress.max-streams-per-client = 1048576"]
            if max_entries:
                conf.append("upload-progress.max-entries = %d" % max_entries)
            if push_interval:
                conf.append("upload-progress.push-interval = %d" % push_interval)
            if report_url:
                conf.append('upload-progress.report-url = "%s"' % report_url)
        if backend:   # a port, or the path of a unix socket
            where = ('"socket" => "%s"' % backend if isinstance(backend, Path)
                     else '"host" => "127.0.0.1", "port" => %d' % backend)
            conf.append('$HTTP["url"] =^ "/upload" { proxy.server = ( "" => '
                        '(( %s )) ) }' % where)
        (self.dir / "lighttpd.conf").write_text("\n".join(conf) + "\n")

    def command(self):
        return [LIGHTTPD, "-D", "-f", str(self.dir / "lighttpd.conf"),
                "-m", str(self.dir / "modules")]


class Nginx(Server):
    """nginx-light with the uploadprogress module, or (backend None) a cheap
    sink answering 200 to everything, also on the unix socket self.socket
    (lighttpd's proxy connects to that about twice as fast as to TCP)."""
    name = "nginx"

    def __init__(self, root, backend=None):
        super().__init__(root)
        body = self.dir / "body"
        body.mkdir()
        self.socket = self.dir / "sink.sock"
        if backend:
            http = """
    upload_progress uploads 64m;
    server {
        listen 127.0.0.1:%(port)d;
        root %(dir)s/www;
        location /upload { proxy_pass http://127.0.0.1:%(backend)d;
                           track_uploads uploads 60s; }
        location ^~ /progress { upload_progress_json_output;
                                report_uploads uploads; }
    }""" % {"port": self.port, "dir": self.dir, "backend": backend}
            load = "load_module %s;" % NGINX_MODULE
        else:   # a backend: on the clients' CPU
            self.prefix = []
            http = """
    server {
        listen 127.0.0.1:%d;
        listen unix:%s;
        location / { return 200 "ok\\n"; }
    }""" % (self.port, self.socket)
            load = ""
        (self.dir / "nginx.conf").write_text("""%(load)s
daemon off; master_process on; worker_processes 1; user root;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_max_body_size 0;
    client_body_temp_path %(dir)s/body;
    proxy_temp_path %(dir)s/body;
    keepalive_requests 1000000;
    %(http)s
}
""" % {"load": load, "dir": self.dir, "http": http})

    def command(self):
        return [NGINX, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf")]


class Apache(Server):
    """apache2 (mpm_event, one child process) with mod_upload_progress."""
    name = "apache"

    def __init__(self, root, backend):
        super().__init__(root)
        mods = ["mpm_event", "authz_core", "proxy", "proxy_http", "upload_progress"]
        load = "\n".join("LoadModule %s_module %s/mod_%s.so" % (m, APACHE_MODULES, m)
                         for m in mods)
        (self.dir / "apache2.conf").write_text("""%(load)s
ServerRoot %(dir)s
ServerName 127.0.0.1
Listen 127.0.0.1:%(port)d
PidFile %(dir)s/apache2.pid
ErrorLog %(dir)s/error.log
Mutex file:%(dir)s default
User www-data
Group www-data
DocumentRoot %(dir)s/www
KeepAlive On
MaxKeepAliveRequests 0
StartServers 1
ServerLimit 1
ThreadsPerChild 64
MinSpareThreads 1
MaxSpareThreads 64
MaxRequestWorkers 64
UploadProgressSharedMemorySize 16777216
<Location /upload>
    TrackUploads On
    ProxyPass http://127.0.0.1:%(backend)d/
</Location>
<Location /progress>
    ReportUploads On
</Location>
""" % {"load": load, "dir": self.dir, "port": self.port, "backend": backend})

    def command(self):
        return [APACHE, "-d", str(self.dir), "-f", str(self.dir / "apache2.conf"),
                "-DFOREGROUND"]


class BodySink:
    """A body-reading backend of ours (a process, bench/sink.py): reads each
    request's whole Content-Length body, answers 200."""

    def __init__(self, root):
        self.port = free_port()
        self.log = Path(root) / "sink.log"
        self.proc = None

    def __enter__(self):
        self.proc = spawn([sys.executable, str(HERE / "sink.py"), str(self.port)], self.log)
        wait_listening(self.proc, self.port, "sink", self.log)
        return self

    def __exit__(self, *exc):
        stop(self.proc)


# --- clients ---------------------------------------------------------------

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


def best_rps(url, seconds, reps):
    return max(ok_wrk(url, seconds)["rps"] for _ in range(reps))


def http_get(port, path):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(("GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" % path).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode(errors="replace")


def received_of(body):
    m = re.search(r"""['"]received['"]\s*:\s*(-?\d+)""", body)
    return int(m.group(1)) if m else None


class SlowUpload(threading.Thread):
    """An upload in flight: headers, then `piece` bytes every `interval`
    seconds until stopped (the declared size is never reached)."""

    def __init__(self, port, pid, piece=1024, interval=0.05, size=1 << 40):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(("POST /upload?X-Progress-ID=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           "Content-Length: %d\r\n\r\n" % (pid, size)).encode())
        self.piece, self.interval = b"x" * piece, interval
        self.sent = 0
        self.halt = threading.Event()

    def run(self):
        try:
            while not self.halt.wait(self.interval):
                self.sock.sendall(self.piece)
                self.sent += len(self.piece)
        except OSError:
            pass

    def send_piece(self):
        self.sock.sendall(self.piece)
        self.sent += len(self.piece)

    def close(self):
        self.halt.set()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


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


# --- the measurements --------------------------------------------------------

ID = "%032x" % 0xfeed


def poll_throughput(cfg, root, sink, table):
    """1: polls/s at the progress url of an upload in flight, vs the anchors."""
    rates = {}
    servers = [("ours", lambda: Lighttpd(root, cfg.module, backend=sink.port)),
               ("nginx", lambda: Nginx(root, backend=sink.port)),
               ("apache", lambda: Apache(root, backend=sink.port))]
    for name, make in servers:
        with make() as srv, SlowUpload(srv.port, ID) as up:
            up.start()
            wait_uploading(srv.port, ID)
            url = srv.url("/progress?X-Progress-ID=" + ID)
            rates[name] = best_rps(url, cfg.seconds, cfg.reps)
    with Lighttpd(root, cfg.module, with_module=False) as srv:
        rates["static"] = best_rps(srv.url("/tiny.json"), cfg.seconds, cfg.reps)
    table.append(("1 poll throughput (req/s, 32 conns)", "ours %.0f" % rates["ours"],
                  "nginx %.0f, apache %.0f, lighttpd tiny.json %.0f"
                  % (rates["nginx"], rates["apache"], rates["static"])))
    table.append(("  ours / nginx", "%.2fx" % (rates["ours"] / rates["nginx"]), "target >= 1.0x"))
    table.append(("  ours / apache", "%.2fx" % (rates["ours"] / rates["apache"]), ""))
    table.append(("  ours / lighttpd tiny.json", "%.2fx" % (rates["ours"] / rates["static"]),
                  "target >= 1.0x"))


def cost_to_others(cfg, root, table):
    """2: a small static file with the module loaded vs without it."""
    with Lighttpd(root, cfg.module, with_module=True) as on, \
         Lighttpd(root, cfg.module, with_module=False) as off:
        with_m, without = [], []
        for _ in range(cfg.reps):   # alternate, so drift hits both alike
            with_m.append(wrk(on.url("/tiny.json"), cfg.seconds)["rps"])
            without.append(wrk(off.url("/tiny.json"), cfg.seconds)["rps"])
    table.append(("2 static file with / without module",
                  "%.3fx" % (max(with_m) / max(without)),
                  "%.0f vs %.0f req/s (best of %d); target >= 0.99x"
                  % (max(with_m), max(without), cfg.reps)))


def upload_speed(cfg, root, sink, table):
    """3: one big upload through lighttpd to a body-reading backend."""
    size = cfg.upload_mib << 20
    with Lighttpd(root, cfg.module, backend=sink.port, stream=1) as srv:
        tracked, untracked = [], []
        for rep in range(cfg.reps):
            pid = "%032x" % (0xb16 + rep)
            tracked.append(upload(srv.port, pid, size))
            untracked.append(upload(srv.port, None, size))
        status, body = http_get(srv.port, "/progress?X-Progress-ID=" + pid)
        if "done" not in body or received_of(body) != size:
            raise RuntimeError("tracked upload not reported done: " + body)
    t, u = min(tracked), min(untracked)
    table.append(("3 upload %d MiB tracked / untracked" % cfg.upload_mib,
                  "%.3fx" % (u / t),
                  "%.0f vs %.0f MiB/s (best of %d); target >= 0.99x"
                  % (cfg.upload_mib / t, cfg.upload_mib / u, cfg.reps)))


def poll_latency(srv, n, cfg):
    """Best (lowest) p50 and p99 of cfg.reps runs polling random ids of n."""
    runs = [wrk(srv.url("/progress"), cfg.seconds, conns=1, script="poll.lua", args=(n,))
            for _ in range(cfg.reps)]
    return min(r["p50"] for r in runs), min(r["p99"] for r in runs)


def scale(cfg, root, backend, table):
    """4: poll latency and memory with 10 ... N finished entries.  A second
    server holding the smallest count is measured alongside each size, so
    both see the same noise from other users of the machine."""
    sizes = cfg.entries
    big = Lighttpd(root, cfg.module, backend=backend, remove_timeout=86400,
                   max_entries=int(sizes[-1] * 1.05) + 1000)
    small = Lighttpd(root, cfg.module, backend=backend, remove_timeout=86400)
    with big, small:
        rss0 = rss_kib(big.proc.pid)
        populate(small.port, sizes[0], 0)
        done = 0
        results = []
        for n in sizes:
            rate = populate(big.port, n - done, done)
            done = n
            lat = poll_latency(big, n, cfg)
            ref = poll_latency(small, sizes[0], cfg)
            results.append((n, lat, ref, rss_kib(big.proc.pid), rate))
        status, body = http_get(big.port, "/progress?X-Progress-ID=%032x" % done)
        if "done" not in body:
            raise RuntimeError("last populated upload is not done: " + body)
    for n, lat, ref, rss, rate in results:
        table.append(("4 %d entries: poll p50 / p99" % n,
                      "%.3f / %.3f ms" % lat,
                      "p99 %.2fx that at %d (%.3f ms, measured alongside); RSS %.1f MiB%s"
                      % (lat[1] / ref[1], sizes[0], ref[1], rss / 1024.0,
                         "; populated at %.0f uploads/s" % rate if n > sizes[0] else "")))
    table.append(("  p99 at %d / p99 at %d" % (sizes[-1], sizes[0]),
                  "%.2fx" % (results[-1][1][1] / results[-1][2][1]), "target <= 1.2x"))
    # from the server's start: the table's pages become resident as they
    # are touched, by entries or by a sweep reading through them
    per_entry = (results[-1][3] - rss0) * 1024.0 / sizes[-1]
    table.append(("  memory per entry", "%.0f bytes" % per_entry,
                  "RSS growth from the server's start (%.1f MiB, empty table) to %d "
                  "entries; target <= 128" % (rss0 / 1024.0, sizes[-1])))


def burst_then_poll(cfg, root, backend, remove_timeout):
    """Uploads for one second, then polls their ids in two windows: one that
    ends before any could expire, then 4 s in which, with remove_timeout 4,
    they all expire and are swept.  Returns (uploads, seconds, window 2)."""
    with Lighttpd(root, cfg.module, backend=backend, remove_timeout=remove_timeout,
                  max_entries=4 << 20) as srv:
        t0 = time.monotonic()
        res = wrk(srv.url("/upload"), 1, conns=128, script="populate.lua",
                  args=(1 << 30, 0))
        burst = time.monotonic() - t0
        poll = lambda secs: wrk(srv.url("/progress"), secs, conns=1,
                                script="poll.lua", args=(res["requests"],))
        poll(2)
        return res["requests"], burst, poll(4)


def median(values):
    v = sorted(values)
    return (v[(len(v) - 1) // 2] + v[len(v) // 2]) / 2


def expiry_stall(cfg, root, backend, table):
    """5: worst poll latency in the seconds a burst of entries expires
    together, against the same windows on a server whose entries do not
    expire (the machine's own noise).  The two alternate, cfg.windows times
    each; the median of the windows' worst is the robust figure."""
    # finished in second f, an entry is swept from second f+4+1 on: not
    # before the first window (t0+1 .. t0+3) ends, and within the second
    expiring, control, counts = [], [], []
    for _ in range(cfg.windows):
        n, burst, window = burst_then_poll(cfg, root, backend, 4)
        expiring.append(window)
        counts.append(n)
        control.append(burst_then_poll(cfg, root, backend, 86400)[2])
    worst = lambda runs: [r["max"] for r in runs]
    p99 = lambda runs: [r["p99"] for r in runs]
    table.append(("5 worst poll while entries expire",
                  "%.2f ms" % max(worst(expiring)),
                  "worst of %d windows; %d to %d entries finished within a second "
                  "expire together in each; nothing expiring: worst %.2f ms"
                  % (cfg.windows, min(counts), max(counts), max(worst(control)))))
    table.append(("  median of the windows' worst",
                  "%.2f ms" % median(worst(expiring)),
                  "nothing expiring %.2f ms; windows' worst %s vs %s ms; target < 5 ms"
                  % (median(worst(control)),
                     " ".join("%.1f" % w for w in worst(expiring)),
                     " ".join("%.1f" % w for w in worst(control)))))
    table.append(("  median of the windows' p99",
                  "%.3f ms" % median(p99(expiring)),
                  "nothing expiring %.3f ms" % median(p99(control))))


def freshness(cfg, root, sink, table):
    """6: how far `received` in a poll lags behind the bytes sent: as bytes,
    and as the age of the answer (the poll's start less the moment the
    first piece it leaves out was sent).  Polls start at random moments
    between pieces, so that they meet every phase of the publish timer."""
    rng = random.Random(6)
    for workers in (1, 4):
        with Lighttpd(root, cfg.module, backend=sink.port, workers=workers) as srv, \
             SlowUpload(srv.port, ID, piece=4096) as up:
            sent_at = []          # (bytes sent in all, when)
            worst_bytes, worst_age, polls = 0, 0.0, 0
            deadline = time.monotonic() + cfg.fresh_seconds
            while time.monotonic() < deadline:
                up.send_piece()
                sent_at.append((up.sent, time.monotonic()))
                time.sleep(rng.uniform(0.01, 0.1))   # the piece is in the server by now
                asked = time.monotonic()
                status, body = http_get(srv.port, "/progress?X-Progress-ID=" + ID)
                got = received_of(body) or 0
                polls += 1
                worst_bytes = max(worst_bytes, up.sent - got)
                missing = [t for total, t in sent_at if total > got]
                if missing:
                    worst_age = max(worst_age, asked - missing[0])
        label = "6 freshness, %d worker%s" % (workers, "s" if workers > 1 else "")
        target = ("target exact" if workers == 1 else "target <= publish-interval + 50 ms "
                  "= %.2f s" % ((PUBLISH_INTERVAL_MS + 50) / 1000.0))
        table.append((label, "%d bytes, %.3f s" % (worst_bytes, worst_age),
                      "worst lag over %d polls (new connection each, 4 KiB sent "
                      "10 to 100 ms before each); %s" % (polls, target)))


# --- event streams (issue 13) -------------------------------------------------

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


def event_latency(cfg, root, sink, table):
    """7: from bytes arriving at the server to the event that first counts
    them leaving it (as the client sees both, on the loopback): for every
    piece of a steady upload, the time until an event includes it."""
    for workers in cfg.latency_workers:
        with Lighttpd(root, cfg.module, backend=sink.port, workers=workers) as srv, \
             SlowUpload(srv.port, ID, piece=1024, interval=0.02) as up:
            up.send_piece()
            wait_uploading(srv.port, ID)
            stream = EventStream(srv.port, ID)
            stream.start()
            time.sleep(0.5)   # its first event, with what is in by now
            sent_at = []
            deadline = time.monotonic() + cfg.latency_seconds
            while time.monotonic() < deadline:
                up.send_piece()
                sent_at.append((up.sent, time.monotonic()))
                time.sleep(0.02)
            time.sleep(0.6)   # the last pieces' events
            stream.close()
        events = stream.events
        lags = []
        for total, t in sent_at:
            after = [when for received, when in events if received >= total]
            if after:
                lags.append(after[0] - t)
        if not lags:
            raise RuntimeError("no event counted the upload's pieces (%d events)" % len(events))
        lags.sort()
        times = [when for _, when in events]
        rate = (len(times) - 1) / max(1e-9, times[-1] - times[0])
        target = ("target median <= push-interval + 10 ms = %d ms" % (PUSH_INTERVAL_MS + 10)
                  if workers == 1 else "(a stream of another worker may read the shared "
                  "table up to publish-interval %d ms later)" % PUBLISH_INTERVAL_MS)
        table.append(("7 event latency, %d worker%s" % (workers, "s" if workers > 1 else ""),
                      "median %.0f ms" % (1000 * statistics.median(lags)),
                      "p90 %.0f ms, worst %.0f ms over %d pieces (1 KiB every 20 ms), "
                      "%.1f events/s; %s"
                      % (1000 * lags[int(0.9 * (len(lags) - 1))], 1000 * lags[-1], len(lags),
                         rate, target)))


def cpu_ns(pid):
    """CPU time of pid and its children (the workers), in ns, from
    /proc/PID/schedstat (exact, unlike the clock ticks of /proc/PID/stat)."""
    return sum(int(Path("/proc/%d/schedstat" % p).read_text().split()[0])
               for p in server_pids(pid))


def wakeups(pid):
    """How many times pid and its children were put on a CPU (the third
    field of /proc/PID/schedstat counts the time slices run)."""
    return sum(int(Path("/proc/%d/schedstat" % p).read_text().split()[2])
               for p in server_pids(pid))


def server_pids(pid):
    return [pid] + [int(p) for p in subprocess.run(
        ["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()]


# The watchers below count what they get in tally["got"].

async def watch_by_events(port, pid, ready, halt, tally):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(event_stream_request(pid))
    events = EventReader()
    while not halt.is_set():
        data = await reader.read(65536)
        if not data:
            raise RuntimeError("an event stream ended before its upload")
        got = len(events.feed(data))
        tally["got"] += got
        if got and not ready.done():
            ready.set_result(None)
    writer.close()


async def watch_by_polls(port, pid, ready, halt, tally, offset):
    """Polls once a second on one keep-alive connection, `offset` seconds
    into each second."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = ("GET /progress?X-Progress-ID=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
               % pid).encode()
    await asyncio.sleep(offset)
    while not halt.is_set():
        started = time.monotonic()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError("a poll answered %r" % head[:80])
        await reader.readexactly(int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1)))
        tally["got"] += 1
        if not ready.done():
            ready.set_result(None)
        await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    writer.close()


async def watchers_cost(srv, ids, watchers, how, seconds):
    """The server's CPU time (ns) while `watchers` clients follow the
    uploads `ids` (shared out evenly) for `seconds`, and what they got."""
    loop = asyncio.get_running_loop()
    halt = asyncio.Event()
    readies = [loop.create_future() for _ in range(watchers)]
    tally = {"got": 0}
    if how == "events":
        tasks = [watch_by_events(srv.port, ids[i % len(ids)], readies[i], halt, tally)
                 for i in range(watchers)]
    else:
        tasks = [watch_by_polls(srv.port, ids[i % len(ids)], readies[i], halt, tally,
                                i / watchers) for i in range(watchers)]
    running = [asyncio.ensure_future(t) for t in tasks]
    await asyncio.wait_for(asyncio.gather(*readies), 60)
    before, got_before = cpu_ns(srv.proc.pid), tally["got"]
    await asyncio.sleep(seconds)
    spent, got = cpu_ns(srv.proc.pid) - before, tally["got"] - got_before
    halt.set()
    done, pending = await asyncio.wait(running, timeout=5)
    for task in pending:
        task.cancel()
    for task in done:
        task.result()   # a watcher's error is the measurement's
    return spent, got


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def stream_cost(cfg, root, sink, table):
    """8: lighttpd's CPU time while cfg.watchers clients follow uploads in
    flight, over event streams and by polling once a second: cfg.uploads
    uploads, each sending 1 KiB every 50 ms (so every push tick has news),
    cfg.watchers / cfg.uploads watchers each, on fresh servers alike.  Also
    over event streams with a push-interval of 1 s: as much news as the polls."""
    raise_fd_limit()
    ids = ["%032x" % (0x5e0 + i) for i in range(cfg.uploads)]
    spent, got = {}, {}
    for how in ("events", "events 1 s", "polls", "alone"):
        with Lighttpd(root, cfg.module, backend=sink.port,
                      push_interval=1000 if how == "events 1 s" else None) as srv:
            ups = [SlowUpload(srv.port, pid, piece=1024, interval=0.05) for pid in ids]
            try:
                for up in ups:
                    up.start()
                for pid in ids:
                    wait_uploading(srv.port, pid)
                if how == "alone":
                    before = cpu_ns(srv.proc.pid)
                    time.sleep(cfg.cost_seconds)
                    spent[how], got[how] = cpu_ns(srv.proc.pid) - before, 0
                else:
                    spent[how], got[how] = asyncio.run(watchers_cost(
                        srv, ids, cfg.watchers, how.split()[0], cfg.cost_seconds))
            finally:
                for up in ups:
                    up.close()
    net = lambda how: spent[how] - spent["alone"]
    each = lambda how: net(how) / 1e3 / max(1, got[how])
    table.append(("8 CPU, %d watchers over %d s: events / polls" % (cfg.watchers, cfg.cost_seconds),
                  "%.2fx" % (spent["events"] / spent["polls"]),
                  "lighttpd %.0f vs %.0f ms of CPU (%d events vs %d polls); uploads alone "
                  "%.0f ms, without them %.2fx; target <= 0.25x"
                  % (spent["events"] / 1e6, spent["polls"] / 1e6, got["events"], got["polls"],
                     spent["alone"] / 1e6, net("events") / max(1, net("polls")))))
    table.append(("  push-interval 1 s: events / polls",
                  "%.2fx" % (spent["events 1 s"] / spent["polls"]),
                  "%.0f ms of CPU, %d events; without the uploads' %.2fx; per event %.1f us "
                  "(%.1f at 250 ms), per poll %.1f us, net of the uploads"
                  % (spent["events 1 s"] / 1e6, got["events 1 s"],
                     net("events 1 s") / max(1, net("polls")), each("events 1 s"),
                     each("events"), each("polls"))))


def idle_wakeups(cfg, root, sink, table):
    """9: a server with no upload in flight wakes no more often with the
    module than without it: 4 workers, counted after an upload and its event
    stream have come and gone (their timers must be disarmed by then)."""
    counts = {}
    for module in (True, False):
        with Lighttpd(root, cfg.module, backend=sink.port, workers=4,
                      with_module=module) as srv:
            time.sleep(1)   # the workers are up
            if module:
                pid = "%032x" % 0x1d1e
                stream = EventStream(srv.port, pid)
                stream.start()
                upload(srv.port, pid, 1 << 20)
                stream.join(10)
                stream.close()
                if not stream.events or '"done"' not in http_get(
                        srv.port, "/progress?X-Progress-ID=" + pid)[1]:
                    raise RuntimeError("the upload before the idle window did not end done")
                time.sleep(1)
            before = wakeups(srv.proc.pid)
            time.sleep(cfg.idle_seconds)
            counts[module] = wakeups(srv.proc.pid) - before
            processes = len(server_pids(srv.proc.pid))
    table.append(("9 idle server: wakeups with / without module",
                  "%d / %d" % (counts[True], counts[False]),
                  "over %d s, %d processes (4 workers), after an upload and its event "
                  "stream ended; target: no more than without (+1 per process for the "
                  "window's edges)" % (cfg.idle_seconds, processes)))


# --- instruction counts (callgrind) ------------------------------------------

class Callgrind:
    """A lighttpd server (one worker) under callgrind.  count(work) runs
    work() between a zeroing and a dump of the counters and returns the
    instructions the server executed meanwhile (repeatable, unlike time)."""

    def __init__(self, srv, *options):
        self.srv = srv
        self.out = srv.dir / "callgrind.out"
        srv.prefix = srv.prefix + [
            VALGRIND, "--tool=callgrind", "--callgrind-out-file=%s" % self.out] + list(options)
        self.dumps = 0

    def __enter__(self):
        self.srv.start()
        return self

    def __exit__(self, *exc):
        self.srv.stop()

    def control(self, *args):
        subprocess.run([CALLGRIND_CONTROL] + list(args) + [str(self.srv.proc.pid)],
                       check=True, capture_output=True, timeout=60)

    def count(self, work):
        self.control("-z")
        work()
        self.control("-d")
        self.dumps += 1
        self.last = Path("%s.%d" % (self.out, self.dumps))
        return dump_instructions(self.last)

    def dumps_after_exit(self):
        """The instructions of each dump written so far (--dump-after)."""
        self.srv.stop()
        files = sorted(self.out.parent.glob(self.out.name + ".*"),
                       key=lambda f: int(f.suffix[1:]))
        return [dump_instructions(f) for f in files]


def dump_instructions(path):
    for line in path.read_text().splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    raise RuntimeError("no summary in " + str(path))


def module_instructions(path):
    """The instructions of a dump spent in the module: the inclusive cost of
    lighttpd's calls into its hooks but the once-a-second trigger (independent
    of how lighttpd happened to split the bytes into reads, unlike the total)."""
    names, fn, callee, total, after_calls = {}, "", "", 0, False
    for line in path.read_text().splitlines():
        if line.startswith(("fn=", "cfn=")):
            key, _, rest = line.partition("=")
            m = re.match(r"\((\d+)\)(?: (.*))?", rest)
            if m.group(2):
                names[m.group(1)] = m.group(2)
            if key == "fn":
                fn = names[m.group(1)]
            else:
                callee = names[m.group(1)]
        elif line.startswith("calls="):
            after_calls = True
        elif after_calls:
            after_calls = False
            if (callee.startswith("mod_uploadprogress_") and callee != "mod_uploadprogress_trigger"
                    and not fn.startswith("mod_uploadprogress_")):
                total += int(line.split()[1])
    return total


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


def per_request(cg, port, path, n):
    """The server's instructions per request, and the module's own."""
    keepalive_gets(port, path, 20)   # warm up: first-use allocations
    total = cg.count(lambda: keepalive_gets(port, path, n)) / n
    return total, module_instructions(cg.last) / n


def user_share(srv, url, seconds):
    """The share of the server's CPU time spent in user space (the part
    callgrind counts) while wrk loads it."""
    def times():
        fields = Path("/proc/%d/stat" % srv.proc.pid).read_text().rsplit(")", 1)[1].split()
        return int(fields[11]), int(fields[12])   # utime, stime
    u0, s0 = times()
    ok_wrk(url, seconds)
    u1, s1 = times()
    return (u1 - u0) / max(1, (u1 - u0) + (s1 - s0))


def syscalls_per_request(srv, path, n):
    """System calls the server makes per request (strace -c attached for
    n keep-alive requests): the kernel's share, which callgrind leaves out."""
    keepalive_gets(srv.port, path, 20)
    out = srv.dir / "strace.out"
    tracer = subprocess.Popen([STRACE, "-c", "-o", str(out), "-p", str(srv.proc.pid)],
                              stderr=subprocess.PIPE, text=True)
    try:
        if "attached" not in tracer.stderr.readline():
            raise RuntimeError("strace could not attach to %d" % srv.proc.pid)
        keepalive_gets(srv.port, path, n)
    finally:
        tracer.send_signal(signal.SIGINT)
        tracer.communicate(timeout=30)
    total = re.search(r"^-+.*\n\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s.*total$",
                      out.read_text(), re.M)
    return int(total.group(1)) / n


def instructions(cfg, root, sink, backend, table):
    """I: instructions the server executes per request, per MiB of upload
    and in the sweep; the tie-breaker where the wall clock is too noisy."""
    n = cfg.cg_requests
    rows = []
    for rep in range(cfg.cg_reps):
        r = {}
        with Callgrind(Lighttpd(root, cfg.module, backend=sink.port)) as cg, \
             SlowUpload(cg.srv.port, ID) as up:
            up.send_piece()      # in flight, and quiet while we count
            wait_uploading(cg.srv.port, ID)
            r["poll"], r["poll_own"] = per_request(cg, cg.srv.port, "/progress?X-Progress-ID=" + ID, n)
        with Callgrind(Lighttpd(root, cfg.module, backend=sink.port,
                                report_url="/progress-report")) as cg, \
             SlowUpload(cg.srv.port, ID) as up:
            up.send_piece()
            wait_uploading(cg.srv.port, ID)
            report = "/progress-report?X-Progress-ID=%s&stage=scanning&percent=40" % ID
            keepalive_gets(cg.srv.port, report, 20, "POST", 204)   # warm up
            r["report"] = cg.count(lambda: keepalive_gets(cg.srv.port, report, n, "POST", 204)) / n
            r["report_own"] = module_instructions(cg.last) / n
        with Callgrind(Lighttpd(root, cfg.module, with_module=False)) as cg:
            r["static"], r["static_own"] = per_request(cg, cg.srv.port, "/tiny.json", n)
        with Callgrind(Lighttpd(root, cfg.module, with_module=True)) as cg:
            r["static_module"], r["static_module_own"] = per_request(cg, cg.srv.port, "/tiny.json", n)
        size = cfg.cg_upload_mib << 20
        with Callgrind(Lighttpd(root, cfg.module, backend=sink.port, stream=1)) as cg:
            upload(cg.srv.port, None, 1 << 20)   # warm up
            r["tracked"] = cg.count(lambda: upload(cg.srv.port, "%032x" % 0xc0de, size)) / cfg.cg_upload_mib
            r["tracked_module"] = module_instructions(cg.last)
            r["untracked"] = cg.count(lambda: upload(cg.srv.port, None, size)) / cfg.cg_upload_mib
            r["untracked_module"] = module_instructions(cg.last)
        rows.append(r)
    sys_calls = {}
    if os.access(STRACE, os.X_OK):   # not in scripts/setup-deps: optional
        with Lighttpd(root, cfg.module, backend=sink.port) as srv, \
             SlowUpload(srv.port, ID) as up:
            up.send_piece()
            wait_uploading(srv.port, ID)
            sys_calls["poll"] = syscalls_per_request(srv, "/progress?X-Progress-ID=" + ID, n)
        for key, module in (("static", False), ("static_module", True)):
            with Lighttpd(root, cfg.module, with_module=module) as srv:
                sys_calls[key] = syscalls_per_request(srv, "/tiny.json", n)
    with Lighttpd(root, cfg.module, with_module=False) as srv:
        user = user_share(srv, srv.url("/tiny.json"), max(2, cfg.seconds))
    sweep = sweep_instructions(cfg, root, backend)
    first = rows[0]
    spread = lambda key: (" (runs: %s)" % ", ".join("%.0f" % r[key] for r in rows)
                          if len(rows) > 1 else "")
    table.append(("I instructions per request (callgrind)", "", "the server's own, "
                  "one worker, %d keep-alive requests one after another" % n))
    table.append(("I poll of an upload in flight", "%.0f" % first["poll"],
                  "%.2fx lighttpd tiny.json (%.0f); target <= 1.0x%s"
                  % (first["poll"] / first["static"], first["static"], spread("poll"))))
    table.append(("  in the module, per request", "%.1f" % first["poll_own"],
                  "a poll; %.1f for tiny.json with the module loaded (calls into "
                  "its hooks; exact, unlike the totals)%s"
                  % (first["static_module_own"], spread("static_module_own"))))
    table.append(("I report on an upload in flight", "%.0f" % first["report"],
                  "%.2fx the poll; in the module %.1f; a POST of a stage and percent "
                  "in the query, answered 204 (doc/processing.md)%s"
                  % (first["report"] / first["poll"], first["report_own"], spread("report"))))
    more = first["static_module"] / first["static"] - 1
    table.append(("I tiny.json with / without module", "%.4fx" % (1 + more),
                  "%.0f vs %.0f%s; target <= 1.01x" % (first["static_module"], first["static"],
                                                      spread("static_module"))))
    table.append(("  as throughput, user share %.0f%%" % (100 * user),
                  "%.4fx" % (1 / (1 + more * user)),
                  "the same system calls, so only the user-space share of the server's "
                  "CPU time (under wrk) grows; target >= 0.99x"))
    table.append(("I upload per MiB tracked / untracked", "%.4fx" % (first["tracked"] / first["untracked"]),
                  "%.0f vs %.0f per MiB (%d MiB each; these totals move with how "
                  "lighttpd's reads split the bytes)%s"
                  % (first["tracked"], first["untracked"], cfg.cg_upload_mib, spread("untracked"))))
    extra = first["tracked_module"] - first["untracked_module"]
    table.append(("  in the module, per upload", "%.0f" % first["tracked_module"],
                  "tracked, untracked %.0f%s: %.5fx at 1 GiB; target <= 1.01x"
                  % (first["untracked_module"],
                     " (runs: %s)" % ", ".join("%.0f" % r["tracked_module"] for r in rows)
                     if len(rows) > 1 else "",
                     1 + extra / (first["untracked"] * 1024.0))))
    if sys_calls:
        table.append(("I system calls per request (strace -c)", "%.2f" % sys_calls["poll"],
                      "poll; lighttpd tiny.json %.2f without the module, %.2f with it"
                      % (sys_calls["static"], sys_calls["static_module"])))
    table.append(sweep)


def sweep_instructions(cfg, root, backend):
    """The instructions of the module's once-a-second trigger (publication
    and sweep) in each second, the worst being the second in which a burst
    of finished uploads expires together."""
    srv = Lighttpd(root, cfg.module, backend=backend, remove_timeout=2, max_entries=65536)
    with Callgrind(srv, "--toggle-collect=mod_uploadprogress_trigger",
                   "--dump-after=mod_uploadprogress_trigger") as cg:
        res = wrk(srv.url("/upload"), 1, conns=32, script="populate.lua", args=(1 << 30, 0))
        time.sleep(5)    # finished in second f, swept in second f+3
        status, body = http_get(srv.port, "/progress?X-Progress-ID=%032x" % 1)
        if "starting" not in body:   # an id no longer known reads as starting
            raise RuntimeError("the first entry was not swept: " + body)
        calls = cg.dumps_after_exit()
    n = res["requests"]
    idle = min(calls)
    sweeping = [c for c in calls if c > 10 * idle + 10000]
    return ("I worst trigger call, %d entries expiring" % n, "%.0f" % max(calls),
            "%d calls freed them: %.0f in all, %.0f per entry; a call with nothing "
            "to do: %.0f; max-entries 65536 (81921 slots)"
            % (len(sweeping), sum(sweeping), sum(sweeping) / max(1, n), idle))


def memory_random_ids(cfg, root, table):
    """m: what lookups of unknown ids cost the shared table: the growth of
    lighttpd's resident shared memory (RssShmem) over cfg.random_ids polls
    and as many event streams of random ids, 8,000,000 entries."""
    with Lighttpd(root, cfg.module, max_entries=8000000, remove_timeout=0,
                  push_interval=10) as srv:
        before = rss_shmem_kb(srv.proc.pid)
        got = {kind: ask_random_ids(srv.port, cfg.random_ids, conns, depth, kind,
                                    srv.dir / (kind + ".done"))
               for kind, conns, depth in (("poll", 8, 16), ("stream", 128, 1))}
        grown = rss_shmem_kb(srv.proc.pid) - before
    table.append(("m RssShmem growth, random ids polled and streamed", "%d kB" % grown,
                  "%d polls in %s, %d event streams in %s; max-entries 8000000; "
                  "target < 1024 kB (issue 18: 623988 kB before)"
                  % (got["poll"][0], got["poll"][1], got["stream"][0], got["stream"][1])))


def table_bench(cfg, table):
    exe = Path(cfg.table_bench)
    if not exe.exists():
        table.append(("table_bench", "not built", str(exe)))
        return
    out = subprocess.run([str(exe), str(cfg.entries[-1])], capture_output=True,
                         text=True, timeout=600).stdout
    for line in out.splitlines():
        name, value, unit = line.split(None, 2)
        table.append(("  table_bench " + name, value + " " + unit.split()[0],
                      " ".join(unit.split()[1:])))


def print_table(rows):
    w1 = max(len(r[0]) for r in rows)
    w2 = max(len(r[1]) for r in rows)
    print("%-*s  %-*s  %s" % (w1, "measurement", w2, "figure", "details"))
    print("-" * (w1 + w2 + 40))
    for r in rows:
        print("%-*s  %-*s  %s" % (w1, r[0], w2, r[1], r[2]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="a second or so per measurement, small entry counts")
    ap.add_argument("--module", default=str(TOP / "build" / "mod_uploadprogress.so"))
    ap.add_argument("--table-bench", default=str(TOP / "build" / "table_bench"))
    ap.add_argument("--only", default="123456789mti",
                    help="which measurements to run (digits, m = memory of "
                         "random ids, t = table_bench, i = instruction counts)")
    ap.add_argument("--instructions", action="store_true",
                    help="the instruction counts only (as --only i)")
    cfg = ap.parse_args()
    cfg.module = str(Path(cfg.module).resolve())
    if cfg.instructions:
        cfg.only = "i"
    if PINNED:
        os.sched_setaffinity(0, {CLIENT_CPU})
    if cfg.quick:
        cfg.seconds, cfg.reps, cfg.upload_mib = 1, 1, 16
        cfg.entries, cfg.burst, cfg.fresh_seconds = (10, 1000), 0.5, 2
        cfg.latency_workers, cfg.latency_seconds = (1,), 3
        cfg.uploads, cfg.watchers, cfg.cost_seconds, cfg.idle_seconds = 10, 100, 3, 3
        cfg.windows, cfg.cg_requests, cfg.cg_reps, cfg.cg_upload_mib = 1, 200, 1, 4
        cfg.random_ids = 50000
    else:
        cfg.seconds, cfg.reps, cfg.upload_mib = 5, 3, 1024
        cfg.entries, cfg.burst, cfg.fresh_seconds = (10, 10000, 1000000), 1.0, 5
        cfg.latency_workers, cfg.latency_seconds = (1, 4), 10
        cfg.uploads, cfg.watchers, cfg.cost_seconds, cfg.idle_seconds = 10, 1000, 60, 10
        cfg.windows, cfg.cg_requests, cfg.cg_reps, cfg.cg_upload_mib = 5, 2000, 2, 64
        cfg.random_ids = 500000

    def on_signal(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    root = tempfile.mkdtemp(prefix="uploadprogress-bench.")
    os.chmod(root, 0o755)
    rows = []
    try:
        with BodySink(root) as sink, Nginx(root) as fast:
            steps = {"1": lambda: poll_throughput(cfg, root, sink, rows),
                     "2": lambda: cost_to_others(cfg, root, rows),
                     "3": lambda: upload_speed(cfg, root, sink, rows),
                     "4": lambda: scale(cfg, root, fast.socket, rows),
                     "5": lambda: expiry_stall(cfg, root, fast.socket, rows),
                     "6": lambda: freshness(cfg, root, sink, rows),
                     "7": lambda: event_latency(cfg, root, sink, rows),
                     "8": lambda: stream_cost(cfg, root, sink, rows),
                     "9": lambda: idle_wakeups(cfg, root, sink, rows),
                     "m": lambda: memory_random_ids(cfg, root, rows),
                     "t": lambda: table_bench(cfg, rows),
                     "i": lambda: instructions(cfg, root, sink, fast.socket, rows)}
            for key in cfg.only:
                steps[key]()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        stop_all()
        if os.environ.get("BENCH_KEEP"):
            print("kept", root, file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
