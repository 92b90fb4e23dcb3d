"""The re-entry matrix (issue 18): every way lighttpd sends a request back
through the module's hooks, with an upload that has an id, while polls and
an event stream follow the same id, with one worker and four.  Each case
asserts what the uploading client gets, what its polls and its stream end
with (a refused upload: error with its status; a served one: done with its
full size), and that lighttpd and every worker still live and answer.
doc/mod_uploadprogress.md, "Requests that come back", states the rule.

(lighttpd has no url.rewrite-if-not-exists: url.rewrite-repeat-if-not-file
is the other rewrite that runs after the module has seen the request.)"""
import http.client
import threading
import time

import pytest

from h2client import H2Client
from lighty import SlowUpload, counts, system_modules_here, workers_of
from test_events import H1Watch, progress, wait_for_workers

pytestmark = pytest.mark.lighttpd_interface   # every test here (tests/README.md)

ID = "0123456789abcdef0123456789abcdef"
FRESH = "fedcba9876543210fedcba9876543210"
SIZE = 20000
FIRST = 8000     # sent before the polls look for the upload

# mod_magnet's script: the upload's URL restarts as another one (in the
# physical stage, lighttpd starts over only without a physical path)
MAGNET = """
if lighty.env["uri.path"] == "/up" then
  lighty.env["request.uri"] = "{target}"
  lighty.env["physical.path"] = nil
  return lighty.RESTART_REQUEST
end
"""


def done(n=SIZE):
    return {"state": "done", "received": n, "size": n}


def error(status):
    return {"state": "error", "status": status}


# name: (config, modules, path, status the client gets, final answer,
#        whether a handler reads the body)
REWRITE = ("mod_uploadprogress", "mod_rewrite", "mod_cgi")
MAGNETIC = ("mod_uploadprogress", "mod_magnet", "mod_cgi")
AUTH = ('auth.backend = "plain"\nauth.backend.plain.userfile = "{dir}/users"\n'
        'auth.require = ( "/sink.cgi" => ( "method" => "basic", "realm" => "up",'
        ' "require" => "valid-user" ) )\n')
AUTH_FIRST = ("mod_auth", "mod_authn_file", "mod_uploadprogress", "mod_cgi")
AUTH_AFTER = ("mod_uploadprogress", "mod_auth", "mod_authn_file", "mod_cgi")
DENY = '$HTTP["url"] =~ "^/sink" { url.access-deny = ("") }\n'
CASES = {
    "rewrite-if-not-file-into-progress": (
        'url.rewrite-if-not-file = ( "^/up$" => "/progress" )\n', REWRITE,
        "/up", 404, error(404), False),
    "rewrite-if-not-file-to-cgi": (
        'url.rewrite-if-not-file = ( "^/up$" => "/sink.cgi" )\n', REWRITE,
        "/up", 200, done(), True),
    "rewrite-repeat-if-not-file-into-progress": (
        'url.rewrite-repeat-if-not-file = ( "^/up$" => "/progress" )\n', REWRITE,
        "/up", 404, error(404), False),
    "error-handler-into-progress": (
        'server.error-handler = "/progress"\n', None,
        "/missing", 404, error(404), False),
    # the error handler gets the request without its body: the upload
    # ends there, refused; a CGI's page sets its own status
    "error-handler-to-cgi": (
        'server.error-handler = "/sink.cgi"\n', None,
        "/missing", 200, error(404), False),
    "error-handler-404-into-progress": (
        'server.error-handler-404 = "/progress"\n', None,
        "/missing", 404, error(404), False),
    "error-handler-404-to-cgi": (
        'server.error-handler-404 = "/sink.cgi"\n', None,
        "/missing", 200, done(), True),
    "magnet-restart-into-progress": (
        'magnet.attract-physical-path-to = ( "{dir}/restart-progress.lua" )\n', MAGNETIC,
        "/up", 404, error(404), False),
    "magnet-restart-to-cgi": (
        'magnet.attract-physical-path-to = ( "{dir}/restart-cgi.lua" )\n', MAGNETIC,
        "/up", 200, done(), True),
    # the CGI had the whole body before it redirected: the upload is done
    "cgi-local-redir-into-progress": (
        'cgi.local-redir = "enable"\n', None,
        "/redir-progress.cgi", 404, done(), True),
    "cgi-local-redir-to-file": (
        'cgi.local-redir = "enable"\n', None,
        "/redir.cgi", 200, done(), True),
    "413-before-the-module": (
        "server.max-request-size = 1\n", None,
        "/sink.cgi", 413, error(413), False),
    "413-before-the-module-then-error-handler-into-progress": (
        'server.max-request-size = 1\nserver.error-handler = "/progress"\n', None,
        "/sink.cgi", 413, error(413), False),
    "401-before-the-module": (AUTH, AUTH_FIRST, "/sink.cgi", 401, error(401), False),
    "401-after-the-module": (AUTH, AUTH_AFTER, "/sink.cgi", 401, error(401), False),
    "401-after-the-module-then-error-handler-into-progress": (
        AUTH + 'server.error-handler = "/progress"\n', AUTH_AFTER,
        "/sink.cgi", 401, error(401), False),
    "403-before-the-module": (
        DENY, ("mod_access", "mod_uploadprogress", "mod_cgi"),
        "/sink.cgi", 403, error(403), False),
    "403-after-the-module-then-error-handler-404-into-progress": (
        DENY + 'server.error-handler-404 = "/progress"\n',
        ("mod_uploadprogress", "mod_access", "mod_cgi"),
        "/sink.cgi", 403, error(403), False),
}


class Poller(threading.Thread):
    """Polls the id until stopped; every poll must get a 200 JSON answer."""

    def __init__(self, server):
        super().__init__(daemon=True)
        self.server = server
        self.answers = []
        self.failure = None
        self.halt = threading.Event()

    def run(self):
        try:
            while not self.halt.is_set():
                self.answers.append(counts(self.server.poll(ID)[0]))
                time.sleep(0.01)
        except Exception as e:   # reported by stop()
            self.failure = e

    def stop(self):
        self.halt.set()
        self.join(10)
        assert self.failure is None, self.failure
        return self.answers


def assert_polls_lead_to(answers, final):
    """Polls only move forward: starting, uploading, then the final answer,
    never another final one (no done for an upload that fails)."""
    order = {"starting": 0, "uploading": 1, "done": 2, "error": 2}
    for before, after in zip(answers, answers[1:]):
        assert order[before["state"]] <= order[after["state"]], answers
    for answer in answers:
        if answer["state"] in ("done", "error"):
            assert answer == final, (answer, final)


def upload(server, path, body_read):
    """The upload of SIZE bytes with its id in the header, FIRST bytes of
    it first; returns the status and Content-Type its client gets."""
    up = SlowUpload(server.port, path, size=SIZE, pid=ID)
    try:
        up.send(FIRST)
        if body_read:   # polls meanwhile see it run
            server.wait_for(ID, lambda a: a.get("received") == FIRST)
        try:
            up.send(SIZE - FIRST)
        except OSError:   # refused: lighttpd may have closed already
            pass
        answer = http.client.HTTPResponse(up.sock)
        answer.begin()
        return answer.status, answer.getheader("Content-Type")
    finally:
        up.close()


def upload_h2(server, path, body_read):
    """The same upload over HTTP/2 (h2c with prior knowledge)."""
    client = H2Client(server.port)
    try:
        sid = client.upload(path, pid=ID, size=SIZE)
        if body_read:
            client.send(sid, FIRST)
            server.wait_for(ID, lambda a: a.get("received") == FIRST)
            client.send(sid, SIZE - FIRST, end=True)
        # (else lighttpd answers on the headers, and after a 413 it closes
        # the connection: DATA sent meanwhile could make the kernel reset it
        # before the answer is read)
        st = client.streams[sid]
        while st["status"] is None:
            client.pump()
        return st["status"], st["content-type"]
    finally:
        client.close()


UPLOADS = {"http1": upload, "http2": upload_h2}


def assert_alive(server, workers, pids):
    """lighttpd and the same workers still run, and they answer."""
    assert server.proc.poll() is None, "lighttpd is gone"
    if workers > 1:
        assert sorted(workers_of(server)) == pids, "a worker died and was replaced"
    for _ in range(2 * workers):
        status, _, body = server.request("GET", "/redirected.txt")
        assert status == 200, (status, body)
        assert server.poll(FRESH)[1] == b'{"state":"starting"}'


def start(make_server, tmp_path, name, workers):
    config, modules, *_ = CASES[name]
    if "magnet" in name and not magnet_available():
        pytest.skip("mod_magnet is not installed (Debian: lighttpd-modules-lua)")
    for target in ("progress", "cgi"):
        (tmp_path / ("restart-%s.lua" % target)).write_text(
            MAGNET.format(target="/progress" if target == "progress" else "/sink.cgi"))
    (tmp_path / "users").write_text("alice:secret\n")
    text = ('upload-progress.progress-url = "/progress"\n'
            "server.max-worker = %d\n" % workers) + config.replace("{dir}", str(tmp_path))
    kw = {"modules": modules} if modules else {}
    server = make_server(text, **kw)
    pids = []
    if workers > 1:
        wait_for_workers(server, workers)
        pids = sorted(workers_of(server))
    return server, pids


def magnet_available():
    return (system_modules_here() / "mod_magnet.so").exists()


@pytest.mark.parametrize("proto", ["http1", "http2"])
@pytest.mark.parametrize("workers", [1, 4])
@pytest.mark.parametrize("name", list(CASES))
def test_a_request_that_comes_back_stays_what_it_was(make_server, tmp_path, name, workers, proto):
    _, _, path, client_status, final, body_read = CASES[name]
    server, pids = start(make_server, tmp_path, name, workers)
    watch = H1Watch(server, ID)
    poller = Poller(server)
    poller.start()
    try:
        status, content_type = UPLOADS[proto](server, path, body_read)
        last = server.wait_for(ID, lambda a: a["state"] in ("done", "error"))[-1]
    finally:
        polled = poller.stop()
    assert status == client_status
    # the upload's answer is never the module's (a poll's, a stream's)
    assert content_type not in ("application/json", "text/event-stream")
    assert counts(last) == final
    assert_polls_lead_to(polled, final)
    events = progress(watch.ended())
    watch.close()
    assert counts(events[-1]) == final, events
    assert_polls_lead_to([counts(e) for e in events], final)
    assert_alive(server, workers, pids)
    assert counts(server.poll(ID)[0]) == final
