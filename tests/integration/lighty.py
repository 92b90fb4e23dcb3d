"""Starts Debian's real lighttpd with the built module on 127.0.0.1 and talks to it."""
import ctypes
import functools
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LIGHTTPD = os.environ.get("LIGHTTPD", "/usr/sbin/lighttpd")
# A release's root made by scripts/build-for: lighttpd runs chrooted there
# (its own binary and modules), the tests' files live under ROOT/tmp and
# the clients stay here, on 127.0.0.1.
ROOT = Path(os.environ["UPLOADPROGRESS_ROOT"]).resolve() if os.environ.get(
    "UPLOADPROGRESS_ROOT") else None
# LIGHTTPD and LIGHTTPD_MODULES (lighttpd's own modules) are paths where
# lighttpd runs: in ROOT if set (e.g. a meson-built lighttpd in a prefix,
# scripts/build-for --lighttpd-meson).
SYSTEM_MODULES = Path(os.environ.get("LIGHTTPD_MODULES", "/usr/lib/lighttpd"))


def system_modules_here():
    """lighttpd's own modules (SYSTEM_MODULES), as a path from here."""
    return ROOT / SYSTEM_MODULES.relative_to("/") if ROOT else SYSTEM_MODULES


def module_path():
    path = os.environ.get("UPLOADPROGRESS_MODULE")
    if not path and ROOT:
        path = ROOT / "build" / "mod" / "mod_uploadprogress.so"
    if not path:
        path = HERE.parent.parent / "build" / "mod_uploadprogress.so"
    return Path(path).resolve()


def in_root(path):
    """What lighttpd sees of a host path: the same path, or with a root,
    the path inside it."""
    if ROOT is None:
        return Path(path)
    return Path("/") / Path(path).relative_to(ROOT)


def root_of_tests():
    """Where the tests' files must live for lighttpd to see them (pytest's
    --basetemp), or None when lighttpd runs on this system."""
    return ROOT / "tmp" / "pytest-uploadprogress" if ROOT else None


def enter_root(cwd):
    """A Popen preexec_fn that runs lighttpd chrooted in ROOT, in cwd."""
    if ROOT is None:
        return None

    def enter():
        os.chroot(ROOT)
        os.chdir(cwd)
    return enter


@functools.lru_cache(maxsize=None)
def lighttpd_version():
    """The version of the lighttpd under test, e.g. (1, 4, 79)."""
    out = subprocess.run([LIGHTTPD, "-v"], stdout=subprocess.PIPE, check=True,
                         preexec_fn=enter_root("/")).stdout.decode()
    return tuple(int(n) for n in re.search(r"lighttpd/(\d+)\.(\d+)\.(\d+)", out).groups())


def counts(answer):
    """An answer without its rate keys (speed, eta), which vary with timing."""
    return {k: v for k, v in answer.items() if k not in ("speed", "eta")}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


BASE_CONFIG = """
server.document-root = "{www}"
server.bind = "127.0.0.1"
server.port = {port}
server.errorlog = "{errorlog}"
server.pid-file = "{pidfile}"
server.modules = ( {modules} )
cgi.assign = ( ".cgi" => "" )
mimetype.assign = ( ".html" => "text/html", ".txt" => "text/plain" )
"""


# What a sanitizer writes when it finds an error (lighttpd's stderr, or
# its error log), and the module's line for a worker that the watcher saw
# die (mod_uploadprogress_waitpid: lighttpd itself says nothing).
SANITIZER_REPORTS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
WORKER_DEATH = re.compile(r"upload-progress: worker (\d+) (died with signal|exited with status) "
                          r"(\d+)")


# How lighttpd 1.4 ends after SIGTERM: 0, or 1 when connections were
# still open (server.c: rc is 1 unless srv->conns is empty).
CLEAN_EXITS = (0, 1)
CLEAN_STATUSES = tuple(code << 8 for code in CLEAN_EXITS)   # as wait statuses

# Every Lighttpd started and not yet stopped (conftest stops and judges
# those a test left running).
running = []


@functools.lru_cache(maxsize=None)
def become_subreaper():
    """Makes this process the reaper of the processes its children leave
    behind: lighttpd's watcher exits without waiting for its workers, so
    their exit status reaches us, and stop() can judge it."""
    pr_set_child_subreaper = 36
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def process_stat(pid):
    """(name, parent pid, session id) of a process, or None once it is reaped."""
    try:
        text = Path("/proc/%d/stat" % pid).read_text()
    except OSError:
        return None
    name = text.split("(", 1)[1].rsplit(")", 1)[0]
    fields = text.rsplit(")", 1)[1].split()
    return name, int(fields[1]), int(fields[3])


def how_it_ended(status):
    """A wait status in words."""
    if os.WIFSIGNALED(status):
        return "died with signal %d (%s)" % (os.WTERMSIG(status),
                                             signal.Signals(os.WTERMSIG(status)).name)
    return "exited with status %d" % os.waitstatus_to_exitcode(status)


def stop_patience():
    """Seconds a server may take to stop: under valgrind each process's leak
    check at exit takes seconds of a loaded machine."""
    return 180 if os.environ.get("UPLOADPROGRESS_VALGRIND") else 30


def wait_until(predicate, timeout=30.0, what="the condition", interval=0.02):
    """Calls predicate() until it returns something true, and returns that;
    after timeout seconds an AssertionError names what was awaited.  The
    deadline is generous: a loaded machine makes a test slower, not red."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("waited %.0f s for %s in vain (last: %r)"
                                 % (timeout, what, value))
        time.sleep(interval)


class Lighttpd:
    """One lighttpd process in its own session (so that a multi-worker
    server's signals to its process group never reach the test runner).

    stop() judges it: the exit status (expect_exit: a status or a tuple of
    them; CLEAN_EXITS unless a test says otherwise), every worker's exit,
    the workers that died meanwhile (kill_worker() names those the test
    kills), sanitizer reports and valgrind errors.  A failed verdict is an
    AssertionError."""

    def __init__(self, workdir, config="", modules=("mod_uploadprogress", "mod_cgi"),
                 base=BASE_CONFIG, cwd=None, expect_exit=CLEAN_EXITS):
        self.dir = Path(workdir)
        self.expect_exit = expect_exit
        self.killed = set()       # workers the test killed (kill_worker)
        self.output = None        # lighttpd's stdout and stderr, once stopped
        self.base = base
        self.cwd = cwd
        self.config_extra = config
        self.modules = modules
        self.port = None
        self.proc = None
        self.errorlog = self.dir / "error.log"
        self.host_cwd = None      # with a root: the folder self.cwd copies

    def write_config(self):
        mods = self.dir / "modules"
        mods.mkdir(exist_ok=True)
        system_modules = system_modules_here()
        for so in system_modules.glob("*.so"):
            link = mods / so.name
            if not link.is_symlink():
                link.symlink_to(in_root(so))
        ours = mods / "mod_uploadprogress.so"
        if ours.is_symlink() or ours.exists():
            ours.unlink()
        ours.symlink_to(in_root(module_path()))
        if ROOT and self.cwd and ROOT not in Path(self.cwd).resolve().parents:
            # a folder of this tree (examples/): lighttpd sees a copy
            copy = self.dir / "cwd"
            if not copy.exists():
                shutil.copytree(self.cwd, copy, symlinks=True)
            self.host_cwd, self.cwd = Path(self.cwd), copy
        www = self.dir / "www"
        if not www.exists():
            shutil.copytree(HERE / "www", www, symlinks=True)
        self.port = free_port()
        conf = self.dir / "lighttpd.conf"
        conf.write_text(self.as_lighttpd_sees_it(self.base.format(
            www=www, port=self.port, errorlog=self.errorlog,
            pidfile=self.dir / "lighttpd.pid",
            modules=", ".join('"%s"' % m for m in self.modules)) + self.config_extra))
        return conf

    def as_lighttpd_sees_it(self, text):
        """A config's host paths as lighttpd sees them (in a root)."""
        if ROOT is None:
            return text
        if self.host_cwd:
            text = text.replace(str(self.host_cwd), str(self.cwd))
        return text.replace(str(ROOT) + "/", "/")

    def command(self, conf):
        cmd = [LIGHTTPD, "-D", "-f", str(in_root(conf)), "-m", str(in_root(self.dir / "modules"))]
        if os.environ.get("UPLOADPROGRESS_VALGRIND"):
            cmd = ["valgrind", "-q", "--log-file=%s/valgrind.%%p.log" % self.dir,
                   "--leak-check=full", "--errors-for-leak-kinds=definite", *cmd]
        return cmd

    def enter(self):
        """With a root: chroot there, into the working folder as lighttpd sees it."""
        return enter_root(str(in_root(self.cwd or self.dir)))

    def memory_errors(self):
        """What valgrind found, if it ran."""
        return "".join(log.read_text() for log in self.dir.glob("valgrind.*.log"))

    def env(self):
        env = dict(os.environ)
        preload = os.environ.get("UPLOADPROGRESS_PRELOAD")
        if preload:
            env["LD_PRELOAD"] = preload
        return env

    def start(self, timeout=30):
        self.output = None      # a new process, judged by its own stop()
        conf = self.write_config()
        become_subreaper()
        # to a file, not a pipe: a flood of sanitizer lines never blocks lighttpd
        with open(self.dir / "output.log", "wb") as out:
            self.proc = subprocess.Popen(self.command(conf), env=self.env(), cwd=self.cwd,
                                         stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True, preexec_fn=self.enter())
        running.append(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                running.remove(self)
                raise RuntimeError("lighttpd exited %s: %s\n%s" % (
                    self.proc.returncode, self.stdout(), self.error_log()))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("lighttpd did not listen on %d" % self.port)

    def run_to_exit(self, timeout=10):
        """Starts lighttpd expecting it to refuse; returns (exit code, output),
        having asserted that it exited (no signal) with no sanitizer report
        or valgrind error."""
        conf = self.write_config()
        proc = subprocess.run(self.command(conf), env=self.env(), cwd=self.cwd,
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout,
                              start_new_session=True, preexec_fn=self.enter())
        out = proc.stdout.decode(errors="replace") + self.error_log()
        faults = self.reports(out)
        if proc.returncode < 0:
            faults.insert(0, "lighttpd died with signal %d" % -proc.returncode)
        assert not faults, "\n".join(faults) + "\n--- output and error log:\n" + out
        return proc.returncode, out

    def kill_worker(self, pid, sig=signal.SIGKILL):
        """Kills a worker, as a test may: stop() does not count its death."""
        self.killed.add(pid)
        os.kill(pid, sig)

    def stop(self):
        """Stops lighttpd (SIGTERM to its process group) if it still runs,
        and judges it (once; a second call returns the same output): raises
        AssertionError unless lighttpd's exit status is one of expect_exit,
        every worker exited with 0 or 1, no worker died that the test did
        not kill, and neither a sanitizer nor valgrind reported an error.
        Returns lighttpd's stdout and stderr."""
        if self.output is not None or self.proc is None:
            return self.output or ""
        if self in running:
            running.remove(self)
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        faults = []
        patience = stop_patience()
        try:
            self.proc.wait(timeout=patience)
        except subprocess.TimeoutExpired:
            faults.append("lighttpd did not stop within %d s of SIGTERM: killed" % patience)
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        expected = self.expect_exit if isinstance(self.expect_exit, tuple) else (self.expect_exit,)
        if self.proc.returncode not in expected:
            faults.append("lighttpd %s, not %s" % (
                how_it_ended(exit_status(self.proc.returncode)),
                " or ".join(map(str, expected))))
        faults += self.reap_workers()
        self.output = self.stdout()
        faults += self.reports(self.output + self.error_log())
        assert not faults, "%s\n--- lighttpd's output:\n%s--- its error log:\n%s" % (
            "\n".join(faults), self.output, self.error_log())
        return self.output

    def reap_workers(self):
        """Waits for what is left of the server's processes once the watcher
        has exited (they are this process's children now: become_subreaper)
        and judges the workers among them (the processes of its session
        named as lighttpd is, not its CGIs); returns what went wrong."""
        faults = []
        deadline = time.monotonic() + stop_patience()
        while True:
            left = session_processes(self.proc.pid)
            if not left:
                return faults
            for pid, (name, parent, _) in left:
                if parent != os.getpid():
                    continue          # still a child of a worker (a CGI)
                try:
                    got, status = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    continue
                # (under valgrind the processes bear the tool's name)
                is_server = name == "lighttpd" or name.startswith("memcheck-")
                if got and is_server and status not in CLEAN_STATUSES:
                    faults.append("worker %d %s" % (pid, how_it_ended(status)))
            if time.monotonic() > deadline:
                pids = [pid for pid, _ in left]
                for pid in pids:
                    os.kill(pid, signal.SIGKILL)
                faults.append("processes %s outlived lighttpd by %d s: killed"
                              % (pids, stop_patience()))
                deadline = time.monotonic() + stop_patience()
            time.sleep(0.02)

    def reports(self, text):
        """The errors a log reports: sanitizers, valgrind, workers that died
        and that the test did not kill."""
        faults = ["sanitizer: " + line for line in text.splitlines()
                  if any(marker in line for marker in SANITIZER_REPORTS)]
        faults += ["worker %s %s %s (the test did not kill it)" % m.groups()
                   for m in WORKER_DEATH.finditer(text) if int(m.group(1)) not in self.killed]
        if self.memory_errors():
            faults.append("valgrind:\n" + self.memory_errors())
        return faults

    def stdout(self):
        """What lighttpd wrote to its stdout and stderr."""
        out = self.dir / "output.log"
        return out.read_text(errors="replace") if out.exists() else ""

    def error_log(self):
        return self.errorlog.read_text(errors="replace") if self.errorlog.exists() else ""

    # --- clients ---------------------------------------------------------

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def poll(self, pid, via="query", url="/progress", host=None):
        headers = {"Host": host} if host else {}
        if via == "query":
            path = "%s?X-Progress-ID=%s" % (url, pid)
        else:
            path = url
            headers["X-Progress-ID"] = pid
        status, hdrs, body = self.request("GET", path, headers=headers)
        assert status == 200, (status, body)
        assert hdrs["content-type"] == "application/json"
        return json.loads(body), body

    def wait_for(self, pid, predicate, timeout=5.0, **kw):
        """Polls until predicate(answer) holds; returns every answer seen."""
        return wait_for(lambda: self.poll(pid, **kw)[0], predicate, timeout)


def exit_status(returncode):
    """A Popen returncode as a wait status."""
    return -returncode if returncode < 0 else returncode << 8


def session_processes(sid):
    """(pid, stat) of every process, zombies too, in session sid."""
    found = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        stat = process_stat(int(stat_file.parent.name))
        if stat and stat[2] == sid:
            found.append((int(stat_file.parent.name), stat))
    return found


def wait_for(poll, predicate, timeout=5.0):
    """Calls poll() until predicate(its answer) holds; returns every answer seen."""
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        answer = poll()
        seen.append(answer)
        if predicate(answer):
            return seen
        if time.monotonic() > deadline:
            raise AssertionError("no matching answer; last %r" % (answer,))
        time.sleep(0.02)


def read_response(sock):
    """Reads a response's head and what came with it: (status, rest)."""
    buf = b""
    sock.settimeout(10)
    while b"\r\n\r\n" not in buf:
        got = sock.recv(65536)
        if not got:
            break
        buf += got
    head, _, rest = buf.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else 0
    return status, rest


class SlowUpload:
    """An HTTP/1.1 upload whose body the test sends piece by piece."""

    def __init__(self, port, path, size=None, pid=None, via="header", chunked=False,
                 extra_headers=()):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.chunked = chunked
        self.sent = 0
        target = path
        lines = []
        if pid and via == "header":
            lines.append("X-Progress-ID: %s" % pid)
        elif pid:
            target += ("&" if "?" in path else "?") + "X-Progress-ID=" + pid
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        else:
            lines.append("Content-Length: %d" % size)
        lines.extend(extra_headers)
        head = "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n\r\n" % (target, "\r\n".join(lines))
        self.sock.sendall(head.encode())

    def send(self, n):
        data = b"x" * n
        if self.chunked:
            data = b"%x\r\n%s\r\n" % (n, data)
        self.sock.sendall(data)
        self.sent += n

    def finish(self):
        """Ends a chunked body and reads the response: (status, body)."""
        if self.chunked:
            self.sock.sendall(b"0\r\n\r\n")
        return self.response()

    def response(self):
        return read_response(self.sock)

    def close(self):
        self.sock.close()


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
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            name = stat.read_text().split("(", 1)[1].split(")", 1)[0]
        except (OSError, IndexError):
            continue
        if int(fields[1]) == parent and name == "lighttpd":
            kids.append(int(stat.parent.name))
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
    chunked upload's answers have no size while it runs."""
    size = sum(pieces)
    up = SlowUpload(server.port, path, size=size, pid=pid, via=via, chunked=chunked)
    try:
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


# --- ids and raw HTTP, shared by every test file ---------------------------

ID = "0123456789abcdef0123456789abcdef"


def make_ids(base, n):
    """n distinct progress ids (32 hex digits), from base on."""
    return ["%032x" % (base + k) for k in range(n)]


def raw_request(port, data):
    """Sends a whole request in one write (one packet on loopback);
    returns (status, what came with the head)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        return read_response(sock)


def read_to_close(sock):
    """Everything the peer sends until it closes: (head, body) of a response."""
    data = b""
    while True:
        got = sock.recv(65536)
        if not got:
            break
        data += got
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body


def raw_get(port, target):
    """A GET with the request target as given, bytes and all: (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        head, body = read_to_close(s)
    return int(head.split(b" ", 2)[1]), body


def wait_for_workers(server, n):
    """Waits until a server.max-worker = n server has its n workers."""
    wait_until(lambda: len(workers_of(server)) >= n, what="%d workers" % n, interval=0.05)
