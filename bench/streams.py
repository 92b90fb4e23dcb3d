"""Lines 6 to 9: how fresh a poll's answer is, event streams (latency, CPU
against polls) and an idle server's wakeups."""
import asyncio
import random
import re
import statistics
import time

from clients import (ID, EventReader, EventStream, SteadyUpload, event_stream_request,
                     raise_fd_limit, upload, wait_uploading)
from harness.clients import http_get, received_of
from servers import (PUBLISH_INTERVAL_MS, PUSH_INTERVAL_MS, cpu_ns, lighttpd, server_pids,
                     wakeups)


def freshness(cfg, root, sink, table):
    """6: how far `received` in a poll lags behind the bytes sent: as bytes,
    and as the age of the answer (the poll's start less the moment the
    first piece it leaves out was sent).  Polls start at random moments
    between pieces, so that they meet every phase of the publish timer."""
    rng = random.Random(6)
    for workers in (1, 4):
        with lighttpd(root, cfg.module, backend=sink.port, workers=workers) as srv, \
             SteadyUpload(srv.port, ID, piece=4096) as up:
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


def event_latency(cfg, root, sink, table):
    """7: from bytes arriving at the server to the event that first counts
    them leaving it (as the client sees both, on the loopback): for every
    piece of a steady upload, the time until an event includes it."""
    for workers in cfg.latency_workers:
        with lighttpd(root, cfg.module, backend=sink.port, workers=workers) as srv, \
             SteadyUpload(srv.port, ID, piece=1024, interval=0.02) as up:
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
        with lighttpd(root, cfg.module, backend=sink.port,
                      push_interval=1000 if how == "events 1 s" else None) as srv:
            ups = [SteadyUpload(srv.port, pid, piece=1024, interval=0.05) for pid in ids]
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
        with lighttpd(root, cfg.module, backend=sink.port, workers=4,
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
