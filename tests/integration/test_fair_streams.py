"""Fair event streams (issue 18): one client's share of the streams
(upload-progress.max-streams-per-client, per remote address after
mod_extforward, all workers together), a stream whose timer cannot be
made (its own 503 and log line, not "too many streams"), and a worker
beyond those the shared count has places for (it refuses its streams:
counted in the total alone, they would stay counted after its death)."""
import json
import time

import pytest

from lighty import Lighttpd, in_root, module_path, serving_pid
from test_events import ACCEPT, H1Stream, H2Streams, wait_for_workers

ID = "5eed0000000000000000000000000001"
CLIENT_STREAMS = b'{"error":"too many event streams from this client: poll, or retry later"}'
TOO_MANY = b'{"error":"too many event streams: poll, or retry later"}'
NO_TIMER = b'{"error":"event streams unavailable: the server cannot make their timer; poll"}'
FORWARDED = """
extforward.forwarder = ( "127.0.0.1" => "trust" )
extforward.headers = ( "X-Forwarded-For" )
"""


def config(per_client, extra=""):
    return ('upload-progress.progress-url = "/progress"\n'
            "upload-progress.max-streams-per-client = %d\n" % per_client) + extra


def stream(server, *headers):
    return H1Stream(server.port, "?X-Progress-ID=" + ID, headers)


def refused(s):
    """Whether s was answered as one client's stream too many."""
    return (s.status == 429 and s.headers["retry-after"] == "5"
            and s.headers["content-type"] == "application/json" and s.body == CLIENT_STREAMS)


def test_one_client_holds_at_most_its_share(make_server):
    server = make_server(config(3))
    held = [stream(server) for _ in range(3)]
    assert [s.status for s in held] == [200] * 3
    extra = stream(server)
    assert refused(extra), (extra.status, extra.headers, extra.body)
    extra.close()
    assert ("127.0.0.1 holds 3 event streams "
            "(upload-progress.max-streams-per-client); more of its streams are "
            "refused with 429") in server.error_log()
    # polls are not streams: the client still polls
    assert server.poll(ID)[0] == {"state": "starting"}
    # a stream that ends gives its place back
    held.pop().close()
    held.append(stream_until_admitted(server))
    for s in held:
        s.close()


def stream_until_admitted(server, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        s = stream(server)
        if s.status == 200:
            return s
        assert refused(s) and time.monotonic() < deadline
        s.close()
        time.sleep(0.05)


def test_the_share_holds_for_all_workers_together(make_server):
    server = make_server(config(3, "server.max-worker = 4\n"))
    wait_for_workers(server, 4)
    # each stream on a connection of its own: the workers take them in turn
    held = [stream(server) for _ in range(3)]
    assert [s.status for s in held] == [200] * 3
    owners = {serving_pid(server, s.sock) for s in held}
    for _ in range(40):   # refused by whichever worker takes it
        extra = stream(server)
        assert refused(extra), (extra.status, extra.body)
        owners.add(serving_pid(server, extra.sock))
        extra.close()
        if len(owners) > 2:
            break
    if len(owners) == 1:
        pytest.skip("the kernel gave every connection to one worker")
    # a worker's death gives its client's places back: as many as it held
    victim = serving_pid(server, held[0].sock)
    lost = [s for s in held if serving_pid(server, s.sock) == victim]
    server.kill_worker(victim)
    held = [s for s in held if s not in lost] + [
        stream_until_admitted(server) for _ in lost]
    assert refused(stream(server))
    for s in held + lost:
        s.close()


@pytest.mark.lighttpd_interface
def test_the_client_is_the_address_after_mod_extforward(make_server):
    server = make_server(config(2, FORWARDED),
                         modules=("mod_extforward", "mod_uploadprogress", "mod_cgi"))
    first = [stream(server, ("X-Forwarded-For", "192.0.2.1")) for _ in range(2)]
    assert [s.status for s in first] == [200, 200]
    assert refused(stream(server, ("X-Forwarded-For", "192.0.2.1")))
    # another address behind the same proxy has its own share
    other = [stream(server, ("X-Forwarded-For", "192.0.2.2")) for _ in range(2)]
    assert [s.status for s in other] == [200, 200]
    # an IPv6 client is its /64
    v6 = stream(server, ("X-Forwarded-For", "2001:db8:1:2::a"))
    v6b = stream(server, ("X-Forwarded-For", "2001:db8:1:2::b"))
    assert (v6.status, v6b.status) == (200, 200)
    assert refused(stream(server, ("X-Forwarded-For", "2001:db8:1:2:ffff::1")))
    assert stream(server, ("X-Forwarded-For", "2001:db8:1:3::a")).status == 200
    assert "192.0.2.1 holds 2 event streams" in server.error_log()


@pytest.mark.lighttpd_interface
def test_streams_multiplexed_on_http2_count_for_their_client(make_server):
    server = make_server(config(4))
    conn = H2Streams(server.port)
    sids = [conn.open("?X-Progress-ID=" + ID) for _ in range(6)]
    streams = conn.client.streams
    deadline = time.monotonic() + 10
    while any(streams[sid]["status"] is None for sid in sids):
        assert time.monotonic() < deadline
        conn.client.pump()
    assert [streams[sid]["status"] for sid in sids] == [200] * 4 + [429] * 2
    for sid in sids[4:]:
        while not streams[sid]["ended"]:
            conn.client.pump()
        assert streams[sid]["body"] == CLIENT_STREAMS
    conn.close()


def test_a_bad_share_stops_lighttpd(tmp_path):
    server = Lighttpd(tmp_path, config(0))
    code, out = server.run_to_exit()
    assert code != 0
    assert ("upload-progress.max-streams-per-client must be from 1 to 1048576, not 0"
            in out), out


class NoTimerLighttpd(Lighttpd):
    """lighttpd whose timerfd_create always fails (tests/shim/timerfd_shim.c)."""

    def env(self):
        env = super().env()
        shim = module_path().parent / "timerfd_shim.so"
        assert shim.exists(), "build the timerfd_shim target: %s" % shim
        env["LD_PRELOAD"] = ":".join(p for p in (env.get("LD_PRELOAD"), str(in_root(shim))) if p)
        return env


@pytest.fixture
def no_timer_server(tmp_path):
    server = NoTimerLighttpd(tmp_path, config(64))
    server.start()
    yield server
    out = server.stop()
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        assert marker not in out, out


def test_a_stream_without_a_timer_gets_its_own_503(no_timer_server):
    server = no_timer_server
    status, headers, body = server.request("GET", "/progress?X-Progress-ID=" + ID,
                                           headers={"Accept": ACCEPT})
    assert (status, headers["content-type"], body) == (503, "application/json", NO_TIMER)
    assert "retry-after" not in headers     # (polls work now; nothing to wait for)
    log = server.error_log()
    assert ("cannot make the timer of event streams (timerfd_create: Too many open "
            "files); streams are refused with 503") in log
    assert "upload-progress.max-streams" not in log
    # polls still answer
    assert json.loads(server.request("GET", "/progress?X-Progress-ID=" + ID)[2]) == {
        "state": "starting"}


def test_a_worker_beyond_the_places_of_the_count_refuses_its_streams(make_server, monkeypatch):
    # the module built with places for two workers' streams, three workers
    monkeypatch.setenv("UPLOADPROGRESS_MODULE", str(
        module_path().parent / "mod_uploadprogress_two_stream_workers.so"))
    server = make_server(config(64, "server.max-worker = 3\n"))
    wait_for_workers(server, 3)
    held, admitted_by, refused_by = [], set(), set()
    for _ in range(60):   # each on a connection of its own: the workers take turns
        s = stream(server)
        pid = serving_pid(server, s.sock)
        if s.status == 200:
            held.append(s)
            admitted_by.add(pid)
        else:
            assert (s.status, s.headers["retry-after"], s.body) == (503, "5", TOO_MANY)
            refused_by.add(pid)
            s.close()
        if len(admitted_by) == 2 and refused_by:
            break
    if len(admitted_by | refused_by) < 3:
        pytest.skip("the kernel gave every connection to fewer than three workers")
    assert len(admitted_by) == 2 and refused_by and not admitted_by & refused_by, (
        admitted_by, refused_by)
    assert ("event streams are counted for 2 workers at most (server.max-worker is "
            "more); this worker's streams are refused with 503") in server.error_log()
    # a slotted worker's death gives its place to the next worker to stream
    victim = serving_pid(server, held[0].sock)
    server.kill_worker(victim)
    for s in held:
        s.close()
    wait_for_workers(server, 3)
    deadline = time.monotonic() + 10
    while True:
        s = stream(server)
        pid = serving_pid(server, s.sock)
        s.close()
        if s.status == 200 and pid not in admitted_by:
            break
        assert time.monotonic() < deadline, "no third worker got the free place"
