"""Each kind of upload and what its id reports: empty and one-packet bodies,
an id given twice, duplicate ids, server.error-handler, mod_auth and
mod_access in front of the upload."""
import socket

import pytest

from lighty import ID, SlowUpload, abort_midway, counts, piecewise, raw_request, read_response

pytestmark = pytest.mark.lighttpd_interface   # every test here (tests/README.md)

ID2 = "fedcba9876543210fedcba9876543210"

BASIC = 'upload-progress.progress-url = "/progress"\n'


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_a_zero_byte_upload_is_done_with_size_0(make_server, method):
    server = make_server(BASIC)
    status, _, body = server.request(method, "/sink.cgi", body=b"",
                                     headers={"X-Progress-ID": ID})
    assert status == 200 and b"read 0 bytes" in body
    assert server.poll(ID)[1] == b'{"state":"done","received":0,"size":0}'


def test_a_one_packet_upload_is_done_with_its_size(make_server):
    server = make_server(BASIC)
    status, body = raw_request(server.port, (
        b"POST /sink.cgi?X-Progress-ID=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Length: 5\r\nConnection: close\r\n\r\nhello" % ID.encode()))
    assert status == 200 and b"read 5 bytes" in body
    assert server.poll(ID)[1] == b'{"state":"done","received":5,"size":5}'


def test_a_post_without_a_length_is_lighttpds_411(make_server):
    server = make_server(BASIC)
    status, _ = raw_request(server.port, (
        b"POST /sink.cgi HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Progress-ID: %s\r\n"
        b"Connection: close\r\n\r\n" % ID.encode()))
    assert status == 411
    assert server.poll(ID)[1] == b'{"state":"error","status":411}'


def test_an_upload_with_the_id_in_header_and_query_is_tracked_by_the_header(make_server):
    server = make_server(BASIC)
    status, _ = piecewise(server, ID, [3000, 4000], path="/sink.cgi?X-Progress-ID=" + ID2)
    assert status == 200
    assert server.poll(ID)[0] == {"state": "done", "received": 7000, "size": 7000}
    assert server.poll(ID2)[1] == b'{"state":"starting"}'
    # a poll with both is answered for the header's id too
    status, _, body = server.request("GET", "/progress?X-Progress-ID=" + ID2,
                                     headers={"X-Progress-ID": ID})
    assert status == 200 and body == b'{"state":"done","received":7000,"size":7000}'


def test_a_second_upload_with_an_id_in_flight_is_served_untracked_with_a_warning(make_server):
    server = make_server(BASIC)
    first = SlowUpload(server.port, "/sink.cgi", size=5000, pid=ID)
    first.send(1000)
    server.wait_for(ID, lambda a: a.get("received") == 1000)
    second = SlowUpload(server.port, "/sink.cgi", size=300, pid=ID, via="query")
    second.send(300)
    status, body = second.response()
    second.close()
    assert status == 200 and b"read 300 bytes" in body
    assert counts(server.poll(ID)[0]) == {"state": "uploading", "received": 1000, "size": 5000}
    assert ("upload-progress: id %s is in use by an upload in flight; this upload "
            "is served but not tracked" % ID) in server.error_log()
    first.send(4000)
    assert first.response()[0] == 200
    first.close()
    assert server.poll(ID)[1] == b'{"state":"done","received":5000,"size":5000}'


def test_an_id_whose_upload_failed_is_taken_over_by_the_next_upload(make_server):
    server = make_server(BASIC)
    assert abort_midway(server, "/sink.cgi", ID, 9000, 100)["state"] == "error"
    status, _ = piecewise(server, ID, [2000, 10])
    assert status == 200
    assert server.poll(ID)[1] == b'{"state":"done","received":2010,"size":2010}'
    assert "in use by an upload in flight" not in server.error_log()


ERROR_HANDLER = BASIC + 'server.max-request-size = 1\n'   # KiB


@pytest.mark.parametrize("handler, status, page", [
    ("/error.cgi", 413, b"error page for 413"),
    ("/errors.txt", 413, b"static error page"),
    # a CGI error handler that sends no Status: is sent with its own 200
    ("/sink.cgi", 200, b"read 0 bytes"),
])
@pytest.mark.parametrize("via", ["header", "query"])
def test_413_for_content_length_with_an_error_handler(make_server, handler, status, page, via):
    server = make_server(ERROR_HANDLER + 'server.error-handler = "%s"\n' % handler)
    (server.dir / "www" / "errors.txt").write_text("static error page\n")
    up = SlowUpload(server.port, "/sink.cgi", size=5000, pid=ID, via=via)
    got = up.response()
    up.close()
    assert got[0] == status and page in got[1]
    assert server.poll(ID)[1] == b'{"state":"error","status":413}'


def test_413_for_a_chunked_body_with_an_error_handler(make_server):
    server = make_server(ERROR_HANDLER + 'server.error-handler = "/error.cgi"\n')
    up = SlowUpload(server.port, "/sink.cgi", pid=ID, chunked=True)
    up.send(600)
    server.wait_for(ID, lambda a: a.get("received") == 600)
    up.send(600)
    status, body = up.response()
    up.close()
    assert status == 413 and b"error page for 413" in body
    answer = server.wait_for(ID, lambda a: a["state"] == "error")[-1]
    assert answer == {"state": "error", "status": 413}


@pytest.mark.parametrize("handler", [None, "/error.cgi"])
def test_404_with_or_without_an_error_handler(make_server, handler):
    server = make_server(BASIC + ('server.error-handler = "%s"\n' % handler
                                  if handler else ""))
    status, _, body = server.request("POST", "/missing.cgi", body=b"m" * 100,
                                     headers={"X-Progress-ID": ID})
    assert status == 404
    assert not handler or b"error page for 404" in body
    assert server.poll(ID)[1] == b'{"state":"error","status":404}'


def test_a_good_upload_with_an_error_handler_is_done(make_server):
    server = make_server(ERROR_HANDLER + 'server.error-handler = "/error.cgi"\n')
    status, _ = piecewise(server, ID, [500, 500])
    assert status == 200
    assert server.poll(ID)[1] == b'{"state":"done","received":1000,"size":1000}'


AUTH = BASIC + """
auth.backend = "plain"
auth.backend.plain.userfile = "{users}"
auth.require = ( "/sink.cgi" => ( "method" => "basic", "realm" => "uploads",
                                  "require" => "valid-user" ) )
"""


@pytest.mark.parametrize("first", [True, False], ids=["ours-first", "auth-first"])
def test_mod_auth_in_front_is_error_401(make_server, tmp_path, first):
    users = tmp_path / "users"
    users.write_text("alice:secret\n")
    modules = ["mod_auth", "mod_authn_file", "mod_cgi"]
    modules.insert(0 if first else 2, "mod_uploadprogress")
    server = make_server(AUTH.format(users=users), modules=tuple(modules))
    up = SlowUpload(server.port, "/sink.cgi", size=5000, pid=ID)
    status, _ = up.response()
    up.close()
    assert status == 401
    assert server.poll(ID)[1] == b'{"state":"error","status":401}'
    # with credentials the same URL is an ordinary upload
    status, _, body = server.request("POST", "/sink.cgi", body=b"a" * 700, headers={
        "X-Progress-ID": ID2, "Authorization": "Basic YWxpY2U6c2VjcmV0"})
    assert status == 200 and b"read 700 bytes" in body
    assert server.poll(ID2)[1] == b'{"state":"done","received":700,"size":700}'


@pytest.mark.parametrize("first", [True, False], ids=["ours-first", "access-first"])
def test_mod_access_in_front_is_error_403(make_server, first):
    modules = ["mod_access", "mod_cgi"]
    modules.insert(0 if first else 1, "mod_uploadprogress")
    server = make_server(BASIC + '$HTTP["url"] =~ "^/sink" { url.access-deny = ("") }\n',
                         modules=tuple(modules))
    up = SlowUpload(server.port, "/sink.cgi", size=5000, pid=ID)
    status, _ = up.response()
    up.close()
    assert status == 403
    assert server.poll(ID)[1] == b'{"state":"error","status":403}'


@pytest.mark.parametrize("stream,connection", [(0, "keep-alive"), (0, "close"), (2, "keep-alive")])
def test_a_cgi_local_redirect_after_the_body_is_done(make_server, stream, connection):
    # lighttpd empties the body queue before it serves the new target: the
    # upload still ended whole
    server = make_server(BASIC + 'cgi.local-redir = "enable"\n'
                         "server.stream-request-body = %d\n" % stream)
    status, _, body = server.request("POST", "/redir.cgi", body=b"y" * 70000,
                                     headers={"X-Progress-ID": ID, "Connection": connection})
    assert status == 200 and body == b"redirected\n"
    assert server.poll(ID)[1] == b'{"state":"done","received":70000,"size":70000}'


def test_the_end_of_an_untracked_duplicate_leaves_the_first_upload_alone(make_server):
    server = make_server(BASIC)
    first = SlowUpload(server.port, "/sink.cgi", size=2000, pid=ID)
    first.send(1000)
    server.wait_for(ID, lambda a: a.get("received") == 1000)
    second = SlowUpload(server.port, "/fail.cgi", size=300, pid=ID)
    second.send(100)
    first.send(1000)
    assert first.response()[0] == 200
    first.close()
    done = b'{"state":"done","received":2000,"size":2000}'
    assert server.poll(ID)[1] == done
    second.send(200)
    assert second.response()[0] == 500
    second.close()
    assert server.poll(ID)[1] == done


def test_a_parse_time_refusal_uses_no_conditional_of_an_earlier_request(make_server):
    # the module is on for host x.test only; a 411 for host y.test on the
    # same keep-alive connection must not be taken for x.test's
    server = make_server('$HTTP["host"] == "x.test" {\n'
                         '  upload-progress.progress-url = "/hp"\n}\n')
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /redirected.txt HTTP/1.1\r\nHost: x.test\r\n\r\n")
        assert read_response(sock)[0] == 200
        sock.sendall(b"POST /sink.cgi HTTP/1.1\r\nHost: y.test\r\n"
                     b"X-Progress-ID: %s\r\n\r\n" % ID.encode())
        assert read_response(sock)[0] == 411
    assert server.poll(ID, url="/hp", host="x.test")[1] == b'{"state":"starting"}'
