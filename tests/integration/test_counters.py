"""The module's counters on lighttpd's status page (mod_status'
status.statistics-url), server-wide whichever worker answers."""
import http.client
import time

import pytest

from lighty import SlowUpload, serving_pid
from test_workers import wait_for_workers

pytestmark = pytest.mark.lighttpd_interface   # every test here (tests/README.md)

ID_DONE, ID_FAILED, ID_RUNNING = ("%032x" % (0xc0de0 + n) for n in range(3))
STATS = "/server-statistics"


def config(workers):
    return ('upload-progress.progress-url = "/progress"\n'
            'status.statistics-url = "%s"\n'
            "server.max-worker = %d\n" % (STATS, workers))


def statistics_on_new_connection(server):
    """The module's lines of the statistics page, on a connection of its
    own: ({name: value}, the worker that answered)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.connect()
    worker = serving_pid(server, conn.sock)
    conn.request("GET", STATS)
    resp = conn.getresponse()
    body = resp.read().decode()
    conn.close()
    assert resp.status == 200, (resp.status, body)
    assert resp.getheader("Content-Type") == "text/plain"
    lines = dict(line.split(": ", 1) for line in body.splitlines())
    return {k: int(v) for k, v in lines.items() if k.startswith("uploadprogress.")}, worker


def expect_everywhere(server, expected, reads=8, workers=1, timeout=10.0):
    """Reads the page on fresh connections until `reads` of them, from at
    least `workers` different workers, showed exactly `expected` (each
    worker publishes once a second; which worker accepts a connection is
    the kernel's choice, so a busy machine may need more reads to reach
    several); returns the workers that answered them."""
    answered, matched = set(), 0
    deadline = time.monotonic() + timeout
    while matched < reads or len(answered) < workers:
        seen, worker = statistics_on_new_connection(server)
        # (the table's lock calls: counted by the test below)
        assert seen.pop("uploadprogress.table_locks") >= 0
        if seen == expected:
            answered.add(worker)
            matched += 1
        assert time.monotonic() < deadline, (
            "%d of %d reads showed %r, from workers %r; the last: %r"
            % (matched, reads, expected, answered, seen))
        time.sleep(0.05 if seen != expected else 0.005)
    return answered


def counts(**nonzero):
    names = ("tracked", "done", "error", "untracked", "polls", "bad_polls",
             "in_flight", "entries", "reports", "bad_reports", "processing")
    return {"uploadprogress." + n: nonzero.get(n, 0) for n in names}


def upload(server, path, pid, size=1000):
    up = SlowUpload(server.port, path, size=size, pid=pid)
    up.send(size)
    status, _ = up.response()
    up.close()
    return status


@pytest.mark.parametrize("workers", [1, 4])
def test_counters_count_every_outcome_server_wide(make_server, workers):
    server = make_server(config(workers), modules=("mod_uploadprogress", "mod_cgi",
                                                   "mod_status"))
    if workers > 1:
        wait_for_workers(server, workers)
    # every key is there from the start, at zero
    expect_everywhere(server, counts(), reads=2)

    assert upload(server, "/sink.cgi", ID_DONE) == 200
    assert upload(server, "/fail.cgi", ID_FAILED) == 500
    running = SlowUpload(server.port, "/sink.cgi", size=2000, pid=ID_RUNNING)
    running.send(500)
    polls = len(server.wait_for(ID_RUNNING, lambda a: a.get("received") == 500))
    # the same id while that upload runs: served, not tracked
    assert upload(server, "/sink.cgi", ID_RUNNING) == 200
    for pid in (ID_DONE, ID_FAILED):
        server.poll(pid)
    polls += 2
    for path in ("/progress?X-Progress-ID=nothex", "/progress"):
        assert server.request("GET", path)[0] == 400
    assert server.request("POST", "/progress?X-Progress-ID=" + ID_DONE, body=b"")[0] == 405

    in_flight = counts(tracked=3, done=1, error=1, untracked=1, polls=polls,
                       bad_polls=3, in_flight=1, entries=3)
    # (several workers, each from its own copy of the counts)
    expect_everywhere(server, in_flight, workers=min(workers, 2))

    running.send(1500)
    assert running.response()[0] == 200
    running.close()
    expect_everywhere(server, counts(tracked=3, done=2, error=1, untracked=1, polls=polls,
                                     bad_polls=3, entries=3))


def test_the_uploads_of_a_worker_that_dies_count_as_errors(make_server):
    server = make_server(config(2), modules=("mod_uploadprogress", "mod_cgi", "mod_status"))
    wait_for_workers(server, 2)
    up = SlowUpload(server.port, "/sink.cgi", size=100000, pid=ID_RUNNING)
    owner = serving_pid(server, up.sock)
    up.send(40000)
    expect_everywhere(server, counts(tracked=1, in_flight=1, entries=1), reads=1)
    server.kill_worker(owner)
    up.close()
    # the watcher ends them; the workers (the new one too) show it
    expect_everywhere(server, counts(tracked=1, error=1, entries=1), reads=4)


def test_polls_take_no_lock_of_the_table(make_server):
    """uploadprogress.table_locks counts the table's lock calls: writes
    (an upload's begin, updates and end, the sweep each second) take it,
    polls do not (they read without it)."""
    server = make_server(config(1), modules=("mod_uploadprogress", "mod_cgi", "mod_status"))
    running = SlowUpload(server.port, "/sink.cgi", size=2000, pid=ID_RUNNING)
    running.send(500)
    server.wait_for(ID_RUNNING, lambda a: a.get("received") == 500)
    before = statistics_on_new_connection(server)[0]
    polls = 300
    for _ in range(polls):
        assert server.poll(ID_RUNNING)[0]["received"] == 500
    after = before
    while after["uploadprogress.polls"] < before["uploadprogress.polls"] + polls:
        time.sleep(0.05)
        after = statistics_on_new_connection(server)[0]
    # a lock call a second or so (the sweep, the page's own counts), not one a poll
    assert after["uploadprogress.table_locks"] - before["uploadprogress.table_locks"] < polls / 3
    running.send(1500)
    assert running.response()[0] == 200
    running.close()


def test_an_upload_between_pieces_is_published_once_a_second(make_server):
    """With several workers each publishes its uploads' counts for the
    others every publish-interval (100 ms); an upload whose count has not
    moved is written again only when the second turns (its speed decays),
    so quiet uploads do not take the table's lock ten times a second each."""
    server = make_server(config(2), modules=("mod_uploadprogress", "mod_cgi", "mod_status"))
    wait_for_workers(server, 2)
    n, window = 20, 3.0
    ids = ["%032x" % (0xd1e0 + k) for k in range(n)]
    quiet = [SlowUpload(server.port, "/sink.cgi", size=1000, pid=pid) for pid in ids]
    try:
        for up in quiet:
            up.send(100)
        for pid in ids:
            server.wait_for(pid, lambda a: a.get("received") == 100)
        before = statistics_on_new_connection(server)[0]["uploadprogress.table_locks"]
        time.sleep(window)
        after = statistics_on_new_connection(server)[0]["uploadprogress.table_locks"]
    finally:
        for up in quiet:
            up.close()
    # Once a second each: n * (window + 2) at most, as each worker's count
    # is read as it last published it (a second or so either side of the
    # window); the sweep and the counts' own publishing add a few a second
    # (here: about 100 in all).  Every publish-interval would be at least
    # n * 10 * (window - 1) = 400 (the old code: 578).
    assert after - before < 2 * n * (window + 2), (before, after)
