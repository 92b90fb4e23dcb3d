"""The shared table across graceful restarts and stops, worker deaths and
floods of duplicate uploads (issue 12)."""
import os
import signal
import time

import pytest

from lighty import Lighttpd, SlowUpload, module_path, workers_of

IDS = ["%032x" % (0x12f00 + n) for n in range(8)]


def lock_shim():
    """The LD_PRELOAD shim built beside the module (meson: lock_shim)."""
    shim = module_path().parent / "lock_shim.so"
    assert shim.exists(), "build the lock_shim target: %s" % shim
    return shim


class ShimmedLighttpd(Lighttpd):
    """lighttpd with the lock shim preloaded after any sanitizer runtime."""

    def __init__(self, workdir, config=""):
        super().__init__(workdir, config)
        self.lock_log = self.dir / "locks.log"

    def env(self):
        env = super().env()
        env["LD_PRELOAD"] = ":".join(p for p in (env.get("LD_PRELOAD"), str(lock_shim())) if p)
        env["LOCK_SHIM_LOG"] = str(self.lock_log)
        return env

    def lock_report(self):
        """(lock calls counted by processes that exited, failed calls)."""
        lines = self.lock_log.read_text().splitlines() if self.lock_log.exists() else []
        calls = sum(int(line.split()[2]) for line in lines if line.split()[1] == "calls")
        failed = [line for line in lines if line.split()[1] != "calls"]
        return calls, failed


def wait_for_workers(server, n):
    deadline = time.monotonic() + 10
    while len(workers_of(server)) < n:
        assert time.monotonic() < deadline
        time.sleep(0.05)


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
    finally:
        server.stop()
    calls, failed = server.lock_report()
    assert calls > 0, "the shim saw no lock call"
    assert failed == [], failed
    assert "could not take the table's lock" not in server.error_log()
