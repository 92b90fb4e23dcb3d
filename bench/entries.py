"""Lines 4, 5 and table_bench: the table with many entries, many entries
expiring at once, and the table's own timings (bench/table_bench.c)."""
import statistics
import subprocess
import time
from pathlib import Path

from clients import populate, wrk
from harness.clients import http_get
from servers import lighttpd, rss_kib


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
    big = lighttpd(root, cfg.module, backend=backend, remove_timeout=86400,
                   max_entries=int(sizes[-1] * 1.05) + 1000)
    small = lighttpd(root, cfg.module, backend=backend, remove_timeout=86400)
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
    with lighttpd(root, cfg.module, backend=backend, remove_timeout=remove_timeout,
                  max_entries=4 << 20) as srv:
        t0 = time.monotonic()
        res = wrk(srv.url("/upload"), 1, conns=128, script="populate.lua",
                  args=(1 << 30, 0))
        burst = time.monotonic() - t0
        poll = lambda secs: wrk(srv.url("/progress"), secs, conns=1,
                                script="poll.lua", args=(res["requests"],))
        poll(2)
        return res["requests"], burst, poll(4)


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
                  "%.2f ms" % statistics.median(worst(expiring)),
                  "nothing expiring %.2f ms; windows' worst %s vs %s ms; target < 5 ms"
                  % (statistics.median(worst(control)),
                     " ".join("%.1f" % w for w in worst(expiring)),
                     " ".join("%.1f" % w for w in worst(control)))))
    table.append(("  median of the windows' p99",
                  "%.3f ms" % statistics.median(p99(expiring)),
                  "nothing expiring %.3f ms" % statistics.median(p99(control))))


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
