"""Lines I: instructions the server executes (callgrind) per request, per
MiB of upload and in the once-a-second trigger; system calls (strace)."""
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from clients import ID, SteadyUpload, keepalive_gets, ok_wrk, upload, wait_uploading, wrk
from harness.clients import http_get
from servers import lighttpd


VALGRIND = "/usr/bin/valgrind"


CALLGRIND_CONTROL = "/usr/bin/callgrind_control"


STRACE = "/usr/bin/strace"


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


def call_records(path):
    """(caller, callee, calls, inclusive instructions) of each call record
    of a callgrind dump (its names compressed as "(id) name", then "(id)")."""
    names, fn, callee, calls = {}, "", "", None
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
            calls = int(line[len("calls="):].split()[0])
        elif calls is not None:   # the call's line: position, inclusive cost
            yield fn, callee, calls, int(line.split()[1])
            calls = None


def lookup_lock_calls(path, module):
    """How many times a dump's table lookups (a poll's read of the table)
    called the table's lock: exact, unlike the status page's count, which
    the once-a-second timers add to.  None when the module has no
    table_lock function of its own to count (inlined, or stripped)."""
    if not shutil.which("nm"):
        return None
    symbols = subprocess.run(["nm", module], capture_output=True, text=True).stdout
    if not re.search(r"^\S+ t table_lock$", symbols, re.M):
        return None
    return sum(calls for fn, callee, calls, _ in call_records(path)
               if callee == "table_lock" and fn in ("progress_table_lookup", "lookup_locked"))


def module_instructions(path):
    """The instructions of a dump spent in the module: the inclusive cost of
    lighttpd's calls into its hooks but the once-a-second trigger (independent
    of how lighttpd happened to split the bytes into reads, unlike the total)."""
    return sum(cost for fn, callee, _, cost in call_records(path)
               if callee.startswith("mod_uploadprogress_")
               and callee != "mod_uploadprogress_trigger"
               and not fn.startswith("mod_uploadprogress_"))


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
        with Callgrind(lighttpd(root, cfg.module, backend=sink.port)) as cg, \
             SteadyUpload(cg.srv.port, ID) as up:
            up.send_piece()      # in flight, and quiet while we count
            wait_uploading(cg.srv.port, ID)
            r["poll"], r["poll_own"] = per_request(cg, cg.srv.port, "/progress?X-Progress-ID=" + ID, n)
            r["poll_locks"] = lookup_lock_calls(cg.last, cfg.module)
        with Callgrind(lighttpd(root, cfg.module, backend=sink.port,
                                report_url="/progress-report")) as cg, \
             SteadyUpload(cg.srv.port, ID) as up:
            up.send_piece()
            wait_uploading(cg.srv.port, ID)
            report = "/progress-report?X-Progress-ID=%s&stage=scanning&percent=40" % ID
            keepalive_gets(cg.srv.port, report, 20, "POST", 204)   # warm up
            r["report"] = cg.count(lambda: keepalive_gets(cg.srv.port, report, n, "POST", 204)) / n
            r["report_own"] = module_instructions(cg.last) / n
        with Callgrind(lighttpd(root, cfg.module, with_module=False)) as cg:
            r["static"], r["static_own"] = per_request(cg, cg.srv.port, "/tiny.json", n)
            r["static_query"], _ = per_request(cg, cg.srv.port, "/tiny.json?X-Progress-ID=" + ID, n)
        with Callgrind(lighttpd(root, cfg.module, with_module=True)) as cg:
            r["static_module"], r["static_module_own"] = per_request(cg, cg.srv.port, "/tiny.json", n)
        size = cfg.cg_upload_mib << 20
        with Callgrind(lighttpd(root, cfg.module, backend=sink.port, stream=1)) as cg:
            upload(cg.srv.port, None, 1 << 20)   # warm up
            r["tracked"] = cg.count(lambda: upload(cg.srv.port, "%032x" % 0xc0de, size)) / cfg.cg_upload_mib
            r["tracked_module"] = module_instructions(cg.last)
            r["untracked"] = cg.count(lambda: upload(cg.srv.port, None, size)) / cfg.cg_upload_mib
            r["untracked_module"] = module_instructions(cg.last)
        rows.append(r)
    sys_calls = {}
    if os.access(STRACE, os.X_OK):   # not in scripts/setup-deps: optional
        with lighttpd(root, cfg.module, backend=sink.port) as srv, \
             SteadyUpload(srv.port, ID) as up:
            up.send_piece()
            wait_uploading(srv.port, ID)
            sys_calls["poll"] = syscalls_per_request(srv, "/progress?X-Progress-ID=" + ID, n)
        for key, module in (("static", False), ("static_module", True)):
            with lighttpd(root, cfg.module, with_module=module) as srv:
                sys_calls[key] = syscalls_per_request(srv, "/tiny.json", n)
    with lighttpd(root, cfg.module, with_module=False) as srv:
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
    table.append(("  poll / tiny.json?X-Progress-ID=...", "%.2fx" % (first["poll"] / first["static_query"]),
                  "the static file asked with the poll's query (%.0f): lighttpd's parsing "
                  "and normalizing of those 47 bytes costs it %.0f more, before any module%s"
                  % (first["static_query"], first["static_query"] - first["static"],
                     spread("static_query"))))
    table.append(("  in the module, per request", "%.1f" % first["poll_own"],
                  "a poll; %.1f for tiny.json with the module loaded (calls into "
                  "its hooks; exact, unlike the totals)%s"
                  % (first["static_module_own"], spread("static_module_own"))))
    locks = [r["poll_locks"] for r in rows]
    table.append(("  the table's lock, taken by the polls",
                  "n/a" if None in locks else "%d of %d" % (first["poll_locks"], n),
                  "calls of the lock from the table's lookups (callgrind's count; the "
                  "timers' own are apart)%s; target 0"
                  % (" (runs: %s)" % ", ".join(str(k) for k in locks) if len(rows) > 1 else "")))
    table.append(("I report on an upload in flight", "%.0f" % first["report"],
                  "%.2fx the poll; in the module %.1f; a POST of a stage and percent "
                  "in the query, answered 204 (doc/processing.md)%s"
                  % (first["report"] / first["poll"], first["report_own"], spread("report"))))
    more = first["static_module"] / first["static"] - 1
    table.append(("I tiny.json with / without module", "%.4fx" % (1 + more),
                  "%.0f vs %.0f%s; target <= 1.005x" % (first["static_module"], first["static"],
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
    srv = lighttpd(root, cfg.module, backend=backend, remove_timeout=2, max_entries=65536)
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
