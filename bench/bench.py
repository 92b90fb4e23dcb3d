"""Benchmarks of mod_uploadprogress against nginx's and Apache's upload
progress modules, on 127.0.0.1, one worker process per server.

Started by bench/run (which builds the module first); see doc/benchmarks.md.
Every server runs from a throw-away directory in its own session and is
stopped on the way out, whatever happens (an error, Ctrl-C, SIGTERM): the
servers are the shared harness's (tests/harness), as the tests' are."""
import argparse
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TOP / "tests"))   # the harness

import entries  # noqa: E402
import instructions  # noqa: E402
import memory  # noqa: E402
import streams  # noqa: E402
import throughput  # noqa: E402
from harness import lighttpd as harness_lighttpd, processes  # noqa: E402
from servers import body_sink, pin_clients, sink  # noqa: E402
from table import print_table, write_doc  # noqa: E402

ALL = "123456789Wmti"


def options():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="a second or so per measurement, small entry counts")
    ap.add_argument("--module", default=str(TOP / "build" / "mod_uploadprogress.so"))
    ap.add_argument("--table-bench", default=str(TOP / "build" / "table_bench"))
    ap.add_argument("--only", default=ALL,
                    help="which measurements to run (digits, W = 4 workers' polls and "
                         "the lock, m = memory of random ids, t = table_bench, "
                         "i = instruction counts)")
    ap.add_argument("--instructions", action="store_true",
                    help="the instruction counts only (as --only i)")
    ap.add_argument("--write-doc", action="store_true",
                    help="write the table into doc/benchmarks.md (a full run always does)")
    cfg = ap.parse_args()
    cfg.module = str(Path(cfg.module).resolve())
    if cfg.instructions:
        cfg.only = "i"
    if cfg.quick:
        cfg.seconds, cfg.reps, cfg.rounds, cfg.upload_mib = 1, 1, 2, 16
        cfg.entries, cfg.burst, cfg.fresh_seconds = (10, 1000), 0.5, 2
        cfg.latency_workers, cfg.latency_seconds = (1,), 3
        cfg.uploads, cfg.watchers, cfg.cost_seconds, cfg.idle_seconds = 10, 100, 3, 3
        cfg.windows, cfg.cg_requests, cfg.cg_reps, cfg.cg_upload_mib = 1, 200, 1, 4
        cfg.random_ids, cfg.crowd = 50000, 200
    else:
        cfg.seconds, cfg.reps, cfg.rounds, cfg.upload_mib = 5, 3, 5, 1024
        cfg.entries, cfg.burst, cfg.fresh_seconds = (10, 10000, 1000000), 1.0, 5
        cfg.latency_workers, cfg.latency_seconds = (1, 4), 10
        cfg.uploads, cfg.watchers, cfg.cost_seconds, cfg.idle_seconds = 10, 1000, 60, 10
        cfg.windows, cfg.cg_requests, cfg.cg_reps, cfg.cg_upload_mib = 5, 2000, 2, 64
        cfg.random_ids, cfg.crowd = 500000, 1000
    cfg.write_doc = cfg.write_doc or (not cfg.quick and cfg.only == ALL)
    return cfg


def how_it_ran(cfg):
    """The options of the run, as the doc quotes them."""
    return "".join([" --quick" if cfg.quick else "",
                    " --only %s" % cfg.only if cfg.only != ALL else ""])


def measure(cfg, root, rows):
    with body_sink(root) as body, sink(root) as fast:
        steps = {"1": lambda: throughput.poll_throughput(cfg, root, body, rows),
                 "2": lambda: throughput.cost_to_others(cfg, root, rows),
                 "3": lambda: throughput.upload_speed(cfg, root, body, rows),
                 "4": lambda: entries.scale(cfg, root, fast.socket, rows),
                 "5": lambda: entries.expiry_stall(cfg, root, fast.socket, rows),
                 "6": lambda: streams.freshness(cfg, root, body, rows),
                 "7": lambda: streams.event_latency(cfg, root, body, rows),
                 "8": lambda: streams.stream_cost(cfg, root, body, rows),
                 "9": lambda: streams.idle_wakeups(cfg, root, body, rows),
                 "W": lambda: (throughput.busy_workers(cfg, root, body, rows),
                               throughput.lock_acquisitions(cfg, root, body, rows)),
                 "m": lambda: memory.memory_random_ids(cfg, root, rows),
                 "t": lambda: entries.table_bench(cfg, rows),
                 "i": lambda: instructions.instructions(cfg, root, body, fast.socket, rows)}
        for key in cfg.only:
            steps[key]()


def stop_everything():
    """Every server still running: the lighttpds (judged; a fault is
    printed) and the others."""
    for server in list(harness_lighttpd.running):
        try:
            server.stop()
        except AssertionError as fault:
            print("%s: %s" % (server.dir, fault), file=sys.stderr)
    processes.stop_all()


def main():
    cfg = options()
    pin_clients()

    def on_signal(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    root = tempfile.mkdtemp(prefix="uploadprogress-bench.")
    os.chmod(root, 0o755)
    rows = []
    try:
        measure(cfg, root, rows)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        stop_everything()
        if os.environ.get("BENCH_KEEP"):
            print("kept", root, file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    print_table(rows)
    if cfg.write_doc:
        write_doc(rows, how_it_ran(cfg))
    return 0


if __name__ == "__main__":
    sys.exit(main())
