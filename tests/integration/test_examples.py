"""examples/lighttpd.conf and its upload target work as shipped (the demo
runs them the same way: included, with only the port and log overridden)."""
from lighty import HERE, Lighttpd, SlowUpload, counts, demo_done
from test_events import H1Stream, progress

EXAMPLES = HERE.parent.parent / "examples"
ID = "00112233445566778899aabbccddeeff"

SHIPPED = """
include "%s/lighttpd.conf"
server.port := {port}
server.errorlog := "{errorlog}"
""" % EXAMPLES


def start_shipped(tmp_path, config=""):
    server = Lighttpd(tmp_path, config, base=SHIPPED, cwd=EXAMPLES)
    return server.start()


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
