"""Event streams (Server-Sent Events) at the progress URL, over HTTP/1.1
and HTTP/2, with one worker and four."""
import http.client
import json
import os
import signal
import socket
import time

import h2.settings
import pytest

from h2client import H2Client
from lighty import Lighttpd, SlowUpload, counts, serving_pid, wait_for, wait_until, workers_of

pytestmark = pytest.mark.lighttpd_interface   # every test here (tests/README.md)

IDS = ["%032x" % (0xe7e0 + n) for n in range(8)]
ACCEPT = "text/event-stream"


def config(workers=1, extra=""):
    return ('upload-progress.progress-url = "/progress"\n'
            "server.max-worker = %d\n" % workers) + extra


def wait_for_workers(server, n):
    if os.environ.get("UPLOADPROGRESS_VALGRIND"):
        pytest.skip("under valgrind the workers are not named lighttpd")
    deadline = time.monotonic() + 10
    while len(workers_of(server)) < n:
        assert time.monotonic() < deadline, "workers did not start"
        time.sleep(0.05)


def parse_events(body):
    """Splits an event-stream body into complete events: (list of (name,
    data) or ("comment", text), bytes left over)."""
    events = []
    while b"\n\n" in body:
        block, _, body = body.partition(b"\n\n")
        fields = {}
        for line in block.decode().split("\n"):
            if line.startswith(":"):
                fields["comment"] = line[1:].strip()
            else:
                key, _, value = line.partition(": ")
                fields[key] = value
        if "comment" in fields:
            events.append(("comment", fields["comment"]))
        else:
            events.append((fields["event"], fields["data"]))
    return events, body


class H1Stream:
    """An event stream over its own HTTP/1.1 connection (chunked)."""

    def __init__(self, port, query, headers=()):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        lines = "".join("%s: %s\r\n" % h for h in (("Accept", ACCEPT), *headers))
        self.sock.sendall(("GET /progress%s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n"
                           % (query, lines)).encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            got = self.sock.recv(65536)
            assert got, "closed before the headers"
            buf += got
        head, _, self.raw = buf.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode().split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {k.lower(): v.strip() for k, v in
                        (line.split(":", 1) for line in header_lines)}
        self.body = b""
        self.data = b""   # every byte of the body so far, as sent
        self.ended = False
        self.events = []
        self._take()

    def _dechunk(self):
        while b"\r\n" in self.raw:
            size_line, _, rest = self.raw.partition(b"\r\n")
            size = int(size_line, 16)
            if len(rest) < size + 2:
                return
            self.body += rest[:size]
            self.data += rest[:size]
            self.raw = rest[size + 2:]
            if size == 0:
                self.ended = True
                return

    def pump(self):
        got = self.sock.recv(65536)
        if not got:
            raise ConnectionError("closed without the last chunk")
        self.raw += got
        self._take()

    def _take(self):
        if self.headers.get("transfer-encoding") == "chunked":
            self._dechunk()
        else:  # a whole answer with a Content-Length
            self.body, self.data, self.raw = self.body + self.raw, self.data + self.raw, b""
            self.ended = len(self.body) == int(self.headers["content-length"])
        events, self.body = parse_events(self.body)
        self.events.extend(events)

    def close(self):
        self.sock.close()


class H2Streams:
    """Event streams multiplexed on one HTTP/2 connection."""

    def __init__(self, port):
        self.client = H2Client(port)
        self.consumed = {}

    def open(self, query, headers=()):
        sid = self.client.open("GET", "/progress" + query,
                               [("accept", ACCEPT), *headers], end_stream=True)
        self.consumed[sid] = 0
        return sid

    def events(self, sid):
        st = self.client.streams[sid]
        return parse_events(st["body"])[0]

    def close(self):
        self.client.close()


def progress(events):
    return [json.loads(data) for name, data in events if name == "progress"]


class H1Watch:
    def __init__(self, server, pid, stream=None):
        self.s = stream or H1Stream(server.port, "?X-Progress-ID=" + pid)
        assert self.s.status == 200
        assert self.s.headers["content-type"] == ACCEPT
        assert self.s.headers["cache-control"] == "no-store"

    def wait(self, predicate):
        """Reads events until the last progress answer satisfies predicate."""
        deadline = time.monotonic() + 10
        while True:
            answers = progress(self.s.events)
            if answers and predicate(answers[-1]):
                return answers
            assert time.monotonic() < deadline, answers
            self.s.pump()

    def ended(self):
        while not self.s.ended:
            self.s.pump()
        return self.s.events

    def close(self):
        self.s.close()


class H2Watch:
    def __init__(self, server, pid, conn=None):
        self.conn = conn or H2Streams(server.port)
        self.own = conn is None
        self.sid = self.conn.open("?X-Progress-ID=" + pid)
        st = self.conn.client.streams[self.sid]
        while st["status"] is None:
            self.conn.client.pump()
        assert st["status"] == 200

    def wait(self, predicate):
        deadline = time.monotonic() + 10
        while True:
            answers = progress(self.conn.events(self.sid))
            if answers and predicate(answers[-1]):
                return answers
            assert time.monotonic() < deadline, answers
            self.conn.client.pump()

    def ended(self):
        st = self.conn.client.streams[self.sid]
        while not st["ended"]:
            self.conn.client.pump()
        assert not st["reset"]
        return self.conn.events(self.sid)

    def close(self):
        if self.own:
            self.conn.close()


WATCHES = {"http1": H1Watch, "http2": H2Watch}


def assert_wire_format(events):
    """Every event is a progress event but the last may be the final one."""
    for name, data in events:
        assert name in ("progress", "comment"), (name, data)


@pytest.mark.parametrize("workers", [1, 4])
@pytest.mark.parametrize("proto", ["http1", "http2"])
def test_a_stream_follows_an_upload_from_starting_to_done(make_server, proto, workers):
    server = make_server(config(workers))
    if workers > 1:
        wait_for_workers(server, workers)
    pid = IDS[0]
    watch = WATCHES[proto](server, pid)
    try:
        assert watch.wait(lambda a: True) == [{"state": "starting"}]
        up = SlowUpload(server.port, "/sink.cgi", size=30000, pid=pid)
        for _ in range(2):
            up.send(10000)
            answers = watch.wait(lambda a: a.get("received") == up.sent)
            assert counts(answers[-1]) == {"state": "uploading", "received": up.sent,
                                           "size": 30000}
        up.send(10000)
        assert up.response()[0] == 200
        up.close()
        events = watch.ended()
        assert_wire_format(events)
        answers = progress(events)
        assert answers[-1] == {"state": "done", "received": 30000, "size": 30000}
        # every event is an answer a poll could give: never ahead, in order
        received = [a.get("received", 0) for a in answers]
        assert received == sorted(received)
        assert answers[0] == {"state": "starting"}
        # the events each differ from the one before (only changes are sent)
        assert all(x != y for x, y in zip(answers, answers[1:]))
    finally:
        watch.close()


@pytest.mark.parametrize("workers", [1, 4])
@pytest.mark.parametrize("proto", ["http1", "http2"])
def test_a_stream_ends_with_the_413_of_a_too_large_upload(make_server, proto, workers):
    server = make_server(config(workers, "server.max-request-size = 10\n"))
    if workers > 1:
        wait_for_workers(server, workers)
    pid = IDS[1]
    watch = WATCHES[proto](server, pid)
    try:
        watch.wait(lambda a: a == {"state": "starting"})
        up = SlowUpload(server.port, "/sink.cgi", size=20000, pid=pid)
        assert up.response()[0] == 413
        up.close()
        answers = progress(watch.ended())
        assert answers[-1] == {"state": "error", "status": 413}
    finally:
        watch.close()


def test_event_bytes_are_exactly_the_documented_ones(make_server):
    server = make_server(config(1, "upload-progress.remove-timeout = 30\n"))
    pid = IDS[2]
    up = SlowUpload(server.port, "/sink.cgi", size=5, pid=pid)
    up.send(5)
    assert up.response()[0] == 200
    up.close()
    s = H1Stream(server.port, "?X-Progress-ID=" + pid)
    try:
        while not s.ended:
            s.pump()
        poll = server.poll(pid)[1]
        assert s.data == b"event: progress\ndata: " + poll + b"\n\n"
        assert s.headers["x-accel-buffering"] == "no"
    finally:
        s.close()


@pytest.mark.parametrize("query,headers", [
    ("?X-Progress-ID=nothex", ()),
    ("", ()),
    ("?X-Progress-ID=%s&callback=1bad" % IDS[0], ()),
])
def test_bad_input_gets_the_same_400_as_a_poll(make_server, query, headers):
    server = make_server(config())
    poll_status, _, poll_body = server.request("GET", "/progress" + query)
    status, hdrs, body = server.request("GET", "/progress" + query,
                                        headers={"Accept": ACCEPT})
    assert (status, body) == (poll_status, poll_body) and status == 400
    assert hdrs["content-type"] == "application/json"


def test_a_callback_with_an_event_stream_is_a_400(make_server):
    server = make_server(config())
    status, hdrs, body = server.request(
        "GET", "/progress?X-Progress-ID=%s&callback=cb" % IDS[0], headers={"Accept": ACCEPT})
    assert status == 400
    assert json.loads(body) == {
        "error": "callback and event stream: JSONP cannot be streamed; drop one"}


def test_head_with_event_stream_is_answered_as_a_poll(make_server):
    server = make_server(config())
    status, hdrs, body = server.request("HEAD", "/progress?X-Progress-ID=" + IDS[0],
                                        headers={"Accept": ACCEPT})
    assert status == 200 and hdrs["content-type"] == "application/json" and body == b""


def open_h1(server, pid):
    return H1Stream(server.port, "?X-Progress-ID=" + pid)


def spread_over_workers(server, streams, pid):
    """Opens the last stream again (with id pid) until the streams are held
    by more than one worker, so that no worker holds them all: a refusal
    then comes from a count they share.  Returns their workers."""
    def held():
        owners = {serving_pid(server, s.sock) for s in streams}
        if len(owners) > 1:
            return owners
        streams.pop().close()
        streams.append(open_once_admitted(server, pid, "a closed stream's place"))
        return None
    return wait_until(held, what="streams held by two workers")


def open_once_admitted(server, pid, why):
    """Opens streams until one is not refused (503): a freed place takes
    lighttpd a moment to notice."""
    deadline = time.monotonic() + 10
    while True:
        s = open_h1(server, pid)
        if s.status == 200:
            return s
        s.close()
        assert time.monotonic() < deadline, why
        time.sleep(0.05)


@pytest.mark.parametrize("workers", [1, 4])
def test_max_streams_is_one_count_for_the_server_and_a_client_gone_frees_its_stream(
        make_server, workers):
    server = make_server(config(workers, "upload-progress.max-streams = 3\n"))
    if workers > 1:
        wait_for_workers(server, workers)
    streams = [open_h1(server, IDS[i]) for i in range(3)]
    try:
        assert [s.status for s in streams] == [200, 200, 200]
        if workers > 1:
            # spread over the workers (none holds 3), yet counted together
            spread_over_workers(server, streams, IDS[2])
        for _ in range(3):  # whichever worker takes the connection
            refused = open_h1(server, IDS[3])
            assert refused.status == 503
            assert refused.headers["retry-after"] == "5"
            assert refused.headers["content-type"] == "application/json"
            refused.close()
        assert ("upload-progress: 3 event streams at once (upload-progress.max-streams); "
                "more are refused with 503") in server.error_log()
        # a client that goes away frees its stream at once
        streams.pop().close()
        streams.append(open_once_admitted(server, IDS[4], "the stream of a client gone stayed"))
    finally:
        for s in streams:
            s.close()


def test_an_http2_stream_reset_frees_its_stream(make_server):
    server = make_server(config(1, "upload-progress.max-streams = 1\n"))
    conn = H2Streams(server.port)
    try:
        first = H2Watch(server, IDS[0], conn)
        status, _ = conn.client.get("/progress?X-Progress-ID=" + IDS[1],
                                       [("accept", ACCEPT)])
        assert status == 503
        conn.client.reset(first.sid)
        deadline = time.monotonic() + 10
        while True:
            sid = conn.open("?X-Progress-ID=" + IDS[1])
            st = conn.client.streams[sid]
            while st["status"] is None:
                conn.client.pump()
            if st["status"] == 200:
                break
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        conn.close()


def test_many_streams_multiplexed_on_one_http2_connection(make_server):
    server = make_server(config(1))
    conn = H2Streams(server.port)
    try:
        watches = {pid: H2Watch(server, pid, conn) for pid in IDS[:6]}
        uploads = {pid: SlowUpload(server.port, "/sink.cgi", size=2000 + i, pid=pid)
                   for i, pid in enumerate(IDS[:6])}
        for pid, up in uploads.items():
            up.send(1000)
        for pid, watch in watches.items():
            watch.wait(lambda a: a.get("received") == 1000)
        for i, (pid, up) in enumerate(uploads.items()):
            up.send(1000 + i)
            assert up.response()[0] == 200
            up.close()
        for i, (pid, watch) in enumerate(watches.items()):
            assert progress(watch.ended())[-1] == {
                "state": "done", "received": 2000 + i, "size": 2000 + i}
    finally:
        conn.close()


def test_a_never_begun_id_ends_after_the_remove_timeout(make_server):
    server = make_server(config(1, "upload-progress.remove-timeout = 1\n"))
    s = H1Stream(server.port, "?X-Progress-ID=" + IDS[5])
    try:
        while not s.ended:
            s.pump()
        assert s.events == [("progress", '{"state":"starting"}'),
                            ("timeout", '{"state":"starting"}')]
    finally:
        s.close()


def test_a_stream_of_a_non_owner_worker_follows_the_shared_table(make_server):
    """Four workers: streams opened until one lands on a worker that does not
    serve the upload; it still sees every piece exactly, from the table."""
    server = make_server(config(4, "upload-progress.publish-interval = 10\n"))
    wait_for_workers(server, 4)
    pid = IDS[6]
    up = SlowUpload(server.port, "/sink.cgi", size=40000, pid=pid)
    owner = serving_pid(server, up.sock)
    watches = []

    def on_another_worker():
        watches.append(H1Stream(server.port, "?X-Progress-ID=" + pid))
        return serving_pid(server, watches[-1].sock) != owner
    try:
        wait_until(on_another_worker, what="a stream on a worker that does not serve the upload")
        w = H1Watch(server, pid, watches[-1])
        for _ in range(3):
            up.send(10000)
            w.wait(lambda a: a.get("received") == up.sent)
        up.send(10000)
        assert up.response()[0] == 200
        assert progress(w.ended())[-1] == {"state": "done", "received": 40000,
                                           "size": 40000}
    finally:
        up.close()
        for s in watches:
            s.close()


def test_polls_answered_by_other_workers_follow_each_piece(make_server):
    """With publish-interval 10 ms, a poll answered by a worker that does not
    serve the upload reaches each piece's exact count, piece after piece."""
    server = make_server(config(4, "upload-progress.publish-interval = 10\n"))
    wait_for_workers(server, 4)
    pid = IDS[7]
    up = SlowUpload(server.port, "/sink.cgi", size=50000, pid=pid)
    owner = serving_pid(server, up.sock)
    others = 0
    try:
        for _ in range(4):
            up.send(10000)
            deadline = time.monotonic() + 10
            while True:
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                conn.connect()
                worker = serving_pid(server, conn.sock)
                conn.request("GET", "/progress?X-Progress-ID=" + pid)
                answer = json.loads(conn.getresponse().read())
                conn.close()
                assert answer.get("received", 0) <= up.sent
                if worker != owner and answer.get("received") == up.sent:
                    others += 1
                    break
                assert time.monotonic() < deadline
        up.send(10000)
        assert up.response()[0] == 200
    finally:
        up.close()
    assert others == 4


@pytest.mark.parametrize("key,value,message", [
    ("publish-interval", 5, "upload-progress.publish-interval must be from 10 to 1000 "
                            "milliseconds, not 5"),
    ("push-interval", 0, "upload-progress.push-interval must be from 10 to 60000 "
                         "milliseconds, not 0"),
    ("max-streams", 0, "upload-progress.max-streams must be from 1 to 1048576, not 0"),
])
def test_bad_values_stop_lighttpd_with_a_message(tmp_path, key, value, message):
    server = Lighttpd(tmp_path, config(1, "upload-progress.%s = %d\n" % (key, value)))
    code, out = server.run_to_exit()
    assert code != 0 and message in out, out


def test_conditional_push_key_is_refused(tmp_path):
    server = Lighttpd(tmp_path, config(1, '$HTTP["host"] == "x" {\n'
                                          "upload-progress.push-interval = 100\n}\n"))
    code, out = server.run_to_exit()
    assert code != 0
    assert ("upload-progress.push-interval is one for the server: set it globally, "
            "not in a conditional") in out, out


def test_without_accept_a_poll_is_one_answer_as_before(make_server):
    server = make_server(config())
    status, hdrs, body = server.request("GET", "/progress?X-Progress-ID=" + IDS[0],
                                        headers={"Accept": "application/json"})
    assert (status, hdrs["content-type"], body) == (200, "application/json",
                                                     b'{"state":"starting"}')


def test_an_idle_stream_gets_a_keep_alive_comment_15_seconds_after_its_last_event(
        make_server):
    server = make_server(config(1, "upload-progress.remove-timeout = 60\n"))
    asked = time.monotonic()
    s = H1Stream(server.port, "?X-Progress-ID=" + IDS[3])
    s.sock.settimeout(60)
    try:
        while len(s.events) < 2:
            s.pump()
        idle = time.monotonic() - asked
        assert s.events == [("progress", '{"state":"starting"}'), ("comment", "keep-alive")]
        assert s.data == b'event: progress\ndata: {"state":"starting"}\n\n: keep-alive\n\n'
        # not before 15 s (less a second for the server's clock, read once
        # a turn of its event loop); a loaded machine can only make it later
        assert idle >= 14, "a keep-alive comment after %.1f s" % idle
        assert not s.ended
    finally:
        s.close()


def test_a_slow_reader_holds_a_few_kib_and_gets_the_latest_answer(make_server):
    """An HTTP/2 client that grants no window reads nothing: its events wait
    in lighttpd's write queue, capped, while other requests are served; once
    it reads, it gets fewer events than there were answers, the last being
    the final one."""
    server = make_server(config(1, "upload-progress.push-interval = 10\n"))
    conn = H2Streams(server.port)
    conn.client.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    conn.client.flush()
    pid = IDS[4]
    pieces = 120
    try:
        sid = conn.open("?X-Progress-ID=" + pid)
        st = conn.client.streams[sid]
        while st["status"] is None:
            conn.client.pump()
        up = SlowUpload(server.port, "/sink.cgi", size=pieces, pid=pid)
        for _ in range(pieces - 1):
            up.send(1)
            # other requests are served meanwhile, and see each byte
            server.wait_for(pid, lambda a: a.get("received") == up.sent)
            time.sleep(0.012)
        up.send(1)
        assert up.response()[0] == 200
        up.close()
        assert st["body"] == b""
        conn.client.conn.update_settings(
            {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20})
        conn.client.flush()
        while not st["ended"]:
            conn.client.pump()
        answers = progress(conn.events(sid))
        assert answers[-1] == {"state": "done", "received": pieces, "size": pieces}
        event_bytes = len(st["body"])
        # uncapped, every one of the pieces would have been an event
        assert len(answers) < pieces // 2, len(answers)
        assert event_bytes <= 4096 + 2 * 256, event_bytes
    finally:
        conn.close()


def poll_or_none(server, pid):
    """A poll's answer, or None while the server restarts."""
    try:
        return server.poll(pid)[0]
    except (OSError, http.client.HTTPException):
        return None


@pytest.mark.parametrize("workers", [1, 4])
def test_a_graceful_restart_ends_the_streams_without_a_final_event(make_server, workers):
    """lighttpd waits for the requests in flight before it restarts: the
    streams end at once (EventSource connects again, to the new server)."""
    server = make_server(config(workers, "upload-progress.remove-timeout = 600\n"
                                         "server.feature-flags = "
                                         '( "server.graceful-shutdown-timeout" => 60 )\n'))
    if workers > 1:
        wait_for_workers(server, workers)
    streams = [H1Stream(server.port, "?X-Progress-ID=" + pid) for pid in IDS[:3]]
    try:
        os.kill(server.proc.pid, signal.SIGUSR1)
        for s in streams:
            while not s.ended:
                s.pump()
            assert s.events == [("progress", '{"state":"starting"}')]
        # then the new server answers (polls wait in the listen queue)
        wait_for(lambda: poll_or_none(server, IDS[0]),
                 lambda a: a == {"state": "starting"}, timeout=40)
        assert server.proc.poll() is None
    finally:
        for s in streams:
            s.close()


def test_an_upload_and_its_stream_share_one_http2_connection(make_server):
    server = make_server(config(1))
    conn = H2Streams(server.port)
    pid = IDS[5]
    try:
        watch = H2Watch(server, pid, conn)
        watch.wait(lambda a: a == {"state": "starting"})
        up = conn.client.upload("/sink.cgi", pid=pid, size=30000)
        conn.client.send(up, 10000)
        watch.wait(lambda a: a.get("received") == 10000)
        conn.client.send(up, 20000, end=True)
        assert conn.client.response(up)[0] == 200
        assert progress(watch.ended())[-1] == {"state": "done", "received": 30000,
                                               "size": 30000}
    finally:
        conn.close()


def test_debug_logs_each_stream_as_it_starts(make_server):
    server = make_server(config(1, 'upload-progress.debug = "enable"\n'))
    s = H1Stream(server.port, "?X-Progress-ID=" + IDS[0])
    try:
        assert s.status == 200
        assert "upload-progress: event stream %s" % IDS[0] in server.error_log()
    finally:
        s.close()


def test_the_streams_of_a_worker_that_dies_are_given_back(make_server):
    server = make_server(config(4, "upload-progress.max-streams = 2\n"))
    wait_for_workers(server, 4)
    streams = [open_h1(server, IDS[i]) for i in range(2)]
    try:
        assert [s.status for s in streams] == [200, 200]
        spread_over_workers(server, streams, IDS[1])   # one stream a worker
        refused = open_h1(server, IDS[2])
        assert refused.status == 503
        refused.close()
        server.kill_worker(serving_pid(server, streams[0].sock))
        # the watcher sees the worker go and gives its stream back, only its
        streams.append(open_once_admitted(server, IDS[3],
                                          "the dead worker's streams still count"))
        refused = open_h1(server, IDS[4])
        assert refused.status == 503, "the living worker's stream no longer counts"
        refused.close()
    finally:
        for s in streams:
            s.close()
