"""Clients of the servers the harness starts, on 127.0.0.1: raw HTTP/1.x
requests and answers, an upload sent piece by piece, polling until an
answer holds."""
import re
import socket
import time


def wait_for(poll, predicate, timeout=5.0):
    """Calls poll() until predicate(its answer) holds; returns every answer seen."""
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        answer = poll()
        seen.append(answer)
        if predicate(answer):
            return seen
        if time.monotonic() > deadline:
            raise AssertionError("no matching answer; last %r" % (answer,))
        time.sleep(0.02)


def receive(sock, enough=lambda data: False):
    """What the peer sends until enough(all of it so far) or it closes."""
    data = b""
    while not enough(data):
        got = sock.recv(65536)
        if not got:
            break
        data += got
    return data


def read_head(sock):
    """Reads a request's or a response's head, until its blank line or
    until the peer closes: (head, what came with it)."""
    head, _, rest = receive(sock, lambda data: b"\r\n\r\n" in data).partition(b"\r\n\r\n")
    return head, rest


def read_response(sock):
    """Reads a response's head and what came with it: (status, rest)."""
    sock.settimeout(10)
    head, rest = read_head(sock)
    status = int(head.split(b" ", 2)[1]) if head else 0
    return status, rest


class SlowUpload:
    """An HTTP/1.1 upload whose body the test sends piece by piece."""

    def __init__(self, port, path, size=None, pid=None, via="header", chunked=False,
                 extra_headers=()):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.chunked = chunked
        self.sent = 0
        target = path
        lines = []
        if pid and via == "header":
            lines.append("X-Progress-ID: %s" % pid)
        elif pid:
            target += ("&" if "?" in path else "?") + "X-Progress-ID=" + pid
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        else:
            lines.append("Content-Length: %d" % size)
        lines.extend(extra_headers)
        head = "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n\r\n" % (target, "\r\n".join(lines))
        self.sock.sendall(head.encode())

    def send(self, n):
        if n == 0:
            return      # a chunk of size 0 would end a chunked body
        data = b"x" * n
        if self.chunked:
            data = b"%x\r\n%s\r\n" % (n, data)
        self.sock.sendall(data)
        self.sent += n

    def finish(self):
        """Ends a chunked body and reads the response: (status, body)."""
        if self.chunked:
            self.sock.sendall(b"0\r\n\r\n")
        return self.response()

    def response(self):
        return read_response(self.sock)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def raw_request(port, data):
    """Sends a whole request in one write (one packet on loopback);
    returns (status, what came with the head)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        return read_response(sock)


def read_to_close(sock):
    """Everything the peer sends until it closes: (head, body) of a response."""
    head, _, body = receive(sock).partition(b"\r\n\r\n")
    return head, body


def raw_get(port, target):
    """A GET with the request target as given, bytes and all: (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        head, body = read_to_close(s)
    return int(head.split(b" ", 2)[1]), body


def http_get(port, path):
    """A GET of path (text): (status, body as text)."""
    status, body = raw_get(port, path.encode())
    return status, body.decode(errors="replace")


def received_of(body):
    """The "received" count of an answer (JSON or JSONP text), or None."""
    m = re.search(r"""['"]received['"]\s*:\s*(-?\d+)""", body)
    return int(m.group(1)) if m else None
