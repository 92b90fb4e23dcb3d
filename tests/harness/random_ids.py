"""Polls or event streams of random ids that nobody uses, by wrk and
random_ids.lua: what a client costs the table with lookups of unknown ids.
Shared by bench/memory.py (line m) and tests/integration/test_memory.py."""
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

WRK = shutil.which("wrk")
SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "random_ids.lua"


def ask_random_ids(port, n, conns, depth, kind, done, most_seconds=300):
    """n polls or event streams (kind "poll" or "stream") at
    127.0.0.1:port/progress, pipelined depth at a time on conns connections;
    done is a path for the script's "all answered" file.  Returns (answers,
    wrk's duration text, wrk's output)."""
    # wrk counts a request that has waited --timeout (2 s unless told) as
    # a socket error: a wall-clock limit that a loaded machine (two CPUs,
    # the ASan build, every group at once) overran 82 times in 500,000
    # streams.  A minute still counts a request that is never answered.
    cmd = [WRK, "-t1", "-c%d" % conns, "-d%ds" % most_seconds, "--timeout", "60s",
           "-s", str(SCRIPT),
           "http://127.0.0.1:%d/progress" % port, "--", str(n), str(depth), kind, str(done)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        while proc.poll() is None and not Path(done).exists():
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGINT)      # ends its timed run
        out = proc.communicate(timeout=60)[0]
    summary = re.search(r"(\d+) requests in (\S+),", out)
    if not summary:
        raise RuntimeError("%s:\n%s" % (" ".join(cmd), out))
    return int(summary.group(1)), summary.group(2), out


def rss_shmem_kb(pid):
    """Shared memory resident in pid's page tables, in kB."""
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("RssShmem:"):
                return int(line.split()[1])
    raise RuntimeError("no RssShmem in /proc/%d/status" % pid)
