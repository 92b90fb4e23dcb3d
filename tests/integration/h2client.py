"""A small HTTP/2 client over hyper-h2 with exact control of the frames:
headers, DATA piece by piece (within the flow-control windows lighttpd
grants), several streams on one connection, RST_STREAM.  Over h2c with
prior knowledge, or TLS with ALPN h2."""
import json
import socket
import ssl

import h2.config
import h2.connection
import h2.errors
import h2.events


class H2Client:
    def __init__(self, port, tls=False):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE   # the test's throw-away certificate
            ctx.set_alpn_protocols(["h2"])
            sock = ctx.wrap_socket(sock, server_hostname="127.0.0.1")
            assert sock.selected_alpn_protocol() == "h2"
        self.sock = sock
        self.scheme = "https" if tls else "http"
        self.authority = "127.0.0.1:%d" % port
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.streams = {}
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def pump(self):
        """Reads what the server sent once and files it by stream."""
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("server closed the HTTP/2 connection")
        for ev in self.conn.receive_data(data):
            st = self.streams.get(getattr(ev, "stream_id", None))
            if isinstance(ev, h2.events.ResponseReceived):
                st["status"] = int(dict(ev.headers)[":status"])
                st["content-type"] = dict(ev.headers).get("content-type")
            elif isinstance(ev, h2.events.DataReceived):
                st["body"] += ev.data
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                st["ended"] = True
            elif isinstance(ev, h2.events.StreamReset) and st is not None:
                st["ended"] = st["reset"] = True
        self.flush()

    def open(self, method, path, headers=(), end_stream=False):
        sid = self.conn.get_next_available_stream_id()
        self.streams[sid] = {"status": None, "body": b"", "ended": False, "reset": False,
                             "sent": 0}
        self.conn.send_headers(sid, [(":method", method), (":path", path),
                                     (":scheme", self.scheme),
                                     (":authority", self.authority), *headers],
                               end_stream=end_stream)
        self.flush()
        return sid

    def upload(self, path, pid=None, size=None, method=None):
        """Opens an upload stream (content-length only if size is given).
        Without a size it is a PUT: lighttpd 1.4.69 refuses an HTTP/2 POST
        without content-length (411)."""
        headers = []
        if pid:
            headers.append(("x-progress-id", pid))
        if size is not None:
            headers.append(("content-length", str(size)))
        method = method or ("POST" if size is not None else "PUT")
        return self.open(method, path, headers, end_stream=size == 0)

    def send(self, sid, n, end=False):
        """Sends n body bytes on stream sid as DATA frames, waiting for
        window updates as needed."""
        left = n
        while left:
            window = min(self.conn.local_flow_control_window(sid),
                         self.conn.max_outbound_frame_size)
            if window <= 0:
                self.pump()
                continue
            k = min(window, left)
            self.conn.send_data(sid, b"x" * k)
            self.flush()
            left -= k
        self.streams[sid]["sent"] += n
        if end:
            self.conn.end_stream(sid)
            self.flush()

    def sent(self, sid):
        return self.streams[sid]["sent"]

    def reset(self, sid):
        self.conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
        self.flush()

    def response(self, sid):
        """Waits for the whole response of stream sid: (status, body)."""
        st = self.streams[sid]
        while not st["ended"]:
            self.pump()
        return st["status"], st["body"]

    def get(self, path, headers=()):
        return self.response(self.open("GET", path, headers, end_stream=True))

    def poll(self, pid):
        """A poll over this HTTP/2 connection: (answer, raw body)."""
        status, body = self.get("/progress?X-Progress-ID=" + pid)
        assert status == 200, (status, body)
        return json.loads(body), body

    def close(self):
        """Says GOAWAY and waits until lighttpd has closed its side, so that
        the connection is gone before the test stops the server."""
        try:
            self.conn.close_connection()
            self.flush()
            self.sock.shutdown(socket.SHUT_WR)
            while self.sock.recv(65536):
                pass
        except OSError:
            pass
        self.sock.close()
