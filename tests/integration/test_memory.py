"""What a client's lookups cost the server: polls and event streams of ids
that nobody uses make no page of the shared table resident (issue 18;
doc/security.md)."""
import pytest

from lighty import ROOT  # (it puts tests/ on the path, for the harness)
from harness.random_ids import WRK, ask_random_ids, rss_shmem_kb

REQUESTS = 500000


def ask(server, kind, conns, depth, tmp_path):
    answers, took, out = ask_random_ids(server.port, REQUESTS, conns, depth, kind,
                                        tmp_path / (kind + ".done"))
    assert "Non-2xx" not in out and "Socket errors" not in out, out
    print("%d %ss of unknown ids in %s" % (answers, kind, took))
    return answers


@pytest.mark.skipif(WRK is None, reason="needs wrk (scripts/setup-deps)")
# (the table's pages are the module's alone, whatever lighttpd serves it:
# measured on the host's build, plain and ASan, not again in each root)
@pytest.mark.skipif(ROOT is not None, reason="the table's memory is measured on the host's build")
def test_polls_and_streams_of_unknown_ids_leave_the_table_unread(make_server, tmp_path):
    # 8,000,000 entries: a 640 MB mapping of which nothing but the header
    # is resident; remove-timeout 0 ends a stream of an id that never
    # begins at the stream's next tick, 10 ms on
    server = make_server('upload-progress.progress-url = "/progress"\n'
                         "upload-progress.max-entries = 8000000\n"
                         "upload-progress.remove-timeout = 0\n"
                         "upload-progress.push-interval = 10\n"
                         # 128 streams at once from one address (fair
                         # streams' own limit is tested in test_fair_streams)
                         "upload-progress.max-streams-per-client = 1024\n")
    before = rss_shmem_kb(server.proc.pid)
    polls = ask(server, "poll", 8, 16, tmp_path)
    streams = ask(server, "stream", 128, 1, tmp_path)
    grown = rss_shmem_kb(server.proc.pid) - before
    print("RssShmem %d kB -> %d kB" % (before, before + grown))
    assert polls >= REQUESTS and streams >= REQUESTS
    assert grown < 1024, "the lookups made %d kB of the table resident" % grown
