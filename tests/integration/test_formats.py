"""Every answer format (JSON, JSONP, legacy, XML) byte for byte over the real
lighttpd, callbacks that must never be echoed, UUID ids, speed and eta,
cross-origin polls with mod_setenv, and the classic parsers (Node.js)."""
import json
import math
import re
import subprocess
import time
from pathlib import Path

import pytest

from lighty import ID, Lighttpd, SlowUpload, raw_get

NODE_DIR = Path(__file__).resolve().parent.parent / "node"

UUID = "01234567-89AB-CDEF-0123-456789ABCDEF"   # the same 128 bits as ID
OTHER = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
OTHER_HEX = "6ba7b8109dad11d180b400c04fd430c8"
XML_HEAD = '<?xml version="1.0" encoding="iso-8859-1"?>'

# One server, three formats: chosen by URL and by host in conditionals.
FORMATS = """
upload-progress.progress-url = "/progress"
server.max-request-size = 2000   # KiB
$HTTP["url"] =~ "^/legacy/" {
    upload-progress.progress-url = "/legacy/progress"
    upload-progress.format = "legacy"
}
$HTTP["host"] == "xml.example" {
    upload-progress.format = "xml"
}
"""

BAD_CALLBACK = (b'{"error":"malformed callback: 1 to 64 letters, digits, _, $ or ., '
                b'not starting with a digit"}')
BAD_ID = b'{"error":"malformed id: X-Progress-ID must be 32 hex digits or a UUID"}'


def get(server, fmt, pid, callback=None, via="query"):
    """Polls in format fmt ("json", "legacy", "xml"): (status, content type, body)."""
    path = "/legacy/progress" if fmt == "legacy" else "/progress"
    headers = {"Host": "xml.example"} if fmt == "xml" else {}
    params = []
    if via == "query":
        params.append("X-Progress-ID=" + pid)
    else:
        headers["X-Progress-ID"] = pid
    if callback is not None:
        params.append("callback=" + callback)
    if params:
        path += "?" + "&".join(params)
    status, hdrs, body = server.request("GET", path, headers=headers)
    assert hdrs["cache-control"] == "no-store"
    return status, hdrs.get("content-type"), body


def answer(server, fmt, pid, **kw):
    status, ctype, body = get(server, fmt, pid, **kw)
    assert status == 200, (status, body)
    return ctype, body


class States:
    """Drives uploads into every state on one server; the ids of each."""

    def __init__(self, server):
        self.server = server
        self.open = []

    def uploading(self, pid="aa" * 16):
        up = SlowUpload(self.server.port, "/sink.cgi", size=200194, pid=pid)
        up.send(65536)
        self.open.append(up)
        self.server.wait_for(pid, lambda a: a.get("received") == 65536)
        return pid

    def chunked(self, pid="bb" * 16):
        up = SlowUpload(self.server.port, "/sink.cgi", pid=pid, chunked=True)
        up.send(123)
        self.open.append(up)
        self.server.wait_for(pid, lambda a: a.get("received") == 123)
        return pid

    def done(self, pid="cc" * 16):
        up = SlowUpload(self.server.port, "/sink.cgi", size=3000, pid=pid)
        up.send(3000)
        assert up.response()[0] == 200
        up.close()
        self.server.wait_for(pid, lambda a: a["state"] == "done")
        return pid

    def refused(self, pid="dd" * 16):
        up = SlowUpload(self.server.port, "/sink.cgi", size=3000000, pid=pid)
        assert up.response()[0] == 413
        up.close()
        return pid

    def aborted(self, pid="ee" * 16):
        up = SlowUpload(self.server.port, "/sink.cgi", size=10000, pid=pid)
        up.send(5000)
        self.server.wait_for(pid, lambda a: a.get("received") == 5000)
        up.close()
        self.server.wait_for(pid, lambda a: a["state"] == "error")
        return pid

    def close(self):
        for up in self.open:
            up.close()


@pytest.fixture
def states(make_server):
    s = States(make_server(FORMATS))
    yield s
    s.close()


# (state, format) -> (content type, exact body); JSON uploading answers also
# carry speed (and eta), matched apart.
EXPECTED = {
    ("starting", "json"): ("application/json", b'{"state":"starting"}'),
    ("starting", "legacy"): ("text/javascript", b"new Object({ 'state' : 'starting' })"),
    ("starting", "xml"): ("text/plain", b"not in progress"),
    ("uploading", "legacy"): ("text/javascript",
        b"new Object({ 'state' : 'uploading', 'received' : 65536, 'size' : 200194 })"),
    ("uploading", "xml"): ("text/xml", XML_HEAD.encode() +
        b"<upload><size>200194</size><received>65536</received><state>uploading</state></upload>"),
    ("chunked", "legacy"): ("text/javascript",
        b"new Object({ 'state' : 'uploading', 'received' : 123 })"),
    ("chunked", "xml"): ("text/xml", XML_HEAD.encode() +
        b"<upload><received>123</received><state>uploading</state></upload>"),
    ("done", "json"): ("application/json", b'{"state":"done","received":3000,"size":3000}'),
    ("done", "legacy"): ("text/javascript",
        b"new Object({ 'state' : 'done', 'received' : 3000, 'size' : 3000 })"),
    ("done", "xml"): ("text/xml", XML_HEAD.encode() +
        b"<upload><size>3000</size><received>3000</received><state>done</state></upload>"),
    ("refused", "json"): ("application/json", b'{"state":"error","status":413}'),
    ("refused", "legacy"): ("text/javascript",
        b"new Object({ 'state' : 'error', 'status' : 413 })"),
    ("refused", "xml"): ("text/xml", XML_HEAD.encode() +
        b"<upload><state>error</state><status>413</status></upload>"),
    ("aborted", "json"): ("application/json",
        b'{"state":"error","status":400,"received":5000,"size":10000}'),
    ("aborted", "legacy"): ("text/javascript",
        b"new Object({ 'state' : 'error', 'status' : 400, 'received' : 5000, 'size' : 10000 })"),
    ("aborted", "xml"): ("text/xml", XML_HEAD.encode() +
        b"<upload><size>10000</size><received>5000</received><state>error</state>"
        b"<status>400</status></upload>"),
}
JSON_UPLOADING = {
    "uploading": rb'\{"state":"uploading","received":65536,"size":200194,"speed":(\d+)(,"eta":\d+)?\}',
    "chunked": rb'\{"state":"uploading","received":123,"speed":\d+\}',
}


def drive(states, state):
    return {"starting": lambda: ID, "uploading": states.uploading, "chunked": states.chunked,
            "done": states.done, "refused": states.refused,
            "aborted": states.aborted}[state]()


@pytest.mark.parametrize("state", ["starting", "uploading", "chunked", "done", "refused",
                                   "aborted"])
def test_every_format_and_state_byte_for_byte(states, state):
    pid = drive(states, state)
    for fmt in ("json", "legacy", "xml"):
        ctype, body = answer(states.server, fmt, pid)
        if (state, fmt) in EXPECTED:
            assert (ctype, body) == EXPECTED[state, fmt], fmt
        else:
            assert ctype == "application/json"
            assert re.fullmatch(JSON_UPLOADING[state], body), body
        # JSONP wraps the JSON answer, whatever the format (compared with
        # what JSON answers, not with a second poll: a running upload's
        # speed can change between two polls)
        ctype, wrapped = answer(states.server, fmt, pid, callback="cb")
        assert ctype == "application/javascript"
        assert wrapped[:3] == b"cb(" and wrapped[-2:] == b");", wrapped
        if (state, "json") in EXPECTED:
            assert wrapped[3:-2] == EXPECTED[state, "json"][1], fmt
        else:
            assert re.fullmatch(JSON_UPLOADING[state], wrapped[3:-2]), wrapped


def test_header_id_and_head_in_every_format(states):
    pid = states.done()
    for fmt in ("json", "legacy", "xml"):
        assert answer(states.server, fmt, pid, via="header") == EXPECTED["done", fmt]
    status, hdrs, body = states.server.request("HEAD", "/legacy/progress?X-Progress-ID=" + pid)
    assert (status, hdrs["content-type"], body) == (200, "text/javascript", b"")
    assert hdrs["content-length"] == str(len(EXPECTED["done", "legacy"][1]))


@pytest.mark.lighttpd_interface
def test_the_format_key_follows_conditionals_and_defaults_to_json(make_server):
    server = make_server(FORMATS + """
$HTTP["url"] =~ "^/old/" {
    upload-progress.progress-url = "/old/progress"
    upload-progress.format = "xml"
}
$HTTP["url"] =~ "^/new/" {
    upload-progress.progress-url = "/new/progress"
    upload-progress.format = "json"
}
""")
    for path, ctype, body in (
            ("/progress", "application/json", b'{"state":"starting"}'),
            ("/old/progress", "text/plain", b"not in progress"),
            ("/new/progress", "application/json", b'{"state":"starting"}'),
            ("/legacy/progress", "text/javascript", b"new Object({ 'state' : 'starting' })")):
        status, hdrs, got = server.request("GET", path + "?X-Progress-ID=" + ID)
        assert (status, hdrs["content-type"], got) == (200, ctype, body), path


@pytest.mark.lighttpd_interface
@pytest.mark.parametrize("value,message", [
    ('"jsonp"', 'upload-progress.format must be "json", "legacy" or "xml", not "jsonp"'),
    ('"JSON"', 'upload-progress.format must be "json", "legacy" or "xml", not "JSON"'),
    ('""', 'upload-progress.format must be "json", "legacy" or "xml", not ""'),
    ('1', 'upload-progress.format should have been a string'),   # lighttpd's own check
])
@pytest.mark.parametrize("where", ["global", "conditional"])
def test_a_bad_format_stops_lighttpd_with_a_clear_message(tmp_path, value, message, where):
    setting = "upload-progress.format = %s\n" % value
    if where == "conditional":
        setting = '$HTTP["url"] =~ "^/x" {\n    %s}\n' % setting
    server = Lighttpd(tmp_path, 'upload-progress.progress-url = "/progress"\n' + setting)
    tmp_path.mkdir(exist_ok=True)
    rc, out = server.run_to_exit()
    assert rc != 0
    assert message in out, out


HOSTILE = [
    b"alert(1)//",
    b"alert(document.cookie)",
    b"<script>",
    b"%3Cscript%3Ealert(1)%3C/script%3E",
    b"a" * 65,
    b"1cb",
    b"",
    b"caf%C3%A9",
    b"caf\xc3\xa9",
    b"cb%28%29",
    b"%2528",             # "%28" once lighttpd has normalized it
    b"cb%0Aalert(1)",
    b"cb;alert(1)",
    b"cb%00",
    b"cb-1",
    b"a['b']",
    b"cb%26x%3D1",
]


@pytest.mark.parametrize("fmt", ["json", "legacy", "xml"])
def test_hostile_callbacks_get_400_and_are_never_echoed(make_server, fmt):
    server = make_server(FORMATS)
    base = b"/legacy/progress" if fmt == "legacy" else b"/progress"
    for cb in HOSTILE:
        for query in (b"X-Progress-ID=" + ID.encode() + b"&callback=" + cb,
                      b"callback=" + cb + b"&X-Progress-ID=" + ID.encode(),
                      b"callback=" + cb + b"&callback=cb"):   # the first counts
            status, body = raw_get(server.port, base + b"?" + query)
            assert status == 400, (cb, status, body)
            # lighttpd itself refuses control characters before any module
            assert body == BAD_CALLBACK or (
                cb in (b"cb%0Aalert(1)", b"cb%00") and b"<h1>400 Bad Request</h1>" in body), \
                (cb, body)
            for piece in (b"alert", b"script", b"\xc3", b"caf", b"1cb", b"%", b"a" * 65):
                assert piece not in body
    # lighttpd decodes percent-encoded unreserved characters before any
    # module sees the query: "%63b" is "cb", which is safe to echo
    status, body = raw_get(server.port, base + b"?X-Progress-ID=" + ID.encode() + b"&callback=%63b")
    assert (status, body) == (200, b'cb({"state":"starting"});')
    # the longest allowed name is served
    ok = "c" * 64
    assert answer(server, fmt, ID, callback=ok) == (
        "application/javascript", ok.encode() + b'({"state":"starting"});')


@pytest.mark.parametrize("callback", ["cb", "jQuery1910_1384000000000", "app.progress$", "_", "$"])
def test_real_callback_names_get_jsonp(make_server, callback):
    server = make_server(FORMATS)
    ctype, body = answer(server, "json", ID, callback=callback)
    assert ctype == "application/javascript"
    assert body == callback.encode() + b'({"state":"starting"});'


def test_a_uuid_and_its_32_hex_spelling_are_one_id(states):
    server = states.server
    states.done(ID)
    want = EXPECTED["done", "json"][1]
    for pid in (UUID, UUID.lower(), ID.upper()):
        assert answer(server, "json", pid) == ("application/json", want)
        assert answer(server, "json", pid, via="header") == ("application/json", want)
    # an upload sent with a UUID (Django style, in the header) ...
    states.done(OTHER)
    # ... is polled by either spelling, in the query or the header
    for pid in (OTHER, OTHER.upper(), OTHER_HEX):
        for via in ("query", "header"):
            assert answer(server, "json", pid, via=via)[1] == want
    # and a UUID in the query of an upload too
    up = SlowUpload(server.port, "/sink.cgi", size=10, pid=UUID.replace("0123", "4567"),
                    via="query")
    up.send(10)
    assert up.response()[0] == 200
    up.close()
    assert answer(server, "xml", "4567456789abcdef4567456789abcdef")[1] == (
        XML_HEAD.encode() + b"<upload><size>10</size><received>10</received>"
        b"<state>done</state></upload>")


@pytest.mark.parametrize("pid", [
    "01234567-89ab-cdef-0123-456789abcde",
    "01234567-89ab-cdef-0123-456789abcdef0",
    "0123456-789ab-cdef-0123-456789abcdef",
    "01234567-89abcdef-0123-4567-89abcdef",
    "{01234567-89ab-cdef-0123-456789abcdef}",
    "urn:uuid:01234567-89ab-cdef-0123-456789abcdef",
    "01234567-89ab-cdef-0123-456789abcdeg",
    "0123456789abcdef0123456789abcd--",
])
def test_malformed_uuids_are_refused(make_server, pid):
    server = make_server(FORMATS)
    for via in ("query", "header"):
        status, ctype, body = get(server, "json", pid, via=via)
        assert (status, ctype, body) == (400, "application/json", BAD_ID)
    # and an upload with one is served but not tracked
    up = SlowUpload(server.port, "/sink.cgi", size=10, pid=pid)
    up.send(10)
    assert up.response()[0] == 200
    up.close()
    assert answer(server, "json", ID)[1] == b'{"state":"starting"}'


def send_until_measured(server, up, pid, piece=8192, most=1500000):
    """Sends pieces (at most `most` bytes) until a poll reports a speed; the
    module measures it between the counts it publishes once a second, from
    the second after the upload began."""
    while up.sent + piece <= most:
        up.send(piece)
        time.sleep(0.05)
        if json.loads(answer(server, "json", pid)[1]).get("speed", 0) > 0:
            return
    raise AssertionError("no speed after %d bytes" % up.sent)


def test_speed_and_eta_while_uploading(make_server):
    server = make_server(FORMATS)
    size = 2000000
    up = SlowUpload(server.port, "/sink.cgi", size=size, pid=ID)
    try:
        # no body byte yet: nothing to measure
        first = server.wait_for(ID, lambda a: a["state"] == "uploading")[-1]
        assert first == {"state": "uploading", "received": 0, "size": size, "speed": 0}
        send_until_measured(server, up, ID)
        # the client pauses: the answer holds still and says how long is left
        a = server.wait_for(ID, lambda a: a["received"] == up.sent and a["speed"] > 0)[-1]
        assert list(a) == ["state", "received", "size", "speed", "eta"]
        assert 0 < a["speed"] <= up.sent             # bounded by what was sent
        assert a["eta"] == math.ceil((size - a["received"]) / a["speed"])
        assert a["eta"] >= 1
        # JSONP carries them too; legacy and XML stay as the old clients knew them
        _, body = answer(server, "json", ID, callback="cb")
        m = re.fullmatch(rb'cb\(\{"state":"uploading","received":(\d+),"size":2000000,'
                         rb'"speed":(\d+),"eta":(\d+)\}\);', body)
        assert m and int(m.group(1)) == up.sent, body
        assert answer(server, "legacy", ID)[1] == (
            b"new Object({ 'state' : 'uploading', 'received' : %d, 'size' : 2000000 })" % up.sent)
        assert answer(server, "xml", ID)[1] == XML_HEAD.encode() + (
            b"<upload><size>2000000</size><received>%d</received>"
            b"<state>uploading</state></upload>" % up.sent)
        up.send(size - up.sent)
        assert up.response()[0] == 200
    finally:
        up.close()
    # done answers keep the counts and drop the rate
    assert answer(server, "json", ID)[1] == b'{"state":"done","received":2000000,"size":2000000}'


def test_chunked_uploads_have_speed_but_no_eta(make_server):
    server = make_server(FORMATS)
    up = SlowUpload(server.port, "/sink.cgi", pid=ID, chunked=True)
    try:
        send_until_measured(server, up, ID)
        a = server.wait_for(ID, lambda a: a["received"] == up.sent and a["speed"] > 0)[-1]
        assert list(a) == ["state", "received", "speed"]
        assert 0 < a["speed"] <= up.sent
        status, _ = up.finish()
        assert status == 200
    finally:
        up.close()
    a = server.wait_for(ID, lambda a: a["state"] == "done")[-1]
    assert a == {"state": "done", "received": up.sent, "size": up.sent}


CORS = """
upload-progress.progress-url = "/progress"
$HTTP["url"] =~ "^/progress" {
    setenv.add-response-header = ( "Access-Control-Allow-Origin" => "*" )
}
"""


@pytest.mark.lighttpd_interface
def test_cors_with_mod_setenv(make_server):
    server = make_server(CORS, modules=("mod_setenv", "mod_uploadprogress", "mod_cgi"))
    origin = {"Origin": "http://pages.example"}
    up = SlowUpload(server.port, "/sink.cgi", size=100, pid=ID)
    up.send(100)
    status, body = up.response()
    up.close()
    assert status == 200
    status, hdrs, body = server.request("GET", "/progress?X-Progress-ID=" + ID, headers=origin)
    assert status == 200 and body == b'{"state":"done","received":100,"size":100}'
    assert hdrs["access-control-allow-origin"] == "*"
    # refusals too, so that the page can read why
    status, hdrs, body = server.request("GET", "/progress?X-Progress-ID=x", headers=origin)
    assert status == 400 and hdrs["access-control-allow-origin"] == "*"
    # a preflight (what a custom X-Progress-ID header would cost) is refused
    status, _, _ = server.request("OPTIONS", "/progress", headers=dict(
        origin, **{"Access-Control-Request-Method": "GET"}))
    assert status == 405
    # only the progress URL: not the upload target
    status, hdrs, _ = server.request("POST", "/sink.cgi", body=b"x", headers=origin)
    assert status == 200 and "access-control-allow-origin" not in hdrs


@pytest.mark.lighttpd_interface
def test_cors_needs_mod_setenv_loaded_before_us(make_server):
    """Our poll answer ends the uri stage, where mod_setenv reads its config:
    loaded after us, it adds nothing (the documented order matters)."""
    server = make_server(CORS, modules=("mod_uploadprogress", "mod_setenv", "mod_cgi"))
    status, hdrs, _ = server.request("GET", "/progress?X-Progress-ID=" + ID,
                                     headers={"Origin": "http://pages.example"})
    assert status == 200 and "access-control-allow-origin" not in hdrs


def collect_answers(states):
    """Real answers of every format and state, for the Node.js parsers."""
    server = states.server
    expect = {
        "starting": {"state": "starting"},
        "uploading": {"state": "uploading", "received": 65536, "size": 200194},
        "chunked": {"state": "uploading", "received": 123},
        "done": {"state": "done", "received": 3000, "size": 3000},
        "refused": {"state": "error", "status": 413},
        "aborted": {"state": "error", "status": 400, "received": 5000, "size": 10000},
    }
    answers = []
    for state, want in expect.items():
        pid = drive(states, state)
        for fmt in ("json", "legacy", "xml"):
            ctype, body = answer(server, fmt, pid)
            answers.append({"label": "%s/%s" % (fmt, state), "format": fmt,
                            "content_type": ctype, "body": body.decode(), "expect": want})
        for callback in ("cb", "jQuery1910_1384000000000", "app.progress$"):
            ctype, body = answer(server, "json", pid, callback=callback)
            answers.append({"label": "jsonp/%s/%s" % (state, callback), "format": "jsonp",
                            "callback": callback, "content_type": ctype,
                            "body": body.decode(), "expect": want})
    return answers


def test_classic_parsers_read_every_answer(states, tmp_path):
    assert (NODE_DIR / "node_modules" / "@xmldom" / "xmldom").is_dir(), \
        "run scripts/setup-deps: it installs tests/node's packages"
    answers = collect_answers(states)
    # one live upload measured, so that speed and eta are parsed too
    up = SlowUpload(states.server.port, "/sink.cgi", size=2000000, pid="ff" * 16)
    states.open.append(up)
    send_until_measured(states.server, up, "ff" * 16)
    a = states.server.wait_for("ff" * 16, lambda a: a["received"] == up.sent and a["speed"] > 0)
    body = answer(states.server, "json", "ff" * 16)[1]
    assert b'"eta":' in body, (a, body)
    answers.append({"label": "json/measured", "format": "json", "content_type": "application/json",
                    "body": body.decode(),
                    "expect": {"state": "uploading", "received": up.sent, "size": 2000000}})
    path = tmp_path / "answers.json"
    path.write_text(json.dumps(answers, indent=1))
    proc = subprocess.run(["node", str(NODE_DIR / "parse_answers.mjs"), str(path)],
                          cwd=NODE_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=60)
    out = proc.stdout.decode()
    assert proc.returncode == 0, out
    # json: 3 parsers + the bare-eval failure; legacy: 3; xml: 1; jsonp: 1
    per_state = 4 + 3 + 1 + 3
    assert out.count("\nok ") + out.startswith("ok ") == 6 * per_state + 4, out
    assert "not ok" not in out
    assert out.rstrip().endswith("%d answers, 0 failed" % len(answers)), out
