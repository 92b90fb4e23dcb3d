"""Processes the harness starts on 127.0.0.1: free ports, waiting for a
listener, starting a server in its own session and stopping it (with its
workers), and reading the kernel's view of a process tree."""
import collections
import ctypes
import functools
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

# Every Spawned process started and not stopped yet (stop_all ends them).
spawned = []


# Ports come from below the kernel's ephemeral range (32768 and up by
# default), which outgoing connections take theirs from, each pytest-xdist
# worker (PYTEST_XDIST_WORKER: gw0, gw1, ...) from a stretch of its own, in
# turn: so tests run side by side, and a test's own servers, never pick
# the same port between choosing it and binding it.
PORTS_PER_PROCESS = 2000
_worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
_stretch = 10000 + PORTS_PER_PROCESS * (int(_worker[2:]) % 11)
_next_port = [int.from_bytes(os.urandom(2), "little") % PORTS_PER_PROCESS]


def free_port():
    """A port nothing on 127.0.0.1 is bound to (checked), in this process's
    stretch."""
    for _ in range(PORTS_PER_PROCESS):
        port = _stretch + _next_port[0]
        _next_port[0] = (_next_port[0] + 1) % PORTS_PER_PROCESS
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in %d..%d" % (_stretch, _stretch + PORTS_PER_PROCESS - 1))


def tail(path, size=3000):
    """The end of a log, or "" if there is none."""
    try:
        return Path(path).read_text(errors="replace")[-size:]
    except OSError:
        return ""


def wait_listening(proc, port, name, log=None, timeout=30):
    """Waits until something accepts on 127.0.0.1:port; RuntimeError (with
    the end of log) if proc exits first or the timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited %s:\n%s" % (name, proc.returncode, tail(log)))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                # a connection from port to itself (TCP's simultaneous
                # open, when the kernel picks port as the client's own) is
                # not a listener
                if s.getsockname()[1] != port:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("%s did not listen on %d:\n%s" % (name, port, tail(log)))


class Spawned:
    """A process in its own session, its output in a log file; stop() ends
    its whole session (workers too): SIGTERM, SIGKILL after 10 s."""

    def __init__(self, cmd, log, **popen):
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True,
                                         **popen)
        self.log = log
        spawned.append(self)

    def stop(self):
        if self in spawned:
            spawned.remove(self)
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass


def stop_all():
    for process in list(spawned):
        process.stop()


@functools.lru_cache(maxsize=None)
def become_subreaper():
    """Makes this process the reaper of the processes its children leave
    behind: lighttpd's watcher exits without waiting for its workers, so
    their exit status reaches us, and Lighttpd.stop() can judge it."""
    pr_set_child_subreaper = 36
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


# What the tests read of /proc/PID/stat (proc(5): comm, state, ppid, pgrp,
# session).
ProcStat = collections.namedtuple("ProcStat", "name state ppid pgrp session")


def process_stat(pid):
    """A process's ProcStat, or None once it is reaped."""
    try:
        text = Path("/proc/%d/stat" % pid).read_text()
    except OSError:
        return None
    name = text.split("(", 1)[1].rsplit(")", 1)[0]
    fields = text.rsplit(")", 1)[1].split()
    return ProcStat(name, fields[0], int(fields[1]), int(fields[2]), int(fields[3]))


def process_ids():
    """Every pid in /proc now.  Listed, not globbed: Path.glob stats each
    entry, and one whose process ends meanwhile makes it raise ESRCH
    (ProcessLookupError), which glob does not take for a missing file."""
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def all_processes():
    """(pid, stat) of every process (process_stat), zombies too."""
    for pid in process_ids():
        stat = process_stat(pid)
        if stat:
            yield pid, stat


def session_processes(sid):
    """(pid, stat) of every process, zombies too, in session sid."""
    return [(pid, stat) for pid, stat in all_processes() if stat.session == sid]


def children_of(parent, name=None):
    """Pids of parent's children (named name, if given)."""
    return [pid for pid, stat in all_processes()
            if stat.ppid == parent and name in (None, stat.name)]


def how_it_ended(status):
    """A wait status in words."""
    if os.WIFSIGNALED(status):
        return "died with signal %d (%s)" % (os.WTERMSIG(status),
                                             signal.Signals(os.WTERMSIG(status)).name)
    return "exited with status %d" % os.waitstatus_to_exitcode(status)


def exit_status(returncode):
    """A Popen returncode as a wait status."""
    return -returncode if returncode < 0 else returncode << 8


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
