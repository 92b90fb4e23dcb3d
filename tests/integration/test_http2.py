"""Uploads and polls over HTTP/2: h2c with prior knowledge and TLS (a
throw-away self-signed certificate), with and without content-length,
several streams on one connection, RST_STREAM and dropped connections."""
import subprocess
import time

import pytest

from h2client import H2Client
from lighty import (assert_never_ahead, counts, lighttpd_version, make_ids,
                    wait_for, wait_until_clients_gone)

pytestmark = pytest.mark.lighttpd_interface   # every test here (tests/README.md)

IDS = make_ids(0x5eed0, 4)
ID = IDS[0]
PIECES = [1000, 65536, 70000, 1, 200000]
STREAM_MODES = [0, 1, 2]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1: (cert file, key file)."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def h2_server(make_server, make_backend, certificate, tls, stream=0, backend="cgi",
              extra=""):
    """A server with h2 (h2c, or TLS only); returns (server, upload path)."""
    config = ('upload-progress.progress-url = "/progress"\n'
              "server.stream-request-body = %d\n" % stream) + extra
    modules = ["mod_uploadprogress", "mod_cgi"]
    path = "/sink.cgi"
    if backend == "proxy":
        modules.append("mod_proxy")
        config += ('proxy.server = ( "/up/" => (( "host" => "127.0.0.1", "port" => %d )) )\n'
                   % make_backend("http").port)
        path = "/up/sink"
    if tls:
        modules.append("mod_openssl")
        config += ('ssl.engine = "enable"\nssl.pemfile = "%s"\nssl.privkey = "%s"\n'
                   % certificate)
    return make_server(config, modules=tuple(modules)), path


def upload_piecewise(client, path, pid, pieces, with_length):
    """Sends an upload over HTTP/2 piece by piece, polling over the same
    connection after each piece until the answer is exact."""
    size = sum(pieces)
    sid = client.upload(path, pid, size if with_length else None)
    for i, n in enumerate(pieces):
        client.send(sid, n, end=i == len(pieces) - 1 and not with_length)
        if i == len(pieces) - 1:
            break   # the upload may be over: its response is the word
        seen = wait_for(lambda: client.poll(pid)[0],
                        lambda a: a.get("received") == client.sent(sid))
        assert_never_ahead(seen, client.sent(sid), size if with_length else None)
    return client.response(sid)


@pytest.mark.parametrize("stream", STREAM_MODES)
@pytest.mark.parametrize("with_length", [True, False], ids=["length", "no-length"])
@pytest.mark.parametrize("backend, tls", [("proxy", False), ("proxy", True), ("cgi", False)],
                         ids=["proxy-h2c", "proxy-tls", "cgi-h2c"])
def test_h2_upload_is_exact(make_server, make_backend, certificate,
                            backend, tls, with_length, stream):
    server, path = h2_server(make_server, make_backend, certificate, tls, stream, backend)
    client = H2Client(server.port, tls=tls)
    try:
        if backend == "cgi" and not with_length and stream != 0:
            # lighttpd 1.4.69's mod_cgi needs a length to stream the body
            sid = client.upload(path, ID)
            client.send(sid, 1000)
            assert client.response(sid)[0] == 411
            assert client.poll(ID)[1] == b'{"state":"error","status":411}'
            return
        status, body = upload_piecewise(client, path, ID, PIECES, with_length)
        assert status == 200 and b"read %d bytes" % sum(PIECES) in body
        assert client.poll(ID)[0] == {"state": "done", "received": sum(PIECES),
                                      "size": sum(PIECES)}
    finally:
        client.close()


@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "tls"])
def test_multiplexed_uploads_are_each_exact(make_server, make_backend, certificate, tls):
    server, path = h2_server(make_server, make_backend, certificate, tls)
    client = H2Client(server.port, tls=tls)
    sizes = {pid: 150000 + 1000 * i for i, pid in enumerate(IDS)}
    sids = {pid: client.upload(path, pid, sizes[pid]) for pid in IDS}
    try:
        for piece in (10000, 40000, 50000):
            for i, pid in enumerate(IDS):
                client.send(sids[pid], piece + i)
            for pid in IDS:
                sent = client.sent(sids[pid])
                seen = wait_for(lambda: client.poll(pid)[0],
                                lambda a: a.get("received") == sent)
                assert_never_ahead(seen, sent, sizes[pid])
                assert counts(seen[-1]) == {"state": "uploading", "received": sent,
                                            "size": sizes[pid]}
        for pid in IDS:
            client.send(sids[pid], sizes[pid] - client.sent(sids[pid]))
        for pid in IDS:
            status, body = client.response(sids[pid])
            assert status == 200 and b"read %d bytes" % sizes[pid] in body
            assert client.poll(pid)[0] == {"state": "done", "received": sizes[pid],
                                           "size": sizes[pid]}
    finally:
        client.close()


@pytest.mark.parametrize("with_length", [True, False], ids=["length", "no-length"])
def test_rst_stream_is_an_error_400_with_its_counts_kept_like_any_finished(
        make_server, make_backend, certificate, with_length):
    server, path = h2_server(make_server, make_backend, certificate, False,
                             extra='upload-progress.remove-timeout = 3\n')
    client = H2Client(server.port)
    try:
        sid = client.upload(path, ID, 100000 if with_length else None)
        client.send(sid, 30000)
        wait_for(lambda: client.poll(ID)[0], lambda a: a.get("received") == 30000)
        client.reset(sid)
        seen = wait_for(lambda: client.poll(ID)[0], lambda a: a["state"] != "uploading")
        expected = (b'{"state":"error","status":400,"received":30000,"size":100000}'
                    if with_length else b'{"state":"error","status":400,"received":30000}')
        assert client.poll(ID)[1] == expected
        assert all(a["state"] in ("uploading", "error") for a in seen)
        # the connection goes on; the entry outlives a sweep, then expires
        time.sleep(1.2)
        assert client.poll(ID)[1] == expected
        wait_for(lambda: client.poll(ID)[0], lambda a: a["state"] == "starting", timeout=6)
    finally:
        client.close()


@pytest.mark.parametrize("backend", ["cgi", "proxy"])
def test_a_dropped_h2_connection_is_an_error_400(make_server, make_backend, certificate,
                                                 backend):
    server, path = h2_server(make_server, make_backend, certificate, False, backend=backend)
    client = H2Client(server.port)
    sid = client.upload(path, ID, 90000)
    client.send(sid, 20000)
    wait_for(lambda: client.poll(ID)[0], lambda a: a.get("received") == 20000)
    client.sock.close()
    server.wait_for(ID, lambda a: a["state"] != "uploading")
    assert server.poll(ID)[1] == b'{"state":"error","status":400,"received":20000,"size":90000}'


# lighttpd 1.4.78 takes an HTTP/2 POST without content-length (its #3273)
POST_NEEDS_LENGTH = lighttpd_version() < (1, 4, 78)


def test_h2_post_without_content_length_is_411_until_1_4_78_then_an_upload_of_unknown_size(
        make_server, make_backend, certificate):
    server, path = h2_server(make_server, make_backend, certificate, False)
    client = H2Client(server.port)
    try:
        sid = client.upload(path, ID, method="POST")
        if POST_NEEDS_LENGTH:
            assert client.response(sid)[0] == 411
            assert client.poll(ID)[1] == b'{"state":"error","status":411}'
            return
        client.send(sid, 1000)
        seen = wait_for(lambda: client.poll(ID)[0], lambda a: a.get("received") == 1000)
        assert_never_ahead(seen, 1000, None)
        client.send(sid, 500, end=True)
        status, body = client.response(sid)
        assert status == 200 and b"read 1500 bytes" in body
        assert client.poll(ID)[0] == {"state": "done", "received": 1500, "size": 1500}
    finally:
        client.close()


def test_h2_zero_byte_upload_is_done(make_server, make_backend, certificate):
    server, path = h2_server(make_server, make_backend, certificate, False)
    client = H2Client(server.port)
    try:
        status, body = client.response(client.upload(path, ID, 0))
        assert status == 200 and b"read 0 bytes" in body
        assert client.poll(ID)[1] == b'{"state":"done","received":0,"size":0}'
        # HEADERS that end the stream, without content-length: a PUT is an
        # empty upload; a POST too since 1.4.78, refused by lighttpd before (411)
        sid = client.open("PUT", path, [("x-progress-id", IDS[1])], end_stream=True)
        status, body = client.response(sid)
        assert status == 200 and b"read 0 bytes" in body
        assert client.poll(IDS[1])[1] == b'{"state":"done","received":0,"size":0}'
        sid = client.open("POST", path, [("x-progress-id", IDS[2])], end_stream=True)
        if POST_NEEDS_LENGTH:
            assert client.response(sid)[0] == 411
            assert client.poll(IDS[2])[1] == b'{"state":"error","status":411}'
        else:
            status, body = client.response(sid)
            assert status == 200 and b"read 0 bytes" in body
            assert client.poll(IDS[2])[1] == b'{"state":"done","received":0,"size":0}'
    finally:
        client.close()


def test_h2_413(make_server, make_backend, certificate):
    server, path = h2_server(make_server, make_backend, certificate, False,
                             extra="server.max-request-size = 1\n")
    client = H2Client(server.port)
    try:
        assert client.response(client.upload(path, ID, 5000))[0] == 413
        assert client.poll(ID)[1] == b'{"state":"error","status":413}'
        # without content-length: refused when the body crosses the limit
        sid = client.upload(path, IDS[1])
        client.send(sid, 600)
        wait_for(lambda: client.poll(IDS[1])[0], lambda a: a.get("received") == 600)
        client.send(sid, 600)
        assert client.response(sid)[0] == 413
        assert client.poll(IDS[1])[0]["state"] == "error"
        assert client.poll(IDS[1])[0]["status"] == 413
    finally:
        client.close()


def curl(*args):
    out = subprocess.run(["curl", "-sS", "-o", "-", "-w", "\n%{http_code} %{http_version}",
                          "--max-time", "20", *args], capture_output=True, timeout=30)
    body, _, tail = out.stdout.rpartition(b"\n")
    code, version = tail.split()
    return int(code), version.decode(), body


@pytest.mark.parametrize("tls", [False, True], ids=["prior-knowledge", "tls"])
@pytest.mark.parametrize("with_length", [True, False], ids=["length", "no-length"])
def test_curl_uploads_and_polls_over_h2(make_server, make_backend, certificate, tmp_path,
                                        tls, with_length):
    server, path = h2_server(make_server, make_backend, certificate, tls)
    base = "%s://127.0.0.1:%d" % ("https" if tls else "http", server.port)
    h2 = ["--http2", "-k"] if tls else ["--http2-prior-knowledge"]
    data = tmp_path / "data"
    data.write_bytes(b"d" * 300000)
    # -T - streams stdin: no content-length
    send = ["--data-binary", "@%s" % data] if with_length else ["-T", "-"]
    proc_in = None if with_length else data.open("rb")
    out = subprocess.run(["curl", "-sS", "-o", "-", "-w", "\n%{http_code} %{http_version}",
                          "--max-time", "20", *h2, "-H", "X-Progress-ID: " + ID, *send,
                          base + path], stdin=proc_in, capture_output=True, timeout=30)
    assert out.stdout.endswith(b"\n200 2"), out
    assert b"read 300000 bytes" in out.stdout
    code, version, body = curl(*h2, base + "/progress?X-Progress-ID=" + ID)
    assert (code, version) == (200, "2")
    assert body == b'{"state":"done","received":300000,"size":300000}'
    assert wait_until_clients_gone(server)
