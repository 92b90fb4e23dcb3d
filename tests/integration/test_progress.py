"""The module end to end, on Debian's real lighttpd with a body-reading CGI."""
import json
import re
import socket
import time

import pytest

from lighty import ID, SlowUpload, abort_midway, counts, piecewise, read_to_close, wait_until

pytestmark = pytest.mark.lighttpd_interface   # every test here (tests/README.md)

ID2 = "fedcba9876543210FEDCBA9876543210"

BASIC = """
upload-progress.progress-url = "/progress"
"""


def test_unknown_id_is_starting(make_server):
    server = make_server(BASIC)
    assert server.poll(ID)[1] == b'{"state":"starting"}'
    assert server.poll(ID, via="header")[1] == b'{"state":"starting"}'


def test_poll_answer_headers_stop_caches(make_server):
    """no-store stops every HTTP/1.1 cache; an HTTP/1.0 cache, which knows
    no Cache-Control and asks in HTTP/1.0, gets a date in the past too."""
    server = make_server(BASIC)
    status, headers, body = server.request("GET", "/progress?X-Progress-ID=" + ID)
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert headers["cache-control"] == "no-store"
    assert "expires" not in headers
    assert headers["content-length"] == str(len(body))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(("GET /progress?X-Progress-ID=%s HTTP/1.0\r\n\r\n" % ID).encode())
        head, body = read_to_close(s)
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.0 200 OK"
    assert "Cache-Control: no-store" in lines
    assert "Expires: Thu, 19 Nov 1981 08:52:00 GMT" in lines
    assert body == b'{"state":"starting"}'


def test_a_poll_is_never_served_in_byte_ranges(make_server):
    """An answer changes from one poll to the next: a Range request gets it
    whole (200), and no answer offers ranges (no Accept-Ranges: bytes)."""
    server = make_server(BASIC)
    status, headers, body = server.request("GET", "/progress?X-Progress-ID=" + ID,
                                           headers={"Range": "bytes=0-4"})
    assert (status, body) == (200, b'{"state":"starting"}')
    assert "accept-ranges" not in headers
    # a refusal too
    status, headers, _ = server.request("GET", "/progress", headers={"Range": "bytes=0-4"})
    assert status == 400 and "accept-ranges" not in headers


@pytest.mark.parametrize("via", ["header", "query"])
def test_received_is_exact_after_each_piece(make_server, via):
    server = make_server(BASIC)
    pieces = [1000, 65536, 70000, 1, 300000]
    status, body = piecewise(server, ID, pieces, via=via)
    assert status == 200
    assert b"read %d bytes" % sum(pieces) in body
    answer = server.wait_for(ID, lambda a: a["state"] == "done")[-1]
    assert answer == {"state": "done", "received": sum(pieces), "size": sum(pieces)}
    assert server.poll(ID)[1] == b'{"state":"done","received":436537,"size":436537}'


def test_poll_with_the_id_in_a_header(make_server):
    server = make_server(BASIC)
    status, _ = piecewise(server, ID, [5000, 5000], poll_via="header")
    assert status == 200
    assert server.poll(ID, via="header")[0]["state"] == "done"


def test_query_is_ignored_for_the_url_match_and_other_parameters_too(make_server):
    server = make_server(BASIC)
    piecewise(server, ID, [100])
    for path in ("/progress?v=cb&X-Progress-ID=%s&_=1" % ID,
                 "/progress?_=99&x-progress-id=%s" % ID.upper()):
        status, _, body = server.request("GET", path)
        assert status == 200
        assert json.loads(body) == {"state": "done", "received": 100, "size": 100}
    status, _, _ = server.request("GET", "/progress/?X-Progress-ID=" + ID)
    assert status == 404


def test_uppercase_and_lowercase_ids_are_one_id(make_server):
    server = make_server(BASIC)
    piecewise(server, ID2, [10, 20])
    assert server.poll(ID2.lower())[0]["state"] == "done"
    assert server.poll(ID2.upper())[0]["state"] == "done"


def test_json_key_order_and_strictness(make_server):
    server = make_server(BASIC)
    up = SlowUpload(server.port, "/sink.cgi", size=5000, pid=ID)
    up.send(1234)
    server.wait_for(ID, lambda a: a.get("received") == 1234)
    _, raw = server.poll(ID)
    assert re.fullmatch(rb'\{"state":"uploading","received":1234,"size":5000,'
                        rb'"speed":\d+(,"eta":\d+)?\}', raw), raw
    up.send(3766)
    assert up.response()[0] == 200
    up.close()


def test_done_stays_for_remove_timeout_then_starting(make_server):
    server = make_server(BASIC + 'upload-progress.remove-timeout = 2\n'
                         'upload-progress.debug = "enable"\n')
    before_the_end = time.monotonic()
    piecewise(server, ID, [4096])
    seen = []   # (seconds since before the upload ended, at most; answer)

    def gone():
        answer = server.poll(ID)[0]
        seen.append((time.monotonic() - before_the_end, answer))
        return answer == {"state": "starting"}
    wait_until(gone, what="the entry's removal", interval=0.1)
    # done until remove-timeout: whole seconds, so at least 1 s after its end
    assert all(answer["state"] == "done" for after, answer in seen if after < 1.0), seen
    assert all(answer["state"] == "done" for _, answer in seen[:-1]), seen
    # the once-a-second sweep frees the entry even with no request coming
    wait_until(lambda: "swept 1 finished uploads; 0 entries left" in server.error_log(),
               what="the sweep's line")


def test_an_id_reused_after_its_upload_finished_starts_fresh(make_server):
    server = make_server(BASIC)
    piecewise(server, ID, [3000])
    assert server.poll(ID)[0] == {"state": "done", "received": 3000, "size": 3000}
    up = SlowUpload(server.port, "/sink.cgi", size=777, pid=ID)
    up.send(7)
    server.wait_for(ID, lambda a: counts(a) == {"state": "uploading", "received": 7, "size": 777})
    up.send(770)
    assert up.response()[0] == 200
    up.close()
    assert server.poll(ID)[0] == {"state": "done", "received": 777, "size": 777}


REFUSE = BASIC + 'server.max-request-size = 1\n'   # KiB


@pytest.mark.parametrize("via", ["header", "query"])
def test_413_for_content_length_over_the_limit(make_server, via):
    server = make_server(REFUSE)
    up = SlowUpload(server.port, "/sink.cgi", size=5000, pid=ID, via=via)
    status, _ = up.response()
    up.close()
    assert status == 413
    assert server.poll(ID)[1] == b'{"state":"error","status":413}'


def test_413_for_a_chunked_body_crossing_the_limit(make_server):
    server = make_server(REFUSE)
    up = SlowUpload(server.port, "/sink.cgi", pid=ID, chunked=True)
    up.send(600)
    server.wait_for(ID, lambda a: a.get("received") == 600)
    assert re.fullmatch(rb'\{"state":"uploading","received":600,"speed":\d+\}',
                        server.poll(ID)[1])
    up.send(600)
    status, _ = up.response()
    up.close()
    assert status == 413
    server.wait_for(ID, lambda a: a["state"] == "error")
    assert server.poll(ID)[1] == b'{"state":"error","status":413}'


def test_a_body_under_the_limit_is_done(make_server):
    server = make_server(REFUSE)
    status, _ = piecewise(server, ID, [1024])
    assert status == 200
    assert server.poll(ID)[0] == {"state": "done", "received": 1024, "size": 1024}


def test_other_final_status_of_400_or_more_is_an_error(make_server):
    # Not piecewise: fail.cgi answers as soon as the body is in, so a poll
    # after the last byte may already see the outcome (it has no counts).
    server = make_server(BASIC)
    up = SlowUpload(server.port, "/fail.cgi", size=2000, pid=ID)
    up.send(2000)
    status, _ = up.response()
    up.close()
    assert status == 500
    assert server.poll(ID)[1] == b'{"state":"error","status":500}'


def test_an_aborted_upload_is_an_error_with_its_counts(make_server):
    server = make_server(BASIC)
    abort_midway(server, "/sink.cgi", ID, 100000, 30000)
    assert server.poll(ID)[1] == b'{"state":"error","status":400,"received":30000,"size":100000}'


@pytest.mark.parametrize("query, what", [
    ("", "missing"),
    ("?X-Progress-ID=", "malformed"),
    ("?X-Progress-ID=0123456789abcdef0123456789abcde", "malformed"),
    ("?X-Progress-ID=0123456789abcdef0123456789abcdef0", "malformed"),
    ("?X-Progress-ID=0123456789abcdef0123456789abcdeg", "malformed"),
    ("?X-Progress-ID=%2023456789abcdef0123456789abcdef", "malformed"),
    ("?X-Progress-ID=<script>", "malformed"),
    ("?callback=cb", "missing"),
    ("?X-Progress-IDs=" + ID, "missing"),
])
def test_a_missing_or_malformed_id_is_a_400_with_a_json_reason(make_server, query, what):
    server = make_server(BASIC)
    status, headers, body = server.request("GET", "/progress" + query)
    assert status == 400
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"].startswith(what)


def test_a_malformed_header_id_wins_over_a_good_query_id(make_server):
    server = make_server(BASIC)
    status, _, body = server.request("GET", "/progress?X-Progress-ID=" + ID,
                                     headers={"X-Progress-ID": "nothex"})
    assert status == 400
    assert json.loads(body)["error"].startswith("malformed")


def test_an_empty_header_id_is_no_header_so_the_query_id_counts(make_server):
    # lighttpd drops request headers with empty values (doc: The progress id)
    server = make_server(BASIC)
    status, _, body = server.request("GET", "/progress?X-Progress-ID=" + ID,
                                     headers={"X-Progress-ID": ""})
    assert (status, json.loads(body)) == (200, {"state": "starting"})
    status, _, body = server.request("GET", "/progress", headers={"X-Progress-ID": ""})
    assert status == 400
    assert json.loads(body)["error"].startswith("missing id")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
def test_other_methods_are_405_with_allow(make_server, method):
    server = make_server(BASIC)
    status, headers, body = server.request(method, "/progress?X-Progress-ID=" + ID,
                                           body=b"x" * 10)
    assert status == 405
    assert headers["allow"] == "GET, HEAD"
    assert json.loads(body)["error"].startswith("method not allowed")


def test_head_answers_headers_only(make_server):
    server = make_server(BASIC)
    piecewise(server, ID, [10])
    status, headers, body = server.request("HEAD", "/progress?X-Progress-ID=" + ID)
    assert status == 200
    assert body == b""
    assert headers["content-type"] == "application/json"
    assert headers["content-length"] == str(len(b'{"state":"done","received":10,"size":10}'))


def test_an_upload_with_a_malformed_id_is_served_but_not_tracked(make_server):
    server = make_server(BASIC + 'upload-progress.debug = "enable"\n')
    for malformed in ("not-an-id", ID + "0", ID[:-1]):
        status, _, body = server.request("POST", "/sink.cgi", body=b"y" * 100,
                                         headers={"X-Progress-ID": malformed})
        assert status == 200 and b"read 100 bytes" in body
    # nothing under the id it resembles, and nothing tracked at all
    assert server.poll(ID)[0] == {"state": "starting"}
    log = server.error_log()
    assert log.count("malformed X-Progress-ID; upload not tracked") == 3, log
    assert "upload-progress: tracking" not in log, log


def test_debug_logs_track_finish_poll_and_sweep_with_the_id(make_server):
    server = make_server(BASIC + 'upload-progress.debug = "enable"\n'
                         'upload-progress.remove-timeout = 0\n')
    # (two pieces: the poll after the first one sees the upload in flight,
    # whereas after a whole body the backend may have answered already)
    piecewise(server, ID, [250, 250])
    wait_until(lambda: "swept" in server.error_log(), what="the sweep's line")
    log = server.error_log()
    assert re.search(r"\(upload_tracking\.c\.\d+\) upload-progress: tracking %s size 500" % ID, log)
    assert "upload-progress: finished %s state done status 200 received 500 size 500" % ID in log
    assert "upload-progress: poll %s -> {\"state\":\"uploading\"" % ID in log
    assert "upload-progress: swept 1 finished uploads; 0 entries left" in log


def test_no_debug_lines_by_default(make_server):
    server = make_server(BASIC)
    piecewise(server, ID, [500])
    assert "upload-progress" not in server.error_log()


def test_without_a_progress_url_the_module_does_nothing(make_server):
    server = make_server('upload-progress.debug = "enable"\n')
    status, _, _ = server.request("GET", "/progress?X-Progress-ID=" + ID)
    assert status == 404
    status, _, body = server.request("POST", "/sink.cgi", body=b"z" * 10,
                                     headers={"X-Progress-ID": ID})
    assert status == 200 and b"read 10 bytes" in body
    assert "upload-progress" not in server.error_log()
    # off for the upload's URL, on for the poll's: the poll finds nothing
    server = make_server('upload-progress.debug = "enable"\n'
                         '$HTTP["url"] == "/progress" { ' + BASIC + '}\n')
    status, _, body = server.request("POST", "/sink.cgi", body=b"z" * 10,
                                     headers={"X-Progress-ID": ID})
    assert status == 200 and b"read 10 bytes" in body
    assert server.poll(ID)[0] == {"state": "starting"}
    assert "upload-progress: tracking" not in server.error_log()


def test_keys_work_in_conditionals(make_server):
    server = make_server(BASIC + """
$HTTP["host"] == "uploads.example" {
    upload-progress.progress-url = "/up/status"
    upload-progress.remove-timeout = 0
    upload-progress.debug = "enable"
}
$HTTP["host"] == "off.example" {
    upload-progress.progress-url = ""
}
""")
    status, _, body = server.request("GET", "/up/status?X-Progress-ID=" + ID,
                                     headers={"Host": "uploads.example"})
    assert status == 200 and json.loads(body) == {"state": "starting"}
    status, _, _ = server.request("GET", "/up/status?X-Progress-ID=" + ID)
    assert status == 404
    status, _, _ = server.request("GET", "/progress?X-Progress-ID=" + ID,
                                  headers={"Host": "off.example"})
    assert status == 404
    status, _, _ = server.request("POST", "/sink.cgi", body=b"q" * 10,
                                  headers={"Host": "uploads.example", "X-Progress-ID": ID})
    assert status == 200
    # tracked there (debug is on in that block only) ...
    assert "upload-progress: tracking %s size 10" % ID in server.error_log()
    # ... and with remove-timeout 0 in that block, gone at the next sweep
    # (once a second; the bound is for a loaded machine's stalls)
    server.wait_for(ID, lambda a: a["state"] == "starting", url="/up/status",
                    host="uploads.example", timeout=15)


@pytest.mark.parametrize("line, message", [
    ('upload-progress.progress-url = "progress"',
     "upload-progress.progress-url must be a URL path starting with '/'"),
    ('upload-progress.remove-timeout = "3000000000"',
     "upload-progress.remove-timeout must be a number of seconds from 0 to 2147483647"),
    ('upload-progress.remove-timeout = "-5"', "upload-progress.remove-timeout -5"),
    ('upload-progress.remove-timeout = "soon"', "upload-progress.remove-timeout"),
    ('upload-progress.debug = "maybe"', "upload-progress.debug"),
    ('$HTTP["host"] == "x" { upload-progress.progress-url = "p" }',
     "upload-progress.progress-url must be a URL path starting with '/'"),
])
def test_a_bad_value_stops_start_up_naming_the_key(tmp_path, line, message):
    from lighty import Lighttpd
    server = Lighttpd(tmp_path, line + "\n")
    code, out = server.run_to_exit()
    assert code != 0
    assert message in out, out
