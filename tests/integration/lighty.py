"""The integration tests' helpers: ids, uploads sent piece by piece and
checked answer by answer, a server's workers.  Starting, stopping and
judging lighttpd, the backends and the raw HTTP clients are the shared
harness's (tests/harness, also bench/'s); the names the tests import from
here are re-exported below."""
import os
import socket
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))   # tests/, where the harness lives

from harness.clients import (SlowUpload, raw_get, raw_request, read_response,  # noqa: E402,F401
                             read_to_close, wait_for)
from harness.lighttpd import (BASE_CONFIG, ROOT, Lighttpd, in_root,  # noqa: E402,F401
                              lighttpd_version, module_path, root_of_tests, running,
                              system_modules_here)
from harness.processes import all_processes, children_of, free_port, wait_until  # noqa: E402,F401


EXAMPLES = HERE.parent.parent / "examples"

# examples/lighttpd.conf as the demo runs it: included, with only the port
# and the log overridden (test_examples.py, and the browser's pages)
SHIPPED = """
include "%s/lighttpd.conf"
server.port := {port}
server.errorlog := "{errorlog}"
""" % EXAMPLES


def start_shipped(tmp_path, config=""):
    server = Lighttpd(tmp_path, config, base=SHIPPED, cwd=EXAMPLES)
    return server.start()


def counts(answer):
    """An answer without its rate keys (speed, eta), which vary with timing."""
    return {k: v for k, v in answer.items() if k not in ("speed", "eta")}


def abort_midway(server, path, pid, size, n):
    """Sends n of size body bytes, waits until they are counted, then closes
    the connection; returns the answer once the upload no longer runs."""
    up = SlowUpload(server.port, path, size=size, pid=pid)
    up.send(n)
    server.wait_for(pid, lambda a: a.get("received") == n)
    up.sock.shutdown(socket.SHUT_RDWR)
    up.close()
    return server.wait_for(pid, lambda a: a["state"] != "uploading")[-1]


def workers_of(server):
    """Pids of the processes serving requests: the workers of a
    server.max-worker > 1 server, else lighttpd itself."""
    parent = server.proc.pid
    kids = children_of(parent, "lighttpd")
    return kids or [parent]


def serving_pid(server, client_sock, timeout=5.0):
    """The worker that accepted client_sock's connection."""
    client_port = client_sock.getsockname()[1]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        inode = None
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            f = line.split()
            if (int(f[1].split(":")[1], 16) == server.port
                    and int(f[2].split(":")[1], 16) == client_port):
                inode = f[9]
        if inode and inode != "0":
            for pid in workers_of(server):
                try:
                    for fd in Path("/proc/%d/fd" % pid).iterdir():
                        if os.readlink(fd) == "socket:[%s]" % inode:
                            return pid
                except OSError:
                    continue
        time.sleep(0.02)
    raise AssertionError("no worker holds the connection from port %d" % client_port)


def assert_never_ahead(seen, sent, size):
    """Every answer seen while sent bytes were on their way is a running
    state that never counts more than were sent; size None: unknown (and
    so no eta)."""
    keys = ["state", "received"] if size is None else ["state", "received", "size"]
    allowed = ([keys + ["speed"]] if size is None
               else [keys + ["speed"], keys + ["speed", "eta"]])
    for answer in seen:
        assert answer["state"] in ("starting", "uploading", "done"), answer
        if answer["state"] == "uploading":
            # the work's record (doc/processing.md), told beside the counts
            keys = [k for k in answer if k not in ("phase", "stage", "percent")]
            assert keys in allowed, answer
            assert size is None or answer["size"] == size, answer
            assert 0 <= answer["received"] <= sent, (answer, sent)


def piecewise(server, pid, pieces, via="header", poll_via="query", path="/sink.cgi",
              chunked=False):
    """Uploads in pieces; after each one, polls until the answer is exactly the
    bytes sent so far, and checks that no answer ever ran ahead of them.  A
    chunked upload's answers have no size while it runs.  The first piece
    goes once a poll sees the upload: a poll on another connection may reach
    lighttpd before the upload's head (a busy machine), and until then it
    rightly says what the id said before (an earlier upload's outcome)."""
    size = sum(pieces)
    up = SlowUpload(server.port, path, size=size, pid=pid, via=via, chunked=chunked)
    try:
        server.wait_for(pid, lambda a: a["state"] == "uploading", via=poll_via)
        for n in pieces:
            up.send(n)
            seen = server.wait_for(pid, lambda a: a.get("received") == up.sent, via=poll_via)
            assert_never_ahead(seen, up.sent, None if chunked else size)
            time.sleep(0.1)
        status, body = up.finish()
    finally:
        up.close()
    return status, body


def wait_until_clients_gone(server, timeout=10.0):
    """Waits until lighttpd holds no open client connection on its port
    (so that a client that just exited is not torn down by a server stop)."""
    port = ":%04X" % server.port
    held = ("01", "08")   # ESTABLISHED, CLOSE_WAIT: lighttpd has not closed yet
    deadline = time.monotonic() + timeout
    while True:
        open_conns = [line for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
                      if line.split()[1].endswith(port) and line.split()[3] in held]
        if not open_conns or time.monotonic() > deadline:
            return not open_conns
        time.sleep(0.05)


def demo_done(size, reported=None):
    """The final answer of an upload to the demo's upload.cgi: its work ends
    "finished" where a stage of it was reported (reported; by default,
    where upload.cgi can report with curl: a release's root has none)."""
    if reported is None:
        reported = os.path.exists(str(ROOT) + "/usr/bin/curl" if ROOT else "/usr/bin/curl")
    done = {"state": "done", "received": size, "size": size}
    return dict(done, phase="finished") if reported else done


# --- ids, shared by every test file ---------------------------------------

ID = "0123456789abcdef0123456789abcdef"


def make_ids(base, n):
    """n distinct progress ids (32 hex digits), from base on."""
    return ["%032x" % (base + k) for k in range(n)]


def wait_for_workers(server, n):
    """Waits until a server.max-worker = n server has its n workers."""
    wait_until(lambda: len(workers_of(server)) >= n, what="%d workers" % n, interval=0.05)
