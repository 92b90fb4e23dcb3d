"""Three lighttpd servers behind HAProxy (and behind nginx), as
examples/cluster ships them: every request that carries one progress id
reaches the server that holds its upload; a server that stops takes only
its own uploads along."""
import http.client
import json
import os
import random
import shutil
import subprocess
import threading
import time
import uuid

import pytest

from lighty import EXAMPLES, SlowUpload, assert_never_ahead, demo_done, free_port, wait_for

CLUSTER = EXAMPLES / "cluster"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
NODES = ("node1", "node2", "node3")
PIECE = 20000
PIECES = 3
# Bounds for one request and for one exact answer: generous, for a shared
# machine running the sanitizer build, where lighttpd forks a CGI per upload.
SLOW = 60


def node_config(name):
    """The shipped node config with only its port and log overridden."""
    return ('var.node_name = "%s"\n' % name + "var.node_port = {port}\n"
            'include "%s/node.conf"\n' % CLUSTER + 'server.errorlog := "{errorlog}"\n')


def replace_once(text, old, new):
    assert text.count(old) == 1, old
    return text.replace(old, new)


class Balancer:
    """A shipped balancer config on a free port, in front of the given
    servers (which stand in for 127.0.0.1:8081 to 8083)."""

    def __init__(self, workdir, servers, shipped, listen, server_line):
        self.port = free_port()
        cfg = (CLUSTER / shipped).read_text()
        cfg = replace_once(cfg, listen % 8080, listen % self.port)
        for n, server in enumerate(servers, 1):
            cfg = replace_once(cfg, server_line % {"n": n, "port": 8080 + n},
                               server_line % {"n": n, "port": server.port})
        self.dir = workdir
        self.cfg = workdir / shipped
        self.cfg.write_text(cfg)
        self.log = workdir / (shipped + ".log")
        self.proc = None

    def check(self):
        """Runs the config check; returns its output, having asserted it passed."""
        checked = subprocess.run(self.command() + self.check_flag, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, timeout=30)
        assert checked.returncode == 0, checked.stdout
        return checked.stdout.decode()

    def start(self):
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self.listening, bool, timeout=10)

    def listening(self):
        assert self.proc.poll() is None, self.log.read_text()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
        try:
            conn.connect()
            return True
        except OSError:
            return False
        finally:
            conn.close()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def request(self, method, path, headers=None, body=None):
        """(status, the server that answered, body)"""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=SLOW)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.getheader("X-Upload-Node"), resp.read()
        finally:
            conn.close()

    def poll(self, pid, via):
        """A poll through the balancer: (answer, the server that answered)."""
        if via == "query":
            status, node, body = self.request("GET", "/progress?X-Progress-ID=" + pid)
        else:
            status, node, body = self.request("GET", "/progress", {"X-Progress-ID": pid})
        assert status == 200, (status, body)
        return json.loads(body), node


class HAProxy(Balancer):
    """examples/cluster/haproxy.cfg"""
    lowercases = True
    check_flag = ["-c"]

    def __init__(self, workdir, servers):
        super().__init__(workdir, servers, "haproxy.cfg", "bind 127.0.0.1:%d",
                         "node%(n)d 127.0.0.1:%(port)d")

    def command(self):
        return [HAPROXY, "-f", str(self.cfg)]

    def wait_until_down(self, name):
        """Until the health checks have marked the server down."""
        wait_for(lambda: self.log.read_text(),
                 lambda log: "lighttpd/%s is DOWN" % name in log, timeout=SLOW)


NGINX_MAIN = """daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/nginx.log;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {cfg};
}}
"""


class Nginx(Balancer):
    """examples/cluster/nginx.conf, included in a minimal nginx.conf of
    its own (one process, everything under the test's folder)."""
    lowercases = False
    check_flag = ["-t"]

    def __init__(self, workdir, servers):
        super().__init__(workdir, servers, "nginx.conf", "listen 127.0.0.1:%d;",
                         "server 127.0.0.1:%(port)d ")
        self.main = workdir / "nginx-main.conf"
        self.main.write_text(NGINX_MAIN.format(dir=workdir, cfg=self.cfg))

    def command(self):
        return [NGINX, "-c", str(self.main), "-p", str(self.dir)]

    def wait_until_down(self, name):
        """nginx checks passively: the first refused request marked it down."""


def start_cluster(make_server, tmp_path, balancer):
    """Three lighttpd servers as shipped, and the balancer in front after
    its config check passed: (balancer, {name: server}, the check's output)."""
    nodes = {name: make_server(base=node_config(name), cwd=EXAMPLES) for name in NODES}
    proxy = balancer(tmp_path, [nodes[name] for name in NODES])
    checked = proxy.check()
    proxy.start()
    return proxy, nodes, checked


@pytest.fixture
def cluster(make_server, tmp_path):
    """The shipped HAProxy set-up."""
    if not os.path.exists(HAPROXY):
        pytest.skip("no haproxy")
    proxy, nodes, checked = start_cluster(make_server, tmp_path, HAProxy)
    assert "Configuration file is valid" in checked
    yield proxy, nodes
    proxy.stop()


@pytest.fixture
def nginx_cluster(make_server, tmp_path):
    """The same servers behind the shipped nginx.conf."""
    if not os.path.exists(NGINX):
        pytest.skip("no nginx")
    proxy, nodes, _ = start_cluster(make_server, tmp_path, Nginx)
    yield proxy, nodes
    proxy.stop()


class Upload:
    """One upload through the balancer, sent in pieces, with polls after
    each piece until the answer is exactly the bytes sent.  The upload and
    its polls spell the id differently (UUID or 32 hex digits, and case
    where the balancer lowercases) and carry it differently (header or
    query), as two frames of one page may."""

    def __init__(self, proxy, n, same_id_as=None):
        self.proxy = proxy
        self.n = n
        self.id = same_id_as.id if same_id_as else uuid.UUID(int=random.getrandbits(128))
        self.pid = self.id.hex                       # what the module reports
        upload_spelling = str(self.id) if n % 2 else self.id.hex
        if proxy.lowercases:
            upload_spelling = upload_spelling.upper()
        self.poll_spelling = self.id.hex if n % 2 else str(self.id)
        self.via = "header" if n % 2 else "query"
        self.poll_via = "query" if n % 2 else "header"
        self.size = PIECE * PIECES
        self.up = SlowUpload(proxy.port, "/upload.cgi", size=self.size, pid=upload_spelling,
                             via=self.via)
        self.poll_nodes = set()

    def poll(self):
        answer, node = self.proxy.poll(self.poll_spelling, self.poll_via)
        self.poll_nodes.add(node)
        return answer

    def send_and_poll(self, n=PIECE):
        self.up.send(n)
        seen = wait_for(self.poll, lambda a: a.get("received") == self.up.sent, timeout=SLOW)
        assert_never_ahead(seen, self.up.sent, self.size)

    def finish(self):
        """The upload's response: (status, server, body)."""
        status, node, body = read_response_with_node(self.up.sock)
        self.up.close()
        return status, node, body


def read_response_with_node(sock):
    """Reads one whole response (Content-Length framed): (status, the
    X-Upload-Node header, body)."""
    sock.settimeout(SLOW)
    buf = b""
    while b"\r\n\r\n" not in buf:
        got = sock.recv(65536)
        assert got, buf
        buf += got
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    headers = {k.lower(): v for k, v in headers.items()}
    while len(body) < int(headers.get("content-length", 0)):
        got = sock.recv(65536)
        assert got, body
        body += got
    return int(lines[0].split()[1]), headers.get("x-upload-node"), body


def run_all(uploads, work, timeout=5 * SLOW):
    """Runs work(upload) for every upload at once; re-raises the first failure."""
    errors = []

    def run(upload):
        try:
            work(upload)
        except BaseException as e:   # handed to the test's thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(u,)) for u in uploads]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "uploads still running after %ds" % timeout
    if errors:
        raise errors[0]


def statistics(node):
    status, _, body = node.request("GET", "/server-statistics")
    assert status == 200
    return {k: int(v) for k, v in (line.split(": ") for line in body.decode().splitlines())}


def complete(upload, reported=None):
    """Sends the rest of an upload in pieces (polled exact after each),
    reads its response, and checks the final answer (reported: whether a
    stage of its work was reported, see demo_done); returns its server."""
    while upload.up.sent < upload.size:
        upload.send_and_poll()
    status, node, body = upload.finish()
    assert status == 200, body
    assert json.loads(body) == {"stored": upload.size}
    assert upload.poll() == demo_done(upload.size, reported)
    assert upload.poll_nodes == {node}, (upload.pid, node, upload.poll_nodes)
    return node


def every_poll_reaches_the_server_that_holds_its_upload(proxy, nodes, n):
    uploads = [Upload(proxy, i) for i in range(n)]
    held_by = {}

    def work(upload):
        held_by[upload.pid] = complete(upload)

    run_all(uploads, work)
    share = {name: sum(1 for node in held_by.values() if node == name) for name in NODES}
    assert sum(share.values()) == n and all(share.values()), share
    # each server's own counters say the same: it tracked its share, no more
    for name, node in nodes.items():
        stats = wait_for(lambda: statistics(node),
                         lambda s: s["uploadprogress.done"] == share[name], timeout=SLOW)[-1]
        assert stats["uploadprogress.tracked"] == share[name], (name, stats)
        assert stats["uploadprogress.untracked"] == 0


def test_every_poll_reaches_the_server_that_holds_its_upload(cluster):
    every_poll_reaches_the_server_that_holds_its_upload(*cluster, 100)


def requests_without_an_id_are_balanced_and_a_bad_id_gets_a_400(proxy):
    answered = set()
    for _ in range(12):
        status, node, _ = proxy.request("GET", "/")
        assert status == 200
        answered.add(node)
    assert len(answered) > 1, answered
    # the demo's pages and client, as examples/lighttpd.conf serves them
    assert proxy.request("GET", "/uploadprogress.js")[0] == 200
    for path, headers in (("/progress?X-Progress-ID=not-an-id", {}),
                          ("/progress", {"X-Progress-ID": "zz"}),
                          ("/progress?X-Progress-ID=", {})):
        status, node, body = proxy.request("GET", path, headers)
        assert status == 400 and node in NODES, (path, status, node)
        assert "error" in json.loads(body)
    # the statistics page is for monitoring agents on each server, not for clients
    assert proxy.request("GET", "/server-statistics")[0] == 403


def test_requests_without_an_id_are_balanced_and_a_bad_id_gets_a_400(cluster):
    requests_without_an_id_are_balanced_and_a_bad_id_gets_a_400(cluster[0])


def a_stopped_server_takes_only_its_own_uploads_along(proxy, nodes):
    uploads = [Upload(proxy, n) for n in range(30)]
    run_all(uploads, lambda upload: upload.send_and_poll())
    holder = {u.pid: next(iter(u.poll_nodes)) for u in uploads}
    assert all(len(u.poll_nodes) == 1 for u in uploads)
    stopped = max(NODES, key=lambda name: sum(1 for n in holder.values() if n == name))
    nodes[stopped].stop()
    lost = [u for u in uploads if holder[u.pid] == stopped]
    kept = [u for u in uploads if holder[u.pid] != stopped]
    assert lost and kept

    # the other servers' uploads carry on, exact, on their own servers
    run_all(kept, lambda upload: complete(upload))

    # a client of the stopped server: its upload's response is the
    # balancer's 502, and its polls reach another server, which never saw
    # the upload (until the health check marks the server down, HAProxy
    # redispatches them to any other server)
    for upload in lost:
        status, node, _ = upload.finish()
        assert (status, node) == (502, None)
        upload.poll_nodes.clear()
        assert upload.poll() == {"state": "starting"}
        assert stopped not in upload.poll_nodes, upload.poll_nodes
    # once it is down, each of its ids has one heir, by consistent hashing;
    # the same upload sent again is tracked there
    proxy.wait_until_down(stopped)
    for upload in lost:
        upload.poll_nodes.clear()
        for _ in range(3):
            assert upload.poll() == {"state": "starting"}
        assert len(upload.poll_nodes) == 1 and stopped not in upload.poll_nodes
        heir = next(iter(upload.poll_nodes))
        assert complete(Upload(proxy, upload.n, same_id_as=upload)) == heir


def test_a_stopped_server_takes_only_its_own_uploads_along(cluster):
    a_stopped_server_takes_only_its_own_uploads_along(*cluster)


def reports_reach_the_server_that_holds_their_upload(proxy, n):
    """A backend elsewhere reports through the balancer, by the upload's id
    in either spelling; the report reaches the server of the upload (any
    other answers 404: it knows no such upload)."""
    uploads = [Upload(proxy, i) for i in range(n)]
    run_all(uploads, lambda upload: upload.send_and_poll())
    for upload in uploads:
        status, node, body = proxy.request(
            "POST", "/progress-report",
            {"X-Progress-ID": upload.poll_spelling,
             "Content-Type": "application/x-www-form-urlencoded"},
            body="stage=scanning&percent=%d" % upload.n)
        assert (status, body) == (204, b""), (status, body)
        assert {node} == upload.poll_nodes, (node, upload.poll_nodes)
        answer = upload.poll()
        assert (answer["stage"], answer["percent"]) == ("scanning", upload.n), answer
    run_all(uploads, lambda upload: complete(upload, reported=True))


def test_reports_reach_the_server_that_holds_their_upload(cluster):
    reports_reach_the_server_that_holds_their_upload(cluster[0], 12)


def test_nginx_routes_as_haproxy_does(nginx_cluster):
    every_poll_reaches_the_server_that_holds_its_upload(*nginx_cluster, 30)
    reports_reach_the_server_that_holds_their_upload(nginx_cluster[0], 6)
    requests_without_an_id_are_balanced_and_a_bad_id_gets_a_400(nginx_cluster[0])


def test_nginx_loses_a_stopped_servers_uploads_only(nginx_cluster):
    a_stopped_server_takes_only_its_own_uploads_along(*nginx_cluster)
