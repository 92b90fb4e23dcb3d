"""Many uploads at once: 1,000 slow uploads from one client process, each
with its own id, polled throughout (never ahead of the bytes sent, and
polled again until exact after each piece), then swept away.

Deselect with -m "not many_uploads" if a run must be short."""
import asyncio
import json
import re

import pytest

from lighty import counts, make_ids, wait_until

UPLOADS = 1000
PIECES = [1000, 2000, 3000, 500]
SIZE = sum(PIECES)
POLLERS = 8
REMOVE_TIMEOUT = 3
DEADLINE = 240   # seconds for the whole test: it stops by itself


def ids():
    return make_ids(0xc0ffee000, UPLOADS)


async def upload_head(port, pid):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(("POST /up/sink HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Progress-ID: %s\r\n"
                  "Content-Length: %d\r\nConnection: close\r\n\r\n" % (pid, SIZE)).encode())
    await writer.drain()
    return reader, writer


async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    return status, await reader.readexactly(length)


class Poller:
    """One keep-alive connection that polls."""

    async def open(self, port):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        return self

    async def poll(self, pid):
        self.writer.write(("GET /progress?X-Progress-ID=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                           % pid).encode())
        await self.writer.drain()
        status, body = await read_response(self.reader)
        assert status == 200
        return json.loads(body)


async def poll_all(pollers, pids, check):
    """Polls every id once, spread over the pollers; check(pid, answer)
    returns whether the answer is final for this round (else it is polled
    again)."""
    polls = 0

    async def worker(poller, share):
        nonlocal polls
        for pid in share:
            while True:
                answer = await poller.poll(pid)
                polls += 1
                if check(pid, answer):
                    break
                await asyncio.sleep(0.01)

    await asyncio.gather(*(worker(p, pids[i::len(pollers)]) for i, p in enumerate(pollers)))
    return polls


async def many_uploads(port):
    pids = ids()
    conns = {}
    for pid in pids:   # one by one: the listen backlog is not the subject here
        conns[pid] = await upload_head(port, pid)
    pollers = [await Poller().open(port) for _ in range(POLLERS)]
    sent = dict.fromkeys(pids, 0)
    polls = 0

    def exact_or_behind(pid, answer):
        # every answer: uploading, the right size, never ahead of the bytes
        # sent; the round ends for this id when it is exact
        if sent[pid] == 0:
            assert answer["state"] in ("starting", "uploading"), answer
            return counts(answer) == {"state": "uploading", "received": 0, "size": SIZE}
        assert answer["state"] == "uploading" and answer["size"] == SIZE, answer
        assert answer["received"] <= sent[pid], (pid, answer, sent[pid])
        return answer["received"] == sent[pid]

    polls += await poll_all(pollers, pids, exact_or_behind)
    for piece in PIECES[:-1]:
        for pid in pids:
            conns[pid][1].write(b"x" * piece)
            sent[pid] += piece
        await asyncio.gather(*(w.drain() for _, w in conns.values()))
        polls += await poll_all(pollers, pids, exact_or_behind)

    def done(pid, answer):
        # the response is out; the request's end can come a moment later
        if answer["state"] == "uploading":
            assert counts(answer) == {"state": "uploading", "received": SIZE, "size": SIZE}, \
                (pid, answer)
            return False
        assert answer == {"state": "done", "received": SIZE, "size": SIZE}, (pid, answer)
        return True

    # the last piece, in batches so the one backend process is not swamped;
    # each batch is polled at once, well within its remove-timeout
    for start in range(0, UPLOADS, 100):
        batch = pids[start:start + 100]
        for pid in batch:
            conns[pid][1].write(b"x" * PIECES[-1])
            sent[pid] += PIECES[-1]
        for pid in batch:
            status, body = await read_response(conns[pid][0])
            assert status == 200 and body == b"read %d bytes\n" % SIZE
            conns[pid][1].close()
        polls += await poll_all(pollers, batch, done)
    for p in pollers:
        p.writer.close()
    return polls


@pytest.mark.many_uploads
def test_a_thousand_slow_uploads_at_once_polls_never_ahead_reach_each_piece_then_swept(
        make_server, make_backend):
    backend = make_backend("http")
    server = make_server(
        'upload-progress.progress-url = "/progress"\n'
        'upload-progress.remove-timeout = %d\n'
        'upload-progress.debug = "enable"\n'
        "server.max-fds = 16384\n"   # 1.4.85 with h2 on: a tenth for connections
        "server.max-connections = 4096\n"
        "server.max-keep-alive-requests = 65535\n"   # the most 1.4.79 takes
        "server.stream-request-body = 0\n"
        'proxy.server = ( "/up/" => (( "host" => "127.0.0.1", "port" => %d )) )\n'
        % (REMOVE_TIMEOUT, backend.port), modules=("mod_uploadprogress", "mod_proxy"))
    # (each round of polls ends only when every id is exact: many_uploads
    # fails on an answer ahead, a wrong state, or DEADLINE)
    polls = asyncio.run(asyncio.wait_for(many_uploads(server.port), DEADLINE))
    print("%d polls, %d more than one a piece" % (polls, polls - UPLOADS * (len(PIECES) + 1)))
    # every entry expires remove-timeout seconds after its upload ended; the
    # once-a-second sweep frees them all and the table is empty again
    swept = re.compile(r"swept (\d+) finished uploads; (\d+) entries left")

    def all_swept():
        found = swept.findall(server.error_log())
        return found if found and sum(int(n) for n, _ in found) == UPLOADS else None
    found = wait_until(all_swept, timeout=60, what="the sweep of every upload", interval=0.2)
    assert found[-1][1] == "0", found
    log = server.error_log()
    assert log.count("upload-progress: tracking ") == UPLOADS
    assert log.count(" state done status 200 received %d size %d" % (SIZE, SIZE)) == UPLOADS
    for pid in ids()[::97]:
        assert server.poll(pid)[1] == b'{"state":"starting"}'
