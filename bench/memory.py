"""Line m: what lookups of unknown ids cost the shared table's memory."""
from harness.random_ids import ask_random_ids, rss_shmem_kb
from servers import lighttpd


def memory_random_ids(cfg, root, table):
    """m: what lookups of unknown ids cost the shared table: the growth of
    lighttpd's resident shared memory (RssShmem) over cfg.random_ids polls
    and as many event streams of random ids, 8,000,000 entries."""
    with lighttpd(root, cfg.module, max_entries=8000000, remove_timeout=0,
                  push_interval=10) as srv:
        before = rss_shmem_kb(srv.proc.pid)
        got = {kind: ask_random_ids(srv.port, cfg.random_ids, conns, depth, kind,
                                    srv.dir / (kind + ".done"))
               for kind, conns, depth in (("poll", 8, 16), ("stream", 128, 1))}
        grown = rss_shmem_kb(srv.proc.pid) - before
    table.append(("m RssShmem growth, random ids polled and streamed", "%d kB" % grown,
                  "%d polls in %s, %d event streams in %s; max-entries 8000000; "
                  "target < 1024 kB (issue 18: 623988 kB before)"
                  % (got["poll"][0], got["poll"][1], got["stream"][0], got["stream"][1])))
