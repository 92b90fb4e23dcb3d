"""A graceful restart (SIGUSR1: systemctl reload) keeps the table: with 1 and
4 workers, with and without server.graceful-restart-bg (doc/reload.md)."""
import json
import os
import re
import signal
import time
from pathlib import Path

import pytest

from lighty import (ID, SlowUpload, abort_midway, all_processes, counts, in_root, make_ids,
                    module_path, raw_request, wait_for, wait_for_workers)

pytestmark = pytest.mark.lighttpd_interface   # every test here (tests/README.md)

MODES = [(1, False), (4, False), (1, True), (4, True)]
MODE_IDS = ["1-worker", "4-workers", "1-worker-bg", "4-workers-bg"]
REGION = "/memfd:mod_uploadprogress"


def config(workers, bg, extra="", log=None):
    """log: the server's error log, for graceful-restart-bg with one worker."""
    # (a long drain: an upload in flight may finish in the old generation
    # however loaded the machine is)
    flags = '"server.graceful-shutdown-timeout" => 60'
    text = ('upload-progress.progress-url = "/progress"\n'
            "server.max-worker = %d\n" % workers)
    if bg:
        # the exec'd generation takes the listening socket over
        flags += ', "server.graceful-restart-bg" => "enable"'
        text += 'server.systemd-socket-activation = "enable"\n'
    if bg and workers == 1:
        text += wait_for_old_generation(log)
    return text + "server.feature-flags = ( %s )\n" % flags + extra


def wait_for_old_generation(log):
    """A race of lighttpd's own (1.4.69 to 1.4.85), with one worker and
    graceful-restart-bg: the new generation, once ready, sends SIGINT to
    the old one, which it takes for a second SIGINT (stop at once) if it
    has not yet resumed after its fork, as on a loaded machine; its uploads
    in flight then fail.  So each generation reads its config only once the
    one before has said it continues (bounded: 60 s)."""
    count = "$(grep -c '%s' < '%s' 2>/dev/null || true)"
    return ('include_shell "i=0; while [ \\"%s\\" -lt \\"%s\\" ] && [ $i -lt 600 ]; '
            'do sleep 0.1; i=$((i+1)); done"\n'
            % (count % ("continuing to handle", log), count % ("server started", log)))


def start(make_server, tmp_path, workers, bg, extra="", **kw):
    log = tmp_path / "s0" / "error.log"   # (make_server's first server)
    server = make_server(config(workers, bg, extra, log), **kw)
    wait_for_workers(server, workers)
    return server


def generations(server):
    return server.error_log().count("server started")


def signal_reload(server):
    """Sends SIGUSR1 and waits until the old generation has begun its
    graceful shutdown (so that a CGI started from now on is not in the
    process group the watcher then sends SIGINT); returns the count of
    generations to wait for."""
    log = server.error_log()
    n, shutdowns = log.count("server started") + 1, log.count("graceful shutdown started")
    os.kill(server.proc.pid, signal.SIGUSR1)
    deadline = time.monotonic() + 60
    while server.error_log().count("graceful shutdown started") <= shutdowns:
        assert time.monotonic() < deadline, server.error_log()
        time.sleep(0.02)
    return n


def wait_reloaded(server, n, workers):
    """Waits until the n-th generation runs with its workers."""
    deadline = time.monotonic() + 60
    while generations(server) < n:
        assert server.proc.poll() is None, server.error_log()
        assert time.monotonic() < deadline, server.error_log()
        time.sleep(0.05)
    wait_for_workers_of_generation(server, workers)


def reload(server, workers):
    wait_reloaded(server, signal_reload(server), workers)


def group(server):
    """Pids of every live process of the server (its process group):
    watcher, workers, and a graceful-restart-bg generation still draining."""
    # (a zombie is no process of the server: the test runner, lighttpd's
    # subreaper, reaps an old generation's CGIs only when it stops it)
    return [pid for pid, stat in all_processes()
            if stat.pgrp == server.proc.pid and stat.state != "Z"]


def processes(workers):
    """How many processes a generation has: lighttpd alone for 1 worker,
    else the watcher and its workers."""
    return workers + 1 if workers > 1 else 1


def wait_for_workers_of_generation(server, workers):
    """Waits until only this generation runs (no old one draining)."""
    deadline = time.monotonic() + 60
    while len(group(server)) != processes(workers):
        assert time.monotonic() < deadline, group(server)
        time.sleep(0.05)
    wait_for_workers(server, workers)


def region_of(pid):
    """What a process holds of regions: (mappings, fds, inodes, RssShmem kB,
    anonymous shared mappings)."""
    maps = Path("/proc/%d/maps" % pid).read_text().splitlines()
    mappings = sum(1 for line in maps if REGION in line)
    anon = sum(1 for line in maps if " rw-s " in line and "/dev/zero (deleted)" in line)
    fds, inodes = 0, set()
    for fd in Path("/proc/%d/fd" % pid).iterdir():
        try:
            if os.readlink(fd).startswith(REGION):
                fds += 1
                inodes.add(os.stat(fd).st_ino)
        except OSError:
            continue
    status = Path("/proc/%d/status" % pid).read_text()
    shmem = int(re.search(r"RssShmem:\s+(\d+) kB", status).group(1))
    return mappings, fds, inodes, shmem, anon


def region_fds_inheritable(server):
    """(pid, fd) of the region's fds that an exec would take along: a CGI
    started from that process would get the region."""
    found = []
    for pid in group(server):
        try:
            fds = list(Path("/proc/%d/fd" % pid).iterdir())
        except OSError:
            continue   # (ended since group() listed it, the old generation say: it holds none)
        for fd in fds:
            try:
                if not os.readlink(fd).startswith(REGION):
                    continue
                info = Path("/proc/%d/fdinfo/%s" % (pid, fd.name)).read_text()
            except OSError:
                continue
            flags = int(re.search(r"flags:\s+([0-7]+)", info).group(1), 8)
            if not flags & 0o2000000:   # O_CLOEXEC
                found.append((pid, int(fd.name)))
    return found


def region_kib(pid):
    """The memory the region itself holds (its pages in use), in kB."""
    for fd in Path("/proc/%d/fd" % pid).iterdir():
        if os.readlink(fd).startswith(REGION):
            return os.stat(fd).st_blocks * 512 // 1024
    raise AssertionError("no region in %d" % pid)


def upload(server, pid, size):
    up = SlowUpload(server.port, "/sink.cgi", size=size, pid=pid)
    up.send(size)
    status = up.response()[0]
    up.close()
    return status


@pytest.mark.parametrize("workers,bg", MODES, ids=MODE_IDS)
def test_finished_uploads_are_answered_exactly_after_a_reload(make_server, tmp_path, workers, bg):
    server = start(make_server, tmp_path, workers, bg, "server.max-request-size = 64\n")
    done, refused, aborted = make_ids(0x2300, 3)
    assert upload(server, done, 5000) == 200
    status, _ = raw_request(server.port, (
        "POST %s HTTP/1.1\r\nHost: x\r\nX-Progress-ID: %s\r\n"
        "Content-Length: 100000\r\n\r\n" % ("/sink.cgi", refused)).encode())
    assert status == 413
    abort_midway(server, "/sink.cgi", aborted, 10000, 4000)
    before = {pid: counts(server.poll(pid)[0]) for pid in (done, refused, aborted)}
    assert before == {
        done: {"state": "done", "size": 5000, "received": 5000},
        refused: {"state": "error", "status": 413},
        aborted: {"state": "error", "status": 400, "size": 10000, "received": 4000}}
    for _ in range(2):
        reload(server, workers)
        assert {pid: counts(server.poll(pid)[0]) for pid in before} == before


@pytest.mark.parametrize("workers,bg", MODES, ids=MODE_IDS)
def test_an_upload_in_flight_is_followed_across_reloads_to_its_end(make_server, tmp_path,
                                                                   workers, bg):
    """With graceful-restart-bg the new generation answers while the old one
    still receives the body; without it, lighttpd starts the new generation
    once the old one has served the upload.  Several reloads in flight only
    with one worker and graceful-restart-bg: otherwise lighttpd holds the
    next reload until the upload is served, or (several workers with
    graceful-restart-bg) its watcher's SIGINT to its process group stops
    the draining workers of the reload before at once."""
    server = start(make_server, tmp_path, workers, bg)
    size = 300000
    up = SlowUpload(server.port, "/sink.cgi", size=size, pid=ID)
    up.send(100000)
    server.wait_for(ID, lambda a: a.get("received") == 100000)
    for _ in range(3 if bg and workers == 1 else 1):
        n = signal_reload(server)
        up.send(50000)
        if bg:
            wait_reloaded_keeping_old(server, n)
            server.wait_for(ID, lambda a: a.get("received") == up.sent, timeout=10)
            # the exec took the region along; old and new close it on exec
            # again (the old one within a second)
            wait_for(lambda: region_fds_inheritable(server), lambda left: not left)
    up.send(size - up.sent)
    assert up.response()[0] == 200
    up.close()
    wait_reloaded(server, n, workers)
    answer = server.wait_for(ID, lambda a: a["state"] != "uploading")[-1]
    assert counts(answer) == {"state": "done", "size": size, "received": size}


def wait_reloaded_keeping_old(server, n):
    """graceful-restart-bg: the n-th generation has started, the old one
    still serves its upload."""
    deadline = time.monotonic() + 60
    while generations(server) < n:
        assert time.monotonic() < deadline, server.error_log()
        time.sleep(0.05)


@pytest.mark.parametrize("workers,bg", MODES, ids=MODE_IDS)
def test_a_new_max_entries_waits_for_a_full_restart(make_server, tmp_path, workers, bg):
    server = start(make_server, tmp_path, workers, bg, "upload-progress.max-entries = 2\n")
    done, a, b, c = make_ids(0x2310, 4)
    assert upload(server, done, 100) == 200
    conf = server.dir / "lighttpd.conf"
    conf.write_text(conf.read_text().replace("max-entries = 2", "max-entries = 3"))
    reload(server, workers)
    assert ("upload-progress: upload-progress.max-entries 3 takes effect at the next full "
            "restart (stop and start): the table kept across this graceful restart holds "
            "2 entries") in server.error_log()
    assert counts(server.poll(done)[0])["state"] == "done"
    # still 2 entries: two uploads in flight take them, a third is untracked
    ups = []
    try:
        for pid in (a, b, c):
            ups.append(SlowUpload(server.port, "/sink.cgi", size=10, pid=pid))
            ups[-1].send(5)
            if pid != c:
                server.wait_for(pid, lambda x: x.get("received") == 5)
        deadline = time.monotonic() + 10
        while "table full (2 uploads in flight); upload %s" % c not in server.error_log():
            assert time.monotonic() < deadline, server.error_log()
            time.sleep(0.05)
        assert server.poll(c)[0] == {"state": "starting"}
    finally:
        for up in ups:
            up.close()


@pytest.mark.parametrize("workers,bg", [(1, False), (4, True)], ids=["1-worker", "4-workers-bg"])
def test_a_full_stop_and_start_begins_with_an_empty_table(make_server, tmp_path, workers, bg):
    server = start(make_server, tmp_path, workers, bg)
    assert upload(server, ID, 100) == 200
    assert server.poll(ID)[0]["state"] == "done"
    server.stop()
    server.start()
    wait_for_workers(server, workers)
    assert server.poll(ID)[0] == {"state": "starting"}


@pytest.mark.parametrize("workers,bg", MODES, ids=MODE_IDS)
def test_a_build_of_another_layout_is_never_attached(make_server, tmp_path, workers, bg):
    server = start(make_server, tmp_path, workers, bg)
    old, new = make_ids(0x2320, 2)
    assert upload(server, old, 100) == 200
    ours = server.dir / "modules" / "mod_uploadprogress.so"
    ours.unlink()   # as an upgrade of the package would, then a reload
    ours.symlink_to(in_root(module_path().parent / "mod_uploadprogress_other_layout.so"))
    reload(server, workers)
    line = ("upload-progress: the table of the previous generation is not used (made by "
            "another build of the module: layout 1, this build's is 2); starting with an "
            "empty table")
    assert server.error_log().count(line) == 1, server.error_log()
    assert server.poll(old)[0] == {"state": "starting"}
    # the fresh table is the one the next reload keeps
    assert upload(server, new, 100) == 200
    reload(server, workers)
    assert counts(server.poll(new)[0])["state"] == "done"
    assert server.error_log().count(line) == 1


@pytest.mark.parametrize("workers,bg", MODES, ids=MODE_IDS)
def test_twenty_reloads_with_uploads_in_flight_leave_one_region(make_server, tmp_path, workers, bg):
    server = start(make_server, tmp_path, workers, bg)
    ids = make_ids(0x2400, 20)
    for pid in ids:
        up = SlowUpload(server.port, "/sink.cgi", size=20000, pid=pid)
        up.send(10000)
        server.wait_for(pid, lambda a: a.get("received") == 10000)
        n = signal_reload(server)
        up.send(10000)
        assert up.response()[0] == 200
        up.close()
        wait_reloaded(server, n, workers)
    pids = group(server)
    assert len(pids) == processes(workers)
    held = {pid: region_of(pid) for pid in pids}
    inodes = set().union(*(h[2] for h in held.values()))
    assert len(inodes) == 1, held          # one region for the whole server
    kib = region_kib(server.proc.pid)
    for pid, (mappings, fds, _, shmem, anon) in held.items():
        assert (mappings, fds, anon) == (1, 1, 1), (pid, held)
        # the region's pages and the page of the count of event streams,
        # nothing of earlier generations
        assert shmem <= kib + 4, (pid, shmem, kib)
    assert region_fds_inheritable(server) == []
    for pid in ids:   # and it kept every upload
        assert counts(server.poll(pid)[0]) == {"state": "done", "size": 20000,
                                               "received": 20000}


def progress_events(stream):
    return [json.loads(data) for name, data in stream.events if name == "progress"]


@pytest.mark.parametrize("workers", [1, 4])
def test_a_stream_that_reconnects_after_a_reload_follows_the_same_upload(make_server, tmp_path,
                                                                         workers):
    """graceful-restart-bg: the old generation's stream ends without a final
    event; EventSource's next connection reaches the new generation, which
    follows the upload the old one still receives to its end."""
    from test_events import H1Stream
    server = start(make_server, tmp_path, workers, True)
    up = SlowUpload(server.port, "/sink.cgi", size=30000, pid=ID)
    try:
        up.send(10000)
        server.wait_for(ID, lambda a: a.get("received") == 10000)
        first = H1Stream(server.port, "?X-Progress-ID=" + ID)
        n = signal_reload(server)
        while not first.ended:
            first.pump()
        first.close()
        seen = progress_events(first)   # (no final event: the upload goes on)
        assert seen and all(a["state"] == "uploading" for a in seen), seen
        wait_reloaded_keeping_old(server, n)
        again = H1Stream(server.port, "?X-Progress-ID=" + ID)
        assert counts(progress_events(again)[0]) == {"state": "uploading", "received": 10000,
                                                     "size": 30000}
        up.send(20000)
        assert up.response()[0] == 200
        while not again.ended:
            again.pump()
        again.close()
        assert progress_events(again)[-1] == {"state": "done", "received": 30000,
                                              "size": 30000}
    finally:
        up.close()


@pytest.mark.parametrize("workers,bg", [(1, False), (4, True)], ids=["1-worker", "4-workers-bg"])
def test_the_counters_of_the_status_page_survive_a_reload(make_server, tmp_path, workers, bg):
    from test_counters import STATS, expect_everywhere
    from test_counters import counts as stats
    server = start(make_server, tmp_path, workers, bg, 'status.statistics-url = "%s"\n' % STATS,
                   modules=("mod_uploadprogress", "mod_cgi", "mod_status"))
    for pid in make_ids(0x2330, 2):
        assert upload(server, pid, 100) == 200
    kept = stats(tracked=2, done=2, entries=2)
    expect_everywhere(server, kept, reads=2)
    reload(server, workers)
    expect_everywhere(server, kept, reads=2)
