"""The work after an upload's last byte (doc/processing.md): the processing
phase, stages that backends report to the report URL, a 202's work and its
outcome or timeout, the reports refused; by poll, JSONP and event stream,
with one worker and four, over HTTP/1.1 and HTTP/2.

The backends (tests/integration/www/stages*) report two stages after
reading the body, each held until the test opens its gate (a file), so
every answer is awaited, never timed."""
import base64
import json
import os
import socket
import time

import pytest

from h2client import H2Client
from lighty import ROOT, SlowUpload, counts, read_to_close, wait_for
from test_counters import statistics_on_new_connection
from test_events import H1Stream, H2Watch, progress
from test_workers import wait_for_workers

IDS = ["%032x" % (0x22000 + n) for n in range(16)]
SIZE = 5000
STATES = ("starting", "uploading", "done", "error")
REPORT = "/progress-report"
STATS = "/server-statistics"
PHP_CGI = "/usr/bin/php-cgi"


def have_in_lighttpds_system(path):
    """Whether lighttpd (chrooted in a release's root, or not) can run path."""
    return os.path.exists(str(ROOT) + path if ROOT else path)


BACKENDS = {
    "sh-curl": "/stages.cgi",
    "python": "/stages-python.cgi",
    "php-fastcgi": "/stages.php",
}


def skip_without(backend):
    if backend == "sh-curl" and not have_in_lighttpds_system("/usr/bin/curl"):
        pytest.skip("no curl where lighttpd runs (a release's root has none)")
    if backend == "php-fastcgi" and not have_in_lighttpds_system(PHP_CGI):
        pytest.skip("no php-cgi where lighttpd runs (scripts/setup-deps installs it on "
                    "the host; a release's root has none)")


def config(workers=1, timeout=None, fmt=None, report_place='$HTTP["remote-ip"] == "127.0.0.1"',
           extra=""):
    text = ('upload-progress.progress-url = "/progress"\n'
            'status.statistics-url = "%s"\n'
            "server.max-worker = %d\n" % (STATS, workers))
    if report_place:
        text += '%s {\n  upload-progress.report-url = "%s"\n}\n' % (report_place, REPORT)
    if timeout is not None:
        text += "upload-progress.processing-timeout = %d\n" % timeout
    if fmt:
        text += 'upload-progress.format = "%s"\n' % fmt
    return text + extra


def start(make_server, tmp_path, workers=1, backend="python", **kw):
    skip_without(backend)
    modules = ["mod_uploadprogress", "mod_cgi", "mod_status"]
    extra = kw.pop("extra", "")
    if backend == "php-fastcgi":
        modules.append("mod_fastcgi")
        extra += ('fastcgi.server = ( ".php" => (( "bin-path" => "%s", '
                  '"socket" => "%s", "max-procs" => 1, '
                  '"bin-environment" => ( "PHP_FCGI_CHILDREN" => "2" ), '
                  # (not the server's preloads: a sanitizer's runtime in scripts/test)
                  '"bin-copy-environment" => ( "PATH" ) )) )\n'
                  % (PHP_CGI, tmp_path / "php.sock"))
    server = make_server(config(workers, extra=extra, **kw), modules=tuple(modules))
    if workers > 1:
        wait_for_workers(server, workers)
    return server


class Work:
    """An upload to a stages backend, its whole body sent; the test opens
    the backend's gates."""

    def __init__(self, server, backend, pid, mode=None):
        self.gates = server.dir / "www" / "gates"
        self.gates.mkdir(exist_ok=True)
        self.pid = pid
        path = BACKENDS[backend] + ("?mode=" + mode if mode else "")
        self.up = SlowUpload(server.port, path, size=SIZE, pid=pid)
        self.up.send(SIZE)

    def open(self, k):
        (self.gates / ("%s.%d" % (self.pid, k))).touch()

    def codes(self, n, timeout=20):
        """The statuses of the backend's first n reports, once it has made them."""
        path = self.gates / (self.pid + ".codes")
        deadline = time.monotonic() + timeout
        while True:
            lines = path.read_text().split() if path.exists() else []
            if len(lines) >= n:
                return lines
            assert time.monotonic() < deadline, lines
            time.sleep(0.05)

    def response(self):
        status, body = self.up.response()
        self.up.close()
        return status


def answer(**kw):
    base = {"state": "uploading", "received": SIZE, "size": SIZE}
    base.update(kw)
    return base


def wait_stage(server, pid, stage, timeout=20):
    """Polls until the stage is told with the whole body counted (a worker
    that does not serve the upload reads the count its owner publishes
    every publish-interval; the stage, from the table at once)."""
    return server.wait_for(pid, lambda a: a.get("stage") == stage and a["received"] == SIZE,
                           timeout=timeout)


def stages_in_order(answers):
    """The stages the answers told, each once, in the order first told."""
    told = []
    for a in answers:
        if "stage" in a and (not told or told[-1] != a["stage"]):
            told.append(a["stage"])
    return told


def assert_states(answers):
    for a in answers:
        assert a["state"] in STATES, a


def stream_wait(stream, predicate, timeout=20):
    """Reads a stream's events until its last answer satisfies predicate.
    (A stream samples the table every push-interval: a stage held for less
    may pass unseen, so the test holds each until the stream has told it.)"""
    deadline = time.monotonic() + timeout
    while True:
        answers = progress(stream.events)
        if answers and predicate(answers[-1]):
            return answers
        assert time.monotonic() < deadline, answers
        stream.pump()


def stream_until_end(stream, timeout=20):
    deadline = time.monotonic() + timeout
    while not stream.ended:
        assert time.monotonic() < deadline, stream.events
        stream.pump()
    return progress(stream.events)


def report(server, pid, form, source="127.0.0.1", method="POST", headers=None):
    """Sends a report from the given loopback address: (status, headers, body)."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10,
                                    source_address=(source, 0))
    hdrs = {"Host": "127.0.0.1", "Content-Type": "application/x-www-form-urlencoded",
            "Content-Length": str(len(form)), "Connection": "close"}
    if pid:
        hdrs["X-Progress-ID"] = pid
    hdrs.update(headers or {})
    head = "%s %s HTTP/1.1\r\n%s\r\n" % (method, REPORT, "".join(
        "%s: %s\r\n" % kv for kv in hdrs.items()))
    sock.sendall(head.encode() + form.encode())
    head, body = read_to_close(sock)
    sock.close()
    lines = head.decode().split("\r\n")
    return (int(lines[0].split()[1]),
            {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}, body)



def open_202_work(server, pid):
    """A Python backend's upload answered 202, its work left open at the
    stage "indexing"."""
    work = Work(server, "python", pid, "202")
    wait_stage(server, pid, "checking")
    work.open(1)
    work.open(2)
    assert work.response() == 202
    wait_stage(server, pid, "indexing")
    return work

# --- the processing phase and its stages -----------------------------------

@pytest.mark.lighttpd_interface
@pytest.mark.parametrize("workers", [1, 4])
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_stages_by_poll_jsonp_and_stream(make_server, tmp_path, backend, workers):
    server = start(make_server, tmp_path, workers, backend)
    pid = IDS[0]
    stream = H1Stream(server.port, "?X-Progress-ID=" + pid)
    work = Work(server, backend, pid)
    seen = wait_stage(server, pid, "checking")
    assert counts(seen[-1]) == answer(phase="processing", stage="checking", percent=50)

    def jsonp():
        status, hdrs, body = server.request("GET", "/progress?X-Progress-ID=%s&callback=cb"
                                            % pid)
        assert status == 200 and hdrs["content-type"] == "application/javascript"
        assert body.startswith(b"cb(") and body.endswith(b");")
        return counts(json.loads(body[3:-2]))
    # (another worker than the last poll's may answer: it has the count once published)
    wait_for(jsonp, lambda a: a == counts(seen[-1]))
    stream_wait(stream, lambda a: a.get("stage") == "checking" and a["received"] == SIZE)
    work.open(1)
    seen += wait_stage(server, pid, "saving the file")
    assert counts(seen[-1]) == answer(phase="processing", stage="saving the file")
    stream_wait(stream, lambda a: a.get("stage") == "saving the file")
    work.open(2)
    assert work.response() == 200
    assert work.codes(2) == ["204", "204"]
    final = {"state": "done", "received": SIZE, "size": SIZE, "phase": "finished"}
    seen += server.wait_for(pid, lambda a: a["state"] != "uploading")
    assert seen[-1] == final
    events = stream_until_end(stream)
    stream.close()
    assert events[-1] == final
    for answers in (seen, events):
        assert_states(answers)
        assert stages_in_order(answers) == ["checking", "saving the file"]


@pytest.mark.parametrize("workers", [1, 4])
def test_the_processing_phase_begins_with_the_last_byte(make_server, tmp_path, workers):
    """Before any report: a backend that has the whole body and has not
    answered yet is processing, received == size, final."""
    server = start(make_server, tmp_path, workers)
    pid = IDS[1]
    work = Work(server, "python", pid)
    seen = server.wait_for(pid, lambda a: a.get("received") == SIZE, timeout=20)
    assert counts(seen[-1]) in (answer(phase="processing"),
                                answer(phase="processing", stage="checking", percent=50))
    for a in seen:
        assert a["state"] in ("starting", "uploading"), a
        # (the backend's first report may come before another worker has
        # the published count: its stage then tells the phase already)
        if "stage" not in a:
            assert ("phase" in a) == (a.get("received") == SIZE), a
    work.open(1)
    work.open(2)
    assert work.response() == 200


# --- 202 Accepted: the work goes on after the response ---------------------

@pytest.mark.parametrize("workers", [1, 4])
@pytest.mark.parametrize("backend", ["sh-curl", "python"])
@pytest.mark.parametrize("mode, outcome", [("202", {"phase": "finished", "message": "indexed"}),
                                           ("202-failed", {"phase": "failed",
                                                           "message": "index is full"})],
                         ids=["finished", "failed"])
def test_a_202_keeps_the_work_open_until_its_outcome(make_server, tmp_path, backend, workers,
                                                     mode, outcome):
    server = start(make_server, tmp_path, workers, backend)
    pid = IDS[2]
    work = Work(server, backend, pid, mode)
    wait_stage(server, pid, "checking")
    work.open(1)
    wait_stage(server, pid, "saving the file")
    work.open(2)
    assert work.response() == 202
    seen = wait_stage(server, pid, "indexing")
    assert seen[-1] == {"state": "done", "received": SIZE, "size": SIZE,
                        "phase": "processing", "stage": "indexing", "percent": 10}
    # a stream opened now stays open past the upload's done, until the outcome
    stream = H1Stream(server.port, "?X-Progress-ID=" + pid)
    while not progress(stream.events):
        stream.pump()
    assert not stream.ended
    work.open(3)
    final = {"state": "done", "received": SIZE, "size": SIZE, **outcome}
    seen += server.wait_for(pid, lambda a: a.get("phase") != "processing", timeout=20)
    assert seen[-1] == final
    events = stream_until_end(stream)
    stream.close()
    assert events[-1] == final
    assert_states(seen + events)
    assert work.codes(4) == ["204"] * 4
    # the outcome is final
    status, _, _ = report(server, pid, "stage=again")
    assert status == 409


def test_a_202_without_an_outcome_fails_when_the_timeout_passes(make_server, tmp_path):
    server = start(make_server, tmp_path, timeout=2)
    pid = IDS[3]
    work = open_202_work(server, pid)
    stream = H1Stream(server.port, "?X-Progress-ID=" + pid)
    final = {"state": "done", "received": SIZE, "size": SIZE, "phase": "failed",
             "message": "processing timed out"}
    seen = server.wait_for(pid, lambda a: a.get("phase") != "processing", timeout=20)
    assert seen[-1] == final
    assert stream_until_end(stream)[-1] == final
    stream.close()
    # the backend's outcome comes too late
    work.open(3)
    assert work.codes(4)[-1] == "409"
    assert server.poll(pid)[0] == final


def test_any_other_response_ends_the_work_with_the_upload(make_server, tmp_path):
    server = start(make_server, tmp_path)
    pid = IDS[4]
    up = SlowUpload(server.port, "/fail.cgi", size=SIZE, pid=pid)
    up.send(SIZE // 2)
    server.wait_for(pid, lambda a: a.get("received") == SIZE // 2)
    assert report(server, pid, "stage=early&percent=1")[0] == 204
    up.send(SIZE - SIZE // 2)
    assert up.response()[0] == 500
    up.close()
    final = server.wait_for(pid, lambda a: a["state"] != "uploading")[-1]
    assert final == {"state": "error", "status": 500, "phase": "failed"}
    assert report(server, pid, "outcome=finished")[0] == 409


# --- reports refused ---------------------------------------------------------

def test_every_refused_report_changes_nothing_and_creates_nothing(make_server, tmp_path):
    server = start(make_server, tmp_path)
    unknown, done, running = IDS[5], IDS[6], IDS[7]

    status, hdrs, body = report(server, unknown, "stage=a")
    assert (status, hdrs["content-type"]) == (404, "application/json")
    assert b"unknown id" in body
    assert server.poll(unknown)[0] == {"state": "starting"}

    up = SlowUpload(server.port, "/sink.cgi", size=SIZE, pid=done)
    up.send(SIZE)
    assert up.response()[0] == 200
    up.close()
    server.wait_for(done, lambda a: a["state"] == "done")
    status, _, body = report(server, done, "stage=a")
    assert status == 409 and b"ended" in body

    up = SlowUpload(server.port, "/sink.cgi", size=SIZE, pid=running)
    up.send(100)
    before = server.wait_for(running, lambda a: a.get("received") == 100)[-1]
    bad = {
        "stage=%22quoted%22": b"bad stage",
        "stage=" + "x" * 33: b"bad stage",
        "stage=": b"bad stage",
        "percent=101": b"bad percent",
        "percent=-5": b"bad percent",
        "percent=half": b"bad percent",
        "outcome=maybe": b"bad outcome",
        "outcome=finished&stage=a": b"mixed report",
        "color=red": b"malformed report",
        "": b"empty report",
    }
    for form, word in bad.items():
        status, hdrs, body = report(server, running, form)
        assert (status, hdrs["content-type"]) == (400, "application/json"), (form, body)
        assert word in body, (form, body)
    assert report(server, None, "stage=a")[0] == 400
    assert report(server, None, "stage=a", headers={"X-Progress-ID": "nothex"})[0] == 400
    status, hdrs, _ = report(server, running, "", method="GET")
    assert status == 405 and hdrs["allow"] == "POST"
    # from outside the configured place, the URL is an ordinary one
    status, hdrs, body = report(server, running, "stage=a", source="127.0.0.2")
    assert status == 404 and hdrs.get("content-type") != "application/json", body
    assert counts(server.poll(running)[0]) == counts(before)
    assert "phase" not in server.poll(running)[0]

    # (each worker publishes its counts once a second)
    stats = wait_for(lambda: statistics_on_new_connection(server)[0],
                     lambda s: s["uploadprogress.bad_reports"] == len(bad) + 5)[-1]
    assert stats["uploadprogress.reports"] == 0
    up.send(SIZE - 100)
    assert up.response()[0] == 200
    up.close()


def test_without_the_key_the_report_url_is_ordinary(make_server, tmp_path):
    server = start(make_server, tmp_path, report_place=None)
    pid = IDS[8]
    up = SlowUpload(server.port, "/sink.cgi", size=SIZE, pid=pid)
    up.send(100)
    server.wait_for(pid, lambda a: a.get("received") == 100)
    status, hdrs, _ = report(server, pid, "stage=a")
    assert status == 404 and hdrs.get("content-type") != "application/json"
    assert "phase" not in server.poll(pid)[0]
    up.send(SIZE - 100)
    assert up.response()[0] == 200
    up.close()


def test_the_status_page_counts_reports_and_work_open(make_server, tmp_path):
    server = start(make_server, tmp_path, timeout=60)
    pid = IDS[9]
    work = open_202_work(server, pid)
    assert report(server, IDS[10], "stage=a")[0] == 404

    def stats():
        return statistics_on_new_connection(server)[0]
    seen = wait_for(stats, lambda s: s["uploadprogress.reports"] == 3)
    assert seen[-1]["uploadprogress.processing"] == 1
    assert seen[-1]["uploadprogress.bad_reports"] == 1
    work.open(3)
    wait_for(stats, lambda s: s["uploadprogress.reports"] == 4
             and s["uploadprogress.processing"] == 0)


# --- what other formats and protocols say ------------------------------------

@pytest.mark.parametrize("fmt, processing, accepted", [
    ("legacy", "new Object({ 'state' : 'uploading', 'received' : %d, 'size' : %d })"
     % (SIZE, SIZE), "new Object({ 'state' : 'done', 'received' : %d, 'size' : %d })"
     % (SIZE, SIZE)),
    ("xml", '<?xml version="1.0" encoding="iso-8859-1"?><upload><size>%d</size>'
     "<received>%d</received><state>uploading</state></upload>" % (SIZE, SIZE),
     '<?xml version="1.0" encoding="iso-8859-1"?><upload><size>%d</size>'
     "<received>%d</received><state>done</state></upload>" % (SIZE, SIZE)),
])
def test_legacy_and_xml_answer_as_they_always_did(make_server, tmp_path, fmt, processing,
                                                  accepted):
    server = start(make_server, tmp_path, fmt=fmt)
    pid = IDS[11]
    work = Work(server, "python", pid, "202")

    def raw():
        return server.request("GET", "/progress?X-Progress-ID=" + pid)[2].decode()
    wait_for(raw, lambda body: body == processing, timeout=20)
    work.open(1)
    work.open(2)
    assert work.response() == 202
    assert work.codes(3)[-1] == "204"    # the stage after the response
    assert raw() == accepted
    work.open(3)
    assert work.codes(4)[-1] == "204"
    assert raw() == accepted


@pytest.mark.lighttpd_interface
def test_http2_polls_and_reports(make_server, tmp_path):
    server = start(make_server, tmp_path)
    pid = IDS[13]
    (server.dir / "www" / "gates").mkdir(exist_ok=True)
    client = H2Client(server.port)
    try:
        up = client.upload(BACKENDS["python"], pid, SIZE)
        client.send(up, SIZE)
        wait_for(lambda: client.poll(pid)[0], lambda a: a.get("stage") == "checking",
                 timeout=20)
        form = b"percent=75"
        sid = client.open("POST", REPORT, [("x-progress-id", pid),
                                           ("content-length", str(len(form)))])
        client.conn.send_data(sid, form, end_stream=True)
        client.flush()
        assert client.response(sid)[0] == 204
        assert counts(client.poll(pid)[0]) == answer(phase="processing", stage="checking",
                                                     percent=75)
        # an event stream over HTTP/2 tells it too, and ends with the work
        watch = H2Watch(server, pid)
        watch.wait(lambda a: a.get("stage") == "checking" and a.get("percent") == 75)
        for k in (1, 2):
            (server.dir / "www" / "gates" / ("%s.%d" % (pid, k))).touch()
        assert client.response(up)[0] == 200
        assert client.poll(pid)[0]["phase"] == "finished"
        events = progress(watch.ended())
        watch.close()
        assert events[-1] == {"state": "done", "received": SIZE, "size": SIZE,
                              "phase": "finished"}
        assert_states(events)
    finally:
        client.close()


def test_a_report_in_the_query_string_needs_no_body(make_server, tmp_path):
    server = start(make_server, tmp_path)
    pid = IDS[14]
    up = SlowUpload(server.port, "/sink.cgi", size=SIZE, pid=pid)
    up.send(100)
    server.wait_for(pid, lambda a: a.get("received") == 100)
    status, _, body = server.request("POST", "%s?X-Progress-ID=%s&stage=unpacking&percent=5"
                                     % (REPORT, pid), body=b"")
    assert status == 204 and body == b""
    assert counts(server.poll(pid)[0]) == {"state": "uploading", "received": 100,
                                           "size": SIZE, "phase": "processing",
                                           "stage": "unpacking", "percent": 5}
    up.send(SIZE - 100)
    assert up.response()[0] == 200
    up.close()


@pytest.mark.lighttpd_interface
def test_reports_behind_mod_auth_need_its_credentials_whatever_the_module_order(
        make_server, tmp_path):
    """mod_uploadprogress loaded before mod_auth (as for polls): a report is
    taken after the uri stage, where mod_auth has refused it already."""
    users = tmp_path / "users"
    users.write_text("backend:secret\n")
    extra = ('auth.backend = "plain"\nauth.backend.plain.userfile = "%s"\n'
             'auth.require = ( "%s" => ( "method" => "basic", "realm" => "reports", '
             '"require" => "valid-user" ) )\n' % (users, REPORT))
    server = make_server(config(report_place=None, extra=extra)
                         + 'upload-progress.report-url = "%s"\n' % REPORT,
                         modules=("mod_uploadprogress", "mod_auth", "mod_authn_file", "mod_cgi"))
    pid = IDS[15]
    up = SlowUpload(server.port, "/sink.cgi", size=SIZE, pid=pid)
    up.send(100)
    server.wait_for(pid, lambda a: a.get("received") == 100)
    status, hdrs, _ = report(server, pid, "stage=a")
    assert status == 401 and "www-authenticate" in hdrs
    # the same in the query string, with no body to wait for
    status, _, _ = server.request("POST", "%s?X-Progress-ID=%s&stage=b" % (REPORT, pid),
                                  body=b"")
    assert status == 401
    assert "phase" not in server.poll(pid)[0]
    credentials = "Basic " + base64.b64encode(b"backend:secret").decode()
    assert report(server, pid, "stage=a", headers={"Authorization": credentials})[0] == 204
    assert server.poll(pid)[0]["stage"] == "a"
    up.send(SIZE - 100)
    assert up.response()[0] == 200
    up.close()


@pytest.mark.parametrize("order", ["auth-first", "auth-after"])
def test_a_refused_report_handed_to_an_error_handler_stays_a_report(make_server, tmp_path,
                                                                    order):
    """A report refused by mod_auth, then handed to server.error-handler at
    the progress URL, is not answered as a poll there: a request is what it
    was when the module first saw it (and a report is one whatever the
    order of the modules), so the client gets lighttpd's 401."""
    users = tmp_path / "users"
    users.write_text("backend:secret\n")
    extra = ('auth.backend = "plain"\nauth.backend.plain.userfile = "%s"\n'
             'auth.require = ( "%s" => ( "method" => "basic", "realm" => "reports", '
             '"require" => "valid-user" ) )\nserver.error-handler = "/progress"\n'
             % (users, REPORT))
    auth = ("mod_auth", "mod_authn_file")
    modules = (auth + ("mod_uploadprogress",) if order == "auth-first"
               else ("mod_uploadprogress",) + auth) + ("mod_cgi",)
    server = make_server(config(report_place=None, extra=extra)
                         + 'upload-progress.report-url = "%s"\n' % REPORT, modules=modules)
    pid = IDS[14]
    up = SlowUpload(server.port, "/sink.cgi", size=SIZE, pid=pid)
    up.send(100)
    server.wait_for(pid, lambda a: a.get("received") == 100)
    status, hdrs, body = report(server, pid, "stage=a")
    assert (status, hdrs["content-type"]) == (401, "text/html"), (status, hdrs, body)
    assert b'"state"' not in body, body
    assert "phase" not in server.poll(pid)[0]
    up.send(SIZE - 100)
    assert up.response()[0] == 200
    up.close()
    assert counts(server.poll(pid)[0]) == {"state": "done", "received": SIZE, "size": SIZE}


def test_a_report_id_named_in_any_case_is_the_id(make_server, tmp_path):
    """The id is found in the query whatever the case of its name; the
    report's own form must not then call that name unknown."""
    server = start(make_server, tmp_path)
    pid = IDS[13]
    up = SlowUpload(server.port, "/sink.cgi", size=SIZE, pid=pid)
    up.send(100)
    server.wait_for(pid, lambda a: a.get("received") == 100)
    status, _, _ = server.request("POST", "%s?x-progress-id=%s&stage=unpacking"
                                  % (REPORT, pid), body=b"")
    assert status == 204
    assert server.poll(pid)[0].get("stage") == "unpacking"
    up.send(SIZE - 100)
    assert up.response()[0] == 200
    up.close()


@pytest.mark.lighttpd_interface
def test_a_chunked_report_body_is_refused_once_past_its_bound(make_server, tmp_path):
    """A report body of unknown length is bounded as it comes: a client that
    never ends one gets its 400 while it still sends, and lighttpd never
    spools the rest."""
    server = start(make_server, tmp_path)
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Progress-ID: %s\r\n"
                  "Content-Type: application/x-www-form-urlencoded\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n" % (REPORT, IDS[12])).encode())
    chunk = b"2000\r\n" + b"a" * 0x2000 + b"\r\n"
    sock.settimeout(0.05)
    answered = b""
    for _ in range(1024):          # 8 MiB at most, never the last chunk
        try:
            sock.sendall(chunk)
            answered = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:            # refused, and the connection closed
            break
        if answered:
            break
    sock.settimeout(10)
    try:
        answered += sock.recv(65536)
    except OSError:
        pass
    sock.close()
    assert answered.startswith(b"HTTP/1.1 400 "), answered[:200]


def test_a_report_url_that_is_the_progress_url_leaves_polls_to_it(make_server, tmp_path):
    """GET and HEAD at a path that is both URLs are polls; a POST there is a
    report."""
    server = make_server('upload-progress.progress-url = "/progress"\n'
                         'upload-progress.report-url = "/progress"\n')
    pid = IDS[11]
    up = SlowUpload(server.port, "/sink.cgi", size=SIZE, pid=pid)
    up.send(100)
    server.wait_for(pid, lambda a: a.get("received") == 100)
    status, _, _ = server.request("POST", "/progress?X-Progress-ID=%s&stage=unpacking" % pid,
                                  body=b"")
    assert status == 204
    assert server.poll(pid)[0].get("stage") == "unpacking"
    up.send(SIZE - 100)
    assert up.response()[0] == 200
    up.close()
