"""server.max-worker > 1: one progress table shared by every worker."""
import http.client
import json
import os
import signal
import time

import pytest

from lighty import (SlowUpload, counts, make_ids, serving_pid, wait_for_workers, wait_until,
                    workers_of)

pytestmark = pytest.mark.lighttpd_interface   # every test here (tests/README.md)

IDS = make_ids(0xabc0, 3)


def config(workers, extra=""):
    return ('upload-progress.progress-url = "/progress"\n'
            "server.max-worker = %d\n" % workers) + extra


def poll_on_new_connection(server, pid):
    """A poll on a connection of its own; returns (answer, serving worker)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.connect()
    worker = serving_pid(server, conn.sock)
    conn.request("GET", "/progress?X-Progress-ID=" + pid)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    assert resp.status == 200
    return json.loads(body), worker


def wait_published(server, pid, owner, total):
    """Waits until a worker other than the upload's owner (if there is
    one) answers total bytes: the owner has published them (it does at
    least once a second; a loaded machine only makes that later)."""
    alone = workers_of(server) == [server.proc.pid]

    def seen():
        answer, worker = poll_on_new_connection(server, pid)
        return answer.get("received") == total and (alone or worker != owner)
    wait_until(seen, what="%d bytes of %s published" % (total, pid))


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_every_worker_sees_every_upload(make_server, workers):
    server = make_server(config(workers))
    if workers > 1:
        wait_for_workers(server, workers)
    uploads = {pid: SlowUpload(server.port, "/sink.cgi", size=300000, pid=pid) for pid in IDS}
    owners = {pid: serving_pid(server, up.sock) for pid, up in uploads.items()}
    answered_by_others = 0
    for piece in (100000, 100000):
        for up in uploads.values():
            up.send(piece)
        # once the owners have published, every worker answers exactly the
        # bytes sent
        for pid, up in uploads.items():
            wait_published(server, pid, owners[pid], up.sent)
        for _ in range(6):
            for pid, up in uploads.items():
                answer, worker = poll_on_new_connection(server, pid)
                assert counts(answer) == {"state": "uploading", "received": up.sent,
                                          "size": 300000}, (answer, worker)
                answered_by_others += worker != owners[pid]
    for up in uploads.values():
        up.send(100000)
        assert up.response()[0] == 200
        up.close()
    for _ in range(4):
        for pid in IDS:
            answer, worker = poll_on_new_connection(server, pid)
            assert answer == {"state": "done", "received": 300000, "size": 300000}
            answered_by_others += worker != owners[pid]
    if workers > 1:
        assert answered_by_others > 0, "every poll landed on the upload's own worker"


def test_between_publications_a_poll_is_live_or_the_last_published_count(make_server):
    server = make_server(config(4))
    wait_for_workers(server, 4)
    pid = IDS[0]
    up = SlowUpload(server.port, "/sink.cgi", size=50000, pid=pid)
    owner = serving_pid(server, up.sock)
    up.send(10000)
    wait_published(server, pid, owner, up.sent)
    for piece in (10000, 10000, 10000, 9999):
        published = up.sent
        up.send(piece)
        for _ in range(8):
            answer, _ = poll_on_new_connection(server, pid)
            # live from the owner, or the count it published last
            assert published <= answer["received"] <= up.sent, answer
        wait_published(server, pid, owner, up.sent)
    up.send(1)
    assert up.response()[0] == 200
    up.close()


def test_a_worker_that_dies_leaves_its_uploads_as_errors(make_server):
    server = make_server(config(2, 'upload-progress.debug = "enable"\n'))
    wait_for_workers(server, 2)
    pid = IDS[1]
    up = SlowUpload(server.port, "/sink.cgi", size=100000, pid=pid)
    owner = serving_pid(server, up.sock)
    up.send(40000)
    wait_published(server, pid, owner, up.sent)
    server.kill_worker(owner)
    up.close()

    def ended():
        answer, _ = poll_on_new_connection(server, pid)
        return answer if answer["state"] != "uploading" else None
    answer = wait_until(ended, what="the upload's end")
    assert answer == {"state": "error", "status": 500, "received": 40000, "size": 100000}
    assert "upload-progress: worker %d is gone; its 1 uploads in flight are now errors" % owner \
        in server.error_log()


def shared_mappings(pid):
    """The shared mappings of a process: the region's (the table and the
    counters) and the count of event streams'."""
    with open("/proc/%d/maps" % pid) as maps:
        return sum(1 for line in maps if " rw-s " in line and (
            "/dev/zero (deleted)" in line or "/memfd:mod_uploadprogress" in line))


@pytest.mark.parametrize("workers", [1, 4])
def test_sighup_and_graceful_restart_keep_serving(make_server, workers):
    server = make_server(config(workers))
    if workers > 1:
        wait_for_workers(server, workers)
    up = SlowUpload(server.port, "/sink.cgi", size=1000, pid=IDS[2])
    up.send(1000)
    assert up.response()[0] == 200
    up.close()
    os.kill(server.proc.pid, signal.SIGHUP)
    time.sleep(0.5)
    assert server.poll(IDS[2])[0]["state"] == "done"
    started = server.error_log().count("server started")
    os.kill(server.proc.pid, signal.SIGUSR1)   # graceful restart: the same table
    deadline = time.monotonic() + 40  # polls wait in the listen queue meanwhile
    while server.error_log().count("server started") == started:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert server.poll(IDS[2])[0]["state"] == "done"
    assert server.proc.poll() is None
    # the old generation's mappings were unmapped, not leaked
    assert shared_mappings(server.proc.pid) == 2
    up = SlowUpload(server.port, "/sink.cgi", size=10, pid=IDS[2])
    up.send(10)
    assert up.response()[0] == 200
    up.close()
    assert server.poll(IDS[2])[0]["state"] == "done"


def test_a_full_table_evicts_the_oldest_finished_then_leaves_new_uploads_untracked(make_server):
    server = make_server(config(1, "upload-progress.max-entries = 2\n"))
    a, b, c = IDS
    for pid in (a, b):
        up = SlowUpload(server.port, "/sink.cgi", size=10, pid=pid)
        up.send(10)
        assert up.response()[0] == 200
        up.close()
        time.sleep(1.1)  # a later expiry second for b
    up = SlowUpload(server.port, "/sink.cgi", size=10, pid=c)
    up.send(10)
    assert up.response()[0] == 200
    up.close()
    assert server.poll(a)[0] == {"state": "starting"}   # evicted
    assert server.poll(b)[0]["state"] == "done"
    assert server.poll(c)[0]["state"] == "done"
    # two uploads in flight fill it: a third is served, untracked, and logged
    slow = [SlowUpload(server.port, "/sink.cgi", size=10, pid=pid) for pid in (a, b)]
    for pid in (a, b):
        server.wait_for(pid, lambda x: counts(x) == {"state": "uploading", "received": 0,
                                                           "size": 10})
    third = SlowUpload(server.port, "/sink.cgi", size=10, pid=c)
    third.send(10)
    assert third.response()[0] == 200
    third.close()
    assert "table full (2 uploads in flight); upload %s is served but not tracked" % c \
        in server.error_log()
    for s in slow:
        s.send(10)
        assert s.response()[0] == 200
        s.close()


@pytest.mark.parametrize("line, message", [
    ("upload-progress.max-entries = 0", "upload-progress.max-entries must be from 1 to"),
    ('$HTTP["host"] == "x" { upload-progress.max-entries = 10 }',
     "upload-progress.max-entries sizes the one table of the server: set it globally"),
])
def test_bad_max_entries_stops_start_up(tmp_path, line, message):
    from lighty import Lighttpd
    code, out = Lighttpd(tmp_path, line + "\n").run_to_exit()
    assert code != 0
    assert message in out, out
