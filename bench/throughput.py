"""Lines 1 to 3 and W: what a poll, another request and an upload cost in
wall-clock throughput, and polls with 4 workers while uploads are in flight."""
import statistics
import time

from clients import (ID, SteadyUpload, UploadCrowd, keepalive_gets, ok_wrk, raise_fd_limit,
                     upload, wait_uploading, wrk)
from harness.clients import http_get, received_of
from servers import apache, lighttpd, nginx, status_counters

# The module's count of the table's lock acquisitions (issue 20), on
# lighttpd's status page.
LOCKS = "uploadprogress.table_locks"


def poll_throughput(cfg, root, sink, table):
    """1: polls/s at the progress url of an upload in flight, against
    nginx's and Apache's modules and lighttpd's tiny static file.  The four
    servers run at once and wrk loads them in turn, 2 x cfg.rounds rounds,
    each in the other order from the last (ours, nginx, Apache, static, then
    static, Apache, nginx, ours): the ratios are the medians of each
    round's, so that the machine's drift hits every server alike."""
    with lighttpd(root, cfg.module, backend=sink.port) as ours, \
            nginx(root, sink.port) as ngx, apache(root, sink.port) as apa, \
            lighttpd(root, cfg.module, with_module=False) as static:
        polled = {"ours": ours, "nginx": ngx, "apache": apa}
        uploads = [SteadyUpload(srv.port, ID) for srv in polled.values()]
        try:
            for up in uploads:
                up.start()
            for srv in polled.values():
                wait_uploading(srv.port, ID)
            urls = {name: srv.url("/progress?X-Progress-ID=" + ID) for name, srv in polled.items()}
            urls["static"] = static.url("/tiny.json")
            order = list(urls)
            rounds = [{name: ok_wrk(urls[name], cfg.seconds)["rps"]
                       for name in (order if k % 2 == 0 else order[::-1])}
                      for k in range(2 * cfg.rounds)]
        finally:
            for up in uploads:
                up.close()
    rate = lambda name: statistics.median(r[name] for r in rounds)
    ratio = lambda name: statistics.median(r["ours"] / r[name] for r in rounds)
    each = lambda name: " ".join("%.2f" % (r["ours"] / r[name]) for r in rounds)
    table.append(("1 poll throughput (req/s, 32 conns)", "ours %.0f" % rate("ours"),
                  "nginx %.0f, apache %.0f, lighttpd tiny.json %.0f (medians of %d "
                  "alternating rounds of %d s)" % (rate("nginx"), rate("apache"), rate("static"),
                                                   len(rounds), cfg.seconds)))
    table.append(("  ours / nginx", "%.2fx" % ratio("nginx"),
                  "rounds: %s; target >= 1.05x" % each("nginx")))
    table.append(("  ours / apache", "%.2fx" % ratio("apache"), "rounds: %s" % each("apache")))
    table.append(("  ours / lighttpd tiny.json", "%.2fx" % ratio("static"),
                  "rounds: %s; target >= 1.05x" % each("static")))


def cost_to_others(cfg, root, table):
    """2: a small static file with the module loaded vs without it: the
    median of the ratios of 2 x cfg.rounds alternating rounds, each pair in
    the other order from the last (one round swings by +-25 % here, so a
    best-of picks whichever side had a lucky round)."""
    ratios, rates = [], {True: [], False: []}
    with lighttpd(root, cfg.module, with_module=True) as on, \
         lighttpd(root, cfg.module, with_module=False) as off:
        for k in range(2 * cfg.rounds):
            pair = (on, off) if k % 2 == 0 else (off, on)
            rps = {s is on: wrk(s.url("/tiny.json"), cfg.seconds)["rps"] for s in pair}
            ratios.append(rps[True] / rps[False])
            for side in rps:
                rates[side].append(rps[side])
    table.append(("2 static file with / without module",
                  "%.3fx" % statistics.median(ratios),
                  "%.0f vs %.0f req/s (medians of %d alternating rounds of %d s); rounds: %s; "
                  "target >= 0.99x" % (statistics.median(rates[True]),
                                       statistics.median(rates[False]), len(ratios),
                                       cfg.seconds, " ".join("%.2f" % r for r in ratios))))


def upload_speed(cfg, root, sink, table):
    """3: one big upload through lighttpd to a body-reading backend."""
    size = cfg.upload_mib << 20
    with lighttpd(root, cfg.module, backend=sink.port, stream=1) as srv:
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


def busy_workers(cfg, root, sink, table):
    """W: with 4 workers, polls/s of an upload in flight while cfg.crowd more
    uploads send their bytes, against none more: a poll must not queue
    behind the writers (issue 20).  The same crowd without ids (uploads the
    module does not track) is the control: what serving the crowd's bytes
    costs the machine's CPUs whoever tracks them.  cfg.rounds rounds of the
    three in turn; the ratios are the medians of each round's."""
    raise_fd_limit()
    rounds = []
    with lighttpd(root, cfg.module, backend=sink.port, workers=4) as srv, \
            SteadyUpload(srv.port, ID) as up:
        up.start()
        wait_uploading(srv.port, ID)
        url = srv.url("/progress?X-Progress-ID=" + ID)
        for n in range(cfg.rounds):
            rates = {"none": ok_wrk(url, cfg.seconds)["rps"]}
            for kind in ("tracked", "untracked"):
                first = 0xc20d + n * cfg.crowd if kind == "tracked" else None
                with UploadCrowd(srv.port, cfg.crowd, first=first) as crowd:
                    crowd.wait_sending()
                    rates[kind] = ok_wrk(url, cfg.seconds)["rps"]
            rounds.append(rates)
    ratio = lambda a, b: statistics.median(r[a] / r[b] for r in rounds)
    rate = lambda kind: statistics.median(r[kind] for r in rounds)
    table.append(("W 4 workers: polls/s, %d uploads in flight / none" % cfg.crowd,
                  "%.2fx" % ratio("tracked", "none"),
                  "%.0f vs %.0f req/s, medians of %d rounds; the uploads send 1 KiB each "
                  "every %.1f s; target >= 0.95x"
                  % (rate("tracked"), rate("none"), cfg.rounds, UploadCrowd.INTERVAL)))
    table.append(("  the same uploads tracked / untracked", "%.2fx" % ratio("tracked", "untracked"),
                  "%.0f req/s with the crowd untracked (no id): what serving its bytes "
                  "costs the polls, whoever tracks them" % rate("untracked")))


def lock_acquisitions(cfg, root, sink, table):
    """W: how often a poll takes the table's lock: lighttpd's status counter
    uploadprogress.table_locks over cfg.cg_requests keep-alive polls of an
    upload in flight (quiet meanwhile), one worker, less what as long a
    time without polls takes (the timers); "n/a" on a module without the
    counter.  Each read waits out a publication of the counters (the
    workers publish theirs once a second)."""
    n = cfg.cg_requests

    def locks_after_publication():
        time.sleep(1.5)
        return status_counters(srv).get(LOCKS)
    with lighttpd(root, cfg.module, backend=sink.port, statistics=True) as srv, \
            SteadyUpload(srv.port, ID) as up:
        up.send_piece()
        wait_uploading(srv.port, ID)
        start = locks_after_publication()
        idle = locks_after_publication()
        keepalive_gets(srv.port, "/progress?X-Progress-ID=" + ID, n)
        polled = locks_after_publication()
    if None in (start, idle, polled):
        table.append(("W lock acquisitions per poll", "n/a",
                      "the module has no %s counter; target 0" % LOCKS))
        return
    by_polls = (polled - idle) - (idle - start)
    table.append(("W lock acquisitions per poll", "%.3f" % (max(0, by_polls) / n),
                  "%d over %d keep-alive polls and 1.5 s, %d in 1.5 s without polls; "
                  "target 0" % (polled - idle, n, idle - start)))
