"""The shared table across graceful restarts and stops, worker deaths and
floods of duplicate uploads (issue 12)."""
import json
import os
import re
import signal
import shutil
import socket
import subprocess
import time

import pytest

from lighty import (ROOT, Lighttpd, SlowUpload, in_root, make_ids, module_path,
                    serving_pid, wait_for_workers, wait_until)
from harness.random_ids import rss_shmem_kb

IDS = make_ids(0x12f00, 8)


def lock_shim():
    """The LD_PRELOAD shim built beside the module (meson: lock_shim)."""
    shim = module_path().parent / "lock_shim.so"
    assert shim.exists(), "build the lock_shim target: %s" % shim
    return shim


class ShimmedLighttpd(Lighttpd):
    """lighttpd with the lock shim preloaded after any sanitizer runtime."""

    def __init__(self, workdir, config="", broken_lock=False):
        super().__init__(workdir, config)
        self.lock_log = self.dir / "locks.log"
        self.broken_lock = broken_lock

    def env(self):
        env = super().env()
        shim = str(in_root(lock_shim()))     # (paths as lighttpd sees them)
        env["LD_PRELOAD"] = ":".join(p for p in (env.get("LD_PRELOAD"), shim) if p)
        env["LOCK_SHIM_LOG"] = str(in_root(self.lock_log))
        if self.broken_lock:
            env["LOCK_SHIM_EINVAL"] = "1"    # every lock call fails
        return env

    def lock_report(self):
        """(lock calls counted by processes that exited, failed calls)."""
        lines = self.lock_log.read_text().splitlines() if self.lock_log.exists() else []
        calls = sum(int(line.split()[2]) for line in lines if line.split()[1] == "calls")
        failed = [line for line in lines if line.split()[1] != "calls"]
        return calls, failed


@pytest.mark.parametrize("workers", [2, 4])
@pytest.mark.parametrize("sig", [signal.SIGUSR1, signal.SIGINT], ids=["restart", "stop"])
def test_uploads_in_flight_across_a_graceful_restart_or_stop_lose_no_lock_call(
        tmp_path, workers, sig):
    server = ShimmedLighttpd(tmp_path, 'upload-progress.progress-url = "/progress"\n'
                                       "server.max-worker = %d\n" % workers)
    server.start()
    try:
        wait_for_workers(server, workers)
        uploads = [SlowUpload(server.port, "/sink.cgi", size=200000, pid=pid) for pid in IDS[:4]]
        for up in uploads:
            up.send(100000)
        time.sleep(1.2)                   # every owner has published
        os.kill(server.proc.pid, sig)
        time.sleep(2.5)                   # the old workers publish and sweep meanwhile
        for up in uploads:
            up.send(100000)
            assert up.response()[0] == 200
            up.close()
        if sig == signal.SIGINT:
            server.proc.wait(timeout=20)  # a graceful stop ends once they are served
        else:   # (lighttpd forgets a SIGTERM that comes before the new generation)
            wait_until(lambda: server.error_log().count("server started") == 2,
                       what="the new generation")
    finally:
        server.stop()
    calls, failed = server.lock_report()
    assert calls > 0, "the shim saw no lock call"
    assert failed == [], failed
    assert "could not take the table's lock" not in server.error_log()


def test_a_workers_death_does_not_make_a_huge_table_resident(make_server):
    # 8,000,000 entries: a 640 MB mapping, all but a page of it untouched
    server = make_server('upload-progress.progress-url = "/progress"\n'
                         "upload-progress.max-entries = 8000000\n"
                         "server.max-worker = 2\n")
    wait_for_workers(server, 2)
    up = SlowUpload(server.port, "/sink.cgi", size=1000, pid=IDS[5])
    up.send(10)
    owner = serving_pid(server, up.sock)
    server.wait_for(IDS[5], lambda a: a["state"] == "uploading")
    watcher = server.proc.pid
    before = rss_shmem_kb(watcher)
    server.kill_worker(owner)
    up.close()
    server.wait_for(IDS[5], lambda a: a["state"] == "error")
    grown = rss_shmem_kb(watcher) - before
    print("watcher RssShmem %d kB -> %d kB" % (before, before + grown))
    assert grown < 1024, "the watcher made %d kB of the table resident" % grown


def send_duplicates(server, pid, n):
    """n one-byte uploads with id pid at once, each on its own connection."""
    request = ("POST /redirected.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Progress-ID: %s\r\n"
               "Connection: close\r\nContent-Length: 1\r\n\r\nx" % pid).encode()
    socks = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(n)]
    for sock in socks:
        sock.sendall(request)
    for sock in socks:
        while sock.recv(65536):
            pass
        sock.close()


def test_duplicate_uploads_log_one_line_a_second_with_the_count_left_out(make_server):
    server = make_server('upload-progress.progress-url = "/progress"\n')
    pid = IDS[6]
    held = SlowUpload(server.port, "/sink.cgi", size=10, pid=pid)
    server.wait_for(pid, lambda a: a["state"] == "uploading")
    def lines():
        return [line for line in server.error_log().splitlines()
                if "id %s is in use by an upload in flight" % pid in line]
    started = time.monotonic()
    duplicates = 2000
    for _ in range(duplicates // 100):
        send_duplicates(server, pid, 100)

    def logged():
        """One more duplicate; whether it was logged (in a new second: its
        line carries the count left out before it)."""
        nonlocal duplicates
        before = len(lines())
        send_duplicates(server, pid, 1)
        duplicates += 1
        return len(lines()) > before
    wait_until(logged, what="a duplicate logged in a new second", interval=0.1)
    seconds = time.monotonic() - started
    held.send(10)
    assert held.response()[0] == 200
    held.close()
    left_out = sum(int(m) for m in re.findall(r"\((\d+) more like this not logged\)",
                                              "\n".join(lines())))
    print("%d duplicate uploads in %.1f s: %d lines, %d left out"
          % (duplicates, seconds, len(lines()), left_out))
    assert len(lines()) + left_out == duplicates
    # at most one line a second
    assert 2 <= len(lines()) <= int(seconds) + 2, lines()


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace (scripts/setup-deps)")
def test_the_hash_key_is_drawn_without_waiting_for_the_kernels_pool(tmp_path):
    # early at boot getrandom() without GRND_NONBLOCK would hold start-up
    chroot = ["chroot", str(ROOT)] if ROOT else []   # strace stays on this system
    glibc = subprocess.run([*chroot, "getconf", "GNU_LIBC_VERSION"],
                           capture_output=True, text=True).stdout.split()[-1]
    if tuple(map(int, glibc.split("."))) >= (2, 41):
        pytest.skip("glibc %s answers getrandom() in the vDSO, with no system call for "
                    "strace to see (the same source is checked on bookworm's 2.36)" % glibc)
    server = Lighttpd(tmp_path, 'upload-progress.progress-url = "/progress"\n')
    cmd = server.command(server.write_config())
    cmd[cmd.index("-D")] = "-tt"        # load the modules, set defaults, exit
    env = server.env()
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"  # none under ptrace
    run = subprocess.run(["strace", "-f", "-e", "trace=getrandom", *chroot, *cmd], env=env,
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    key_draws = re.findall(r"getrandom\(.*, 16, (\w+)\)", run.stderr)
    assert key_draws == ["GRND_NONBLOCK"], run.stderr


def test_without_the_lock_uploads_are_served_untracked_and_polls_answer_503(tmp_path):
    server = ShimmedLighttpd(tmp_path, 'upload-progress.progress-url = "/progress"\n',
                             broken_lock=True)
    server.start()
    try:
        status, _, body = server.request("POST", "/sink.cgi", body=b"x" * 100,
                                         headers={"X-Progress-ID": IDS[7]})
        assert status == 200 and b"read 100 bytes" in body
        status, _, body = server.request("GET", "/progress?X-Progress-ID=" + IDS[7])
        assert status == 503
        assert json.loads(body) == {
            "error": "unavailable: the table of uploads cannot be read; try again"}
        deadline = time.monotonic() + 5   # the once-a-second trigger sums them up
        while "could not take the table's lock" not in server.error_log():
            assert time.monotonic() < deadline, server.error_log()
            time.sleep(0.1)
    finally:
        server.stop()
    assert server.lock_report()[1], "the shim failed no lock call"
    assert re.search(r"upload-progress: \d+ calls could not take the table's lock; "
                     r"their uploads and polls went without the table", server.error_log())


@pytest.mark.lighttpd_interface
def test_config_integers_of_2_to_the_32_wrap_in_lighttpds_parser(tmp_path):
    # documented beside the keys: the module only sees the wrapped value
    code, out = Lighttpd(tmp_path, "upload-progress.max-entries = 4294967296\n").run_to_exit()
    assert code != 0
    assert "upload-progress.max-entries must be from 1 to 67108864, not 0" in out, out
