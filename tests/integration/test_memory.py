"""What a client's lookups cost the server: polls and event streams of ids
that nobody uses make no page of the shared table resident (issue 18;
doc/security.md)."""
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from lighty import rss_shmem_kb

WRK = shutil.which("wrk")
SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "random_ids.lua"
REQUESTS = 500000


def ask_random_ids(server, n, conns, depth, kind, tmp_path, most_seconds=300):
    """n polls or event streams (kind) of random ids nobody uses, by wrk;
    returns how many were answered, and fails on any answer but 200."""
    done = tmp_path / ("%s.done" % kind)
    cmd = [WRK, "-t1", "-c%d" % conns, "-d%ds" % most_seconds, "-s", str(SCRIPT),
           "http://127.0.0.1:%d/progress" % server.port, "--", str(n), str(depth), kind,
           str(done)]
    wrk = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        while wrk.poll() is None and not done.exists():
            time.sleep(0.1)
    finally:
        wrk.send_signal(signal.SIGINT)      # ends its timed run
        out = wrk.communicate(timeout=60)[0]
    summary = re.search(r"(\d+) requests in (\S+),", out)
    assert summary, out
    assert "Non-2xx" not in out and "Socket errors" not in out, out
    print("%s: %s requests in %s" % (kind, summary.group(1), summary.group(2)))
    return int(summary.group(1))


@pytest.mark.skipif(WRK is None, reason="needs wrk (scripts/setup-deps)")
def test_polls_and_streams_of_unknown_ids_leave_the_table_unread(make_server, tmp_path):
    # 8,000,000 entries: a 640 MB mapping of which nothing but the header
    # is resident; remove-timeout 0 ends a stream of an id that never
    # begins at the stream's next tick, 10 ms on
    server = make_server('upload-progress.progress-url = "/progress"\n'
                         "upload-progress.max-entries = 8000000\n"
                         "upload-progress.remove-timeout = 0\n"
                         "upload-progress.push-interval = 10\n")
    before = rss_shmem_kb(server.proc.pid)
    polls = ask_random_ids(server, REQUESTS, 8, 16, "poll", tmp_path)
    streams = ask_random_ids(server, REQUESTS, 128, 1, "stream", tmp_path)
    grown = rss_shmem_kb(server.proc.pid) - before
    print("%d polls, %d event streams of unknown ids: RssShmem %d kB -> %d kB"
          % (polls, streams, before, before + grown))
    assert polls >= REQUESTS and streams >= REQUESTS
    assert grown < 1024, "the lookups made %d kB of the table resident" % grown
