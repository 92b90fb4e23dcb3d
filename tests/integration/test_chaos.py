"""The chaos run in the suite (issue 18): chaos.py's random mix for
CHAOS_SECONDS (30 by default, 60 at most) against lighttpd with four
workers; then every tracked upload has ended, one upload of each kind polls
its exact final answer, and no finding (a wrong answer, a worker that died
unasked) was made.  Sanitizer reports fail it through the fixture.  With
upload-progress.debug, every process that frees the table (a worker that
ends, the watcher at each graceful restart and at the stop) checks its
invariants (progress_table_check) and logs the verdict: each one is "ok",
and the stop's is there."""
import os
import re
import time

from chaos import CONFIG, KINDS, MODULES, Chaos
from lighty import counts, workers_of
from test_events import wait_for_workers

WORKERS = 4
# the verdicts of the table checks at the module's free (src/region_handoff.c)
TABLE_CHECK = re.compile(r"upload-progress: table check: (.*)")


def in_flight(server):
    status, _, body = server.request("GET", "/server-statistics")
    assert status == 200, (status, body)
    stats = dict(line.split(": ") for line in body.decode().splitlines())
    return int(stats["uploadprogress.in_flight"])


def test_a_bounded_random_mix_with_restarts_and_kills(make_server):
    seconds = min(float(os.environ.get("CHAOS_SECONDS", "30")), 60)
    server = make_server(CONFIG.format(workers=WORKERS) + 'upload-progress.debug = "enable"\n',
                         modules=MODULES)
    wait_for_workers(server, WORKERS)
    chaos = Chaos(server, WORKERS)
    figures = chaos.run(seconds)

    assert server.proc.poll() is None, "lighttpd is gone"
    # the old generation of the last restart has gone: only the new one
    # takes connections
    deadline = time.monotonic() + 20
    while len(workers_of(server)) != WORKERS:
        assert time.monotonic() < deadline, workers_of(server)
        time.sleep(0.1)
    # every upload that got an entry has ended (a killed worker's are errors)
    deadline = time.monotonic() + 20
    while in_flight(server) != 0:
        assert time.monotonic() < deadline, "uploads in flight stay counted"
        time.sleep(0.2)
    # quiet now: each kind polls its exact final answer
    for kind in KINDS:
        if kind == "aborted":
            continue
        pid = chaos.new_id()
        final = chaos.upload(kind, pid, 3000)
        assert final is not None, kind
        assert counts(chaos.poll(pid)) == final, kind
    print("chaos: %r" % figures)
    assert figures["findings"] == [], figures["findings"]
    assert figures["checked"] > 0
    if seconds >= 20:   # (a short run may draw no restart or kill)
        assert figures["restarts"] > 0 and figures["kills"] > 0, figures
    before_stop = len(server.error_log())
    server.stop()   # (judged: no sanitizer report, no unasked death)
    log = server.error_log()
    verdicts = TABLE_CHECK.findall(log)
    print("table checks: %d" % len(verdicts))
    assert all(v == "ok" for v in verdicts), [v for v in verdicts if v != "ok"]
    assert TABLE_CHECK.search(log, before_stop), "no table check at the stop"
