"""Starts Debian's real lighttpd with the built module on 127.0.0.1,
talks to it, and judges how it ended (Lighttpd.stop)."""
import functools
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from .clients import wait_for
from .processes import (become_subreaper, exit_status, how_it_ended, session_processes,
                        free_port, wait_listening)

HERE = Path(__file__).resolve().parent
TOP = HERE.parent.parent
# The document root the tests' servers copy (a server whose folder has a
# www of its own keeps it).
TEST_WWW = TOP / "tests" / "integration" / "www"
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
        path = TOP / "build" / "mod_uploadprogress.so"
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


# What every server needs; each user adds its own (BASE_CONFIG, the bench's).
SERVER_CONFIG = """
server.document-root = "{www}"
server.bind = "127.0.0.1"
server.port = {port}
server.errorlog = "{errorlog}"
server.pid-file = "{pidfile}"
server.modules = ( {modules} )
"""

BASE_CONFIG = SERVER_CONFIG + """cgi.assign = ( ".cgi" => "" )
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


def stop_patience():
    """Seconds a server may take to stop: under valgrind each process's leak
    check at exit takes seconds of a loaded machine."""
    return 180 if os.environ.get("UPLOADPROGRESS_VALGRIND") else 30


class Lighttpd:
    """One lighttpd process in its own session (so that a multi-worker
    server's signals to its process group never reach the test runner).

    stop() judges it: the exit status (expect_exit: a status or a tuple of
    them; CLEAN_EXITS unless a test says otherwise), every worker's exit,
    the workers that died meanwhile (kill_worker() names those the test
    kills), sanitizer reports and valgrind errors.  A failed verdict is an
    AssertionError.

    module: the mod_uploadprogress.so to load (module_path() by default);
    prefix: a command lighttpd runs under (taskset, callgrind)."""

    def __init__(self, workdir, config="", modules=("mod_uploadprogress", "mod_cgi"),
                 base=BASE_CONFIG, cwd=None, expect_exit=CLEAN_EXITS, module=None, prefix=()):
        self.dir = Path(workdir)
        self.module = Path(module).resolve() if module else module_path()
        self.prefix = list(prefix)
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
        ours.symlink_to(in_root(self.module))
        if ROOT and self.cwd and ROOT not in Path(self.cwd).resolve().parents:
            # a folder of this tree (examples/): lighttpd sees a copy
            copy = self.dir / "cwd"
            if not copy.exists():
                shutil.copytree(self.cwd, copy, symlinks=True)
            self.host_cwd, self.cwd = Path(self.cwd), copy
        www = self.dir / "www"
        if not www.exists():
            shutil.copytree(TEST_WWW, www, symlinks=True)
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
        return self.prefix + cmd

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
        try:
            wait_listening(self.proc, self.port, "lighttpd", self.dir / "output.log", timeout)
        except RuntimeError as e:
            if self.proc.poll() is not None:
                running.remove(self)
            raise RuntimeError("%s\n%s" % (e, self.error_log())) from None
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

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
            for pid, stat in left:
                if stat.ppid != os.getpid():
                    continue          # still a child of a worker (a CGI)
                try:
                    got, status = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    continue
                # (under valgrind the processes bear the tool's name)
                is_server = stat.name == "lighttpd" or stat.name.startswith("memcheck-")
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
