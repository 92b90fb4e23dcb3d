"""The bench's servers, started through the shared harness (tests/harness):
lighttpd with the bench's configuration, nginx and Apache pinned to the
servers' CPU, and what the bench reads of a running server (its memory,
CPU time, wakeups, status counters)."""
import http.client
import os
from pathlib import Path

from harness import servers
from harness.lighttpd import SERVER_CONFIG, Lighttpd
from harness.processes import children_of

# The servers run on CPU 0; the bench, and so wrk, the backends and our
# clients (which inherit its affinity), on CPU 1.  Each measured server then
# has a core of its own instead of taking turns with its load.
PINNED = hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2
SERVER_CPU, CLIENT_CPU = 0, 1
PIN = ["taskset", "-c", str(SERVER_CPU)] if PINNED else []
# The module's defaults (doc/mod_uploadprogress.md), which the servers here
# keep: the targets of lines 6 and 7 are stated in them.
PUBLISH_INTERVAL_MS = 100
PUSH_INTERVAL_MS = 250
STATISTICS = "/server-statistics"

BASE_CONFIG = SERVER_CONFIG + """server.max-connections = 4096
server.max-fds = 8192
server.max-keep-alive-requests = 1000000
mimetype.assign = ( ".json" => "application/json" )
"""


def pin_clients():
    """Moves the bench (and what it starts from now on) to the clients' CPU."""
    if PINNED:
        os.sched_setaffinity(0, {CLIENT_CPU})


def lighttpd(root, module, with_module=True, backend=None, workers=1, remove_timeout=60,
             max_entries=None, stream=0, push_interval=None, report_url=None,
             statistics=False):
    """Debian's lighttpd on the servers' CPU, loading module unless
    with_module is false; backend (a port, or the Path of a unix socket)
    serves /upload through mod_proxy; statistics: mod_status's counters
    at STATISTICS.  Stopped and judged by the harness
    (Lighttpd.stop: its exit, its workers', sanitizer reports)."""
    folder = servers.server_dir(root, "lighttpd")
    conf = ['server.upload-dirs = ( "%s" )' % folder,
            "server.max-worker = %d" % workers,
            "server.stream-request-body = %d" % stream]
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
    if backend:
        where = ('"socket" => "%s"' % backend if isinstance(backend, Path)
                 else '"host" => "127.0.0.1", "port" => %d' % backend)
        conf.append('$HTTP["url"] =^ "/upload" { proxy.server = ( "" => '
                    '(( %s )) ) }' % where)
    modules = (["mod_uploadprogress"] if with_module else []) + ["mod_proxy"]
    if statistics:
        modules.append("mod_status")
        conf.append('status.statistics-url = "%s"' % STATISTICS)
    return Lighttpd(folder, "\n".join(conf) + "\n", modules=modules, base=BASE_CONFIG,
                    module=module, prefix=PIN)


def nginx(root, backend):
    """nginx with its upload progress module, on the servers' CPU."""
    return servers.Nginx(root, backend, prefix=PIN)


def apache(root, backend):
    """Apache with mod_upload_progress, on the servers' CPU."""
    return servers.Apache(root, backend, prefix=PIN)


def sink(root):
    """A cheap nginx answering 200 to everything, on the clients' CPU; also
    on the unix socket .socket."""
    return servers.Nginx(root)


def body_sink(root):
    """The body-reading backend, on the clients' CPU."""
    return servers.BodySink(root)


def server_pids(pid):
    return [pid] + children_of(pid)


def proc_fields(pid, name):
    """The first field of a /proc/PID/status line, for pid and its children."""
    total = 0
    for p in server_pids(pid):
        for line in Path("/proc/%d/status" % p).read_text().splitlines():
            if line.startswith(name + ":"):
                total += int(line.split()[1])
    return total


def rss_kib(pid):
    """Resident memory of pid and its children (the workers), in KiB."""
    return proc_fields(pid, "VmRSS")


def schedstat(pid, field):
    """A field of /proc/PID/schedstat summed over pid and its children."""
    return sum(int(Path("/proc/%d/schedstat" % p).read_text().split()[field])
               for p in server_pids(pid))


def cpu_ns(pid):
    """CPU time of pid and its children (the workers), in ns (exact, unlike
    the clock ticks of /proc/PID/stat)."""
    return schedstat(pid, 0)


def wakeups(pid):
    """How many times pid and its children were put on a CPU (the third
    field of /proc/PID/schedstat counts the time slices run)."""
    return schedstat(pid, 2)


def status_counters(srv):
    """The module's counters on srv's status page ({name: value}; with
    several workers, server-wide as last published)."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        conn.request("GET", STATISTICS)
        body = conn.getresponse().read().decode()
    finally:
        conn.close()
    lines = dict(line.split(": ", 1) for line in body.splitlines() if ": " in line)
    return {k: int(v) for k, v in lines.items() if k.startswith("uploadprogress.")}
