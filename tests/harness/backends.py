"""Real backends for lighttpd's mod_proxy and mod_fastcgi, run by the tests
as processes of their own on 127.0.0.1:

    python3 tests/harness/backends.py http|fastcgi

prints the port it listens on, then serves until killed.  Both read the
whole request body and answer "read N bytes"; for a path ending in /die
they read the body and then close the connection without an answer, as a
backend that crashes does."""
import os
import socket
import struct
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import StreamRequestHandler, ThreadingTCPServer

HERE = os.path.dirname(os.path.abspath(__file__))


# --- HTTP --------------------------------------------------------------------

class HttpSink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            n = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return n
                n += len(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length", 0))
        n = 0
        while n < length:
            got = self.rfile.read(min(65536, length - n))
            if not got:
                break
            n += len(got)
        return n

    def do_POST(self):
        n = self.read_body()
        if self.path.split("?")[0].endswith("/die"):
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        body = b"read %d bytes\n" % n
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_PUT = do_POST

    def log_message(self, *args):
        pass


class QuietHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


# --- FastCGI (the record protocol, responder role only) ----------------------

FCGI_BEGIN_REQUEST, FCGI_ABORT_REQUEST, FCGI_END_REQUEST = 1, 2, 3
FCGI_PARAMS, FCGI_STDIN, FCGI_STDOUT = 4, 5, 6
FCGI_GET_VALUES, FCGI_GET_VALUES_RESULT, FCGI_UNKNOWN_TYPE = 9, 10, 11
HEADER = struct.Struct(">BBHHBx")


def fcgi_record(rtype, req_id, content=b""):
    out = b""
    while True:  # records hold at most 65535 bytes
        part, content = content[:65535], content[65535:]
        out += HEADER.pack(1, rtype, req_id, len(part), 0) + part
        if not content:
            return out


def fcgi_pairs(data):
    """Name-value pairs of a PARAMS stream."""
    pairs, i = {}, 0
    while i < len(data):
        lens = []
        for _ in range(2):
            if data[i] & 0x80:
                lens.append(struct.unpack(">I", data[i:i + 4])[0] & 0x7FFFFFFF)
                i += 4
            else:
                lens.append(data[i])
                i += 1
        name = data[i:i + lens[0]]
        i += lens[0]
        pairs[name.decode("latin-1")] = data[i:i + lens[1]].decode("latin-1")
        i += lens[1]
    return pairs


class FastCgiSink(StreamRequestHandler):
    def record(self):
        head = self.rfile.read(HEADER.size)
        if len(head) < HEADER.size:
            return None
        _, rtype, req_id, clen, plen = HEADER.unpack(head)
        content = self.rfile.read(clen)
        self.rfile.read(plen)
        return rtype, req_id, content

    def handle(self):
        keep = True
        while keep:
            params, body_bytes, req_id = b"", 0, None
            while True:
                rec = self.record()
                if rec is None:
                    return
                rtype, rid, content = rec
                if rtype == FCGI_GET_VALUES:
                    self.wfile.write(fcgi_record(FCGI_GET_VALUES_RESULT, 0))
                elif rtype == FCGI_BEGIN_REQUEST:
                    req_id, keep = rid, bool(content[2] & 1)
                elif rtype == FCGI_PARAMS:
                    params += content
                elif rtype == FCGI_STDIN:
                    if not content:
                        break
                    body_bytes += len(content)
                elif rtype == FCGI_ABORT_REQUEST:
                    return
                else:
                    self.wfile.write(fcgi_record(FCGI_UNKNOWN_TYPE, 0, bytes([rtype]) + bytes(7)))
            env = fcgi_pairs(params)
            uri = env.get("REQUEST_URI", "").split("?")[0]
            if uri.endswith("/die"):
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            out = (b"Status: 200\r\nContent-Type: text/plain\r\n\r\n"
                   b"read %d bytes\n" % body_bytes)
            self.wfile.write(fcgi_record(FCGI_STDOUT, req_id, out)
                             + fcgi_record(FCGI_STDOUT, req_id)
                             + fcgi_record(FCGI_END_REQUEST, req_id, bytes(8)))
            self.wfile.flush()


class QuietTcpServer(ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


# --- running one as a process -----------------------------------------------

class Backend:
    """A backend process of kind "http" or "fastcgi" on a free port."""

    def __init__(self, kind):
        self.proc = subprocess.Popen([sys.executable, __file__, kind],
                                     stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def main(kind):
    if kind == "http":
        server = QuietHttpServer(("127.0.0.1", 0), HttpSink)
    else:
        server = QuietTcpServer(("127.0.0.1", 0), FastCgiSink)
    print(server.server_address[1], flush=True)
    # ends with the test run even if nobody stops it
    threading.Timer(600, os._exit, (0,)).start()
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1])
