"""Every backend users run (mod_cgi, mod_proxy to a real HTTP server,
mod_fastcgi to a real FastCGI responder) under every
server.stream-request-body mode: progress is live and exact."""
import pytest

from lighty import ID, SlowUpload, abort_midway, piecewise

pytestmark = pytest.mark.lighttpd_interface   # every test here (tests/README.md)

BACKENDS = ["cgi", "proxy", "fastcgi"]
STREAM_MODES = [0, 1, 2]


def backend_server(make_server, make_backend, backend, stream, extra=""):
    """A server whose URL prefix /up/ goes to the backend; returns
    (server, path of the body-reading sink, path of a backend that dies)."""
    config = ('upload-progress.progress-url = "/progress"\n'
              "server.stream-request-body = %d\n" % stream)
    modules = ["mod_uploadprogress"]
    if backend == "cgi":
        modules.append("mod_cgi")
        paths = ("/sink.cgi", "/die.cgi")
    else:
        kind = "http" if backend == "proxy" else "fastcgi"
        port = make_backend(kind).port
        module = "mod_proxy" if backend == "proxy" else "mod_fastcgi"
        modules.append(module)
        key = "proxy.server" if backend == "proxy" else "fastcgi.server"
        config += ('%s = ( "/up/" => (( "host" => "127.0.0.1", "port" => %d%s )) )\n'
                   % (key, port, ', "check-local" => "disable"' if kind == "fastcgi" else ""))
        paths = ("/up/sink", "/up/die")
    return make_server(config + extra, modules=tuple(modules)), paths[0], paths[1]


@pytest.mark.parametrize("stream", STREAM_MODES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_progress_is_live_and_exact(make_server, make_backend, backend, stream):
    server, sink, _ = backend_server(make_server, make_backend, backend, stream)
    pieces = [1000, 65536, 70000, 1, 200000]
    status, body = piecewise(server, ID, pieces, path=sink)
    assert status == 200
    assert b"read %d bytes" % sum(pieces) in body
    assert server.poll(ID)[0] == {"state": "done", "received": sum(pieces),
                                  "size": sum(pieces)}


def refuses_chunked(backend, stream):
    """lighttpd 1.4.69 gives a CGI or FastCGI backend a Content-Length: a
    chunked body it must stream (stream-request-body 1 or 2) is refused
    with 411 before it is read."""
    return backend in ("cgi", "fastcgi") and stream != 0


@pytest.mark.parametrize("stream", STREAM_MODES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_chunked_upload(make_server, make_backend, backend, stream):
    server, sink, _ = backend_server(make_server, make_backend, backend, stream)
    if refuses_chunked(backend, stream):
        up = SlowUpload(server.port, sink, pid=ID, chunked=True)
        up.send(100)
        status, _ = up.response()
        up.close()
        assert status == 411
        assert server.poll(ID)[1] == b'{"state":"error","status":411}'
        return
    pieces = [10, 70000, 1, 100000]
    status, body = piecewise(server, ID, pieces, path=sink, chunked=True)
    assert status == 200
    assert b"read %d bytes" % sum(pieces) in body
    assert server.poll(ID)[0] == {"state": "done", "received": sum(pieces),
                                  "size": sum(pieces)}


@pytest.mark.parametrize("stream", STREAM_MODES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_backend_that_dies_after_the_body_is_an_error_with_lighttpds_status(
        make_server, make_backend, backend, stream):
    server, _, die = backend_server(make_server, make_backend, backend, stream)
    up = SlowUpload(server.port, die, size=5000, pid=ID)
    up.send(5000)
    status, _ = up.response()
    up.close()
    assert status == 500   # lighttpd's answer when a backend gives none
    assert server.poll(ID)[1] == b'{"state":"error","status":500}'


@pytest.mark.parametrize("stream", STREAM_MODES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_client_gone_mid_body_is_an_error_400_with_its_counts(
        make_server, make_backend, backend, stream):
    server, sink, _ = backend_server(make_server, make_backend, backend, stream)
    abort_midway(server, sink, ID, 100000, 30000)
    assert server.poll(ID)[1] == b'{"state":"error","status":400,"received":30000,"size":100000}'
