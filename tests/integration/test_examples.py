"""examples/lighttpd.conf and its upload target work as shipped (the demo
runs them the same way: included, with only the port and log overridden),
and scripts/demo itself starts, answers, and serves as no root."""
import os
import signal
import subprocess

import pytest

from lighty import (HERE, ROOT, SlowUpload, counts, demo_done, free_port, raw_get,
                    start_shipped, wait_for)
from test_events import H1Stream, progress

ID = "00112233445566778899aabbccddeeff"


@pytest.mark.lighttpd_interface
def test_the_shipped_demo_serves_its_pages_and_tracks_an_upload(tmp_path):
    server = start_shipped(tmp_path)
    try:
        status, _, body = server.request("GET", "/")
        assert status == 200
        for page in (b"/modern/", b"/classic/", b"/too-big/"):
            assert page in body
        for path in ("/modern/", "/modern/modern.js", "/classic/", "/classic/form.html",
                     "/classic/progress.html", "/too-big/", "/progress-view.js", "/frames.js"):
            assert server.request("GET", path)[0] == 200, path
        # the client is served from beside the config, outside the docroot
        status, headers, js = server.request("GET", "/uploadprogress.js")
        assert status == 200 and headers["content-type"].startswith("text/javascript")
        assert b"crypto.getRandomValues" in js and b"X-Progress-ID=" in js

        up = SlowUpload(server.port, "/upload.cgi", size=300000, pid=ID, via="query")
        up.send(100000)
        server.wait_for(ID, lambda a: counts(a) == {"state": "uploading", "received": 100000,
                                                    "size": 300000})
        up.send(200000)
        status, body = up.response()
        up.close()
        assert status == 200
        assert b'{"stored":300000}' in body
        assert server.poll(ID)[0] == demo_done(300000)
    finally:
        server.stop()


def test_the_shipped_limit_reports_413(tmp_path):
    server = start_shipped(tmp_path)
    try:
        up = SlowUpload(server.port, "/upload.cgi", size=200 * 1024 * 1024, pid=ID, via="query")
        status, _ = up.response()
        up.close()
        assert status == 413
        assert server.poll(ID)[1] == b'{"state":"error","status":413}'
    finally:
        server.stop()


def test_the_too_big_example_has_a_limit_of_1_mib(tmp_path):
    server = start_shipped(tmp_path)
    try:
        over = "ffeeddccbbaa99887766554433221100"
        up = SlowUpload(server.port, "/too-big/upload.cgi", size=1024 * 1024 + 1, pid=over,
                        via="query")
        status, _ = up.response()
        up.close()
        assert status == 413
        assert server.poll(over)[1] == b'{"state":"error","status":413}'

        status, _, body = server.request("POST", "/too-big/upload.cgi?X-Progress-ID=" + ID,
                                         body=b"x" * 1024 * 1024)
        assert status == 200 and body == b'{"stored":1048576}\n'
        assert server.poll(ID)[0] == demo_done(1048576)
    finally:
        server.stop()


def test_the_shipped_demo_streams_an_upload_to_done(tmp_path):
    server = start_shipped(tmp_path)
    try:
        stream = H1Stream(server.port, "?X-Progress-ID=" + ID)
        assert stream.status == 200
        assert stream.headers["content-type"] == "text/event-stream"
        up = SlowUpload(server.port, "/upload.cgi", size=300000, pid=ID, via="query")
        up.send(300000)
        assert up.response()[0] == 200
        up.close()
        while not stream.ended:
            stream.pump()
        stream.close()
        answers = progress(stream.events)
        assert answers[0] == {"state": "starting"}
        assert counts(answers[-1]) == demo_done(300000)
    finally:
        server.stop()


def session_processes(sid):
    """{pid: (real uid, effective uid, command)} of a session's processes."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = open("/proc/%s/stat" % entry).read()
            status = open("/proc/%s/status" % entry).read()
        except OSError:
            continue                                   # gone meanwhile
        if int(stat.rsplit(")", 1)[1].split()[3]) != sid:   # field 6: session
            continue
        uids = next(l for l in status.splitlines() if l.startswith("Uid:")).split()
        found[int(entry)] = (int(uids[1]), int(uids[2]), stat.split("(", 1)[1].rsplit(")", 1)[0])
    return found


@pytest.mark.skipif(ROOT is not None or bool(os.environ.get("UPLOADPROGRESS_PRELOAD")),
                    reason="scripts/demo serves this system's lighttpd with build/'s plain module")
def test_scripts_demo_listens_where_it_says_and_serves_as_no_root():
    port = free_port()
    env = dict(os.environ, DEMO_PORT=str(port), DEMO_BIND="127.0.0.1")
    demo = subprocess.Popen([str(HERE.parent.parent / "scripts/demo")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        def answer():
            try:
                return raw_get(port, ("/progress?X-Progress-ID=" + ID).encode())
            except OSError:
                assert demo.poll() is None, demo.stdout.read().decode(errors="replace")
                return None
        status = wait_for(answer, lambda a: a is not None, timeout=120)[-1]
        assert status == (200, b'{"state":"starting"}')
        up = SlowUpload(port, "/upload.cgi", size=300000, pid=ID, via="query")
        up.send(300000)
        assert up.response()[0] == 200
        up.close()
        processes = session_processes(demo.pid)
        lighttpd = {pid: p for pid, p in processes.items() if p[2] == "lighttpd"}
        assert lighttpd, processes
        if os.geteuid() == 0:
            # the script's own shell stays root (to clean up); lighttpd, and
            # the CGI it forks, do not
            assert all(0 not in p[:2] for p in lighttpd.values()), processes
            assert all(0 not in p[:2] for pid, p in processes.items() if pid != demo.pid), processes
    finally:
        os.killpg(demo.pid, signal.SIGTERM)
        out = demo.communicate(timeout=30)[0].decode(errors="replace")
    said = "Demo: listening on 127.0.0.1 port %d" % port
    assert said in out and "DEMO_PORT=" in out and "DEMO_BIND=" in out, out
    if os.geteuid() == 0:
        assert "as user www-data" in out, out
