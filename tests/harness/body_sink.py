"""A body-reading backend for the benchmarks (servers.BodySink), run as
`python3 body_sink.py PORT`: for each request on 127.0.0.1:PORT it reads
the headers and the whole Content-Length body, then answers 200 and
closes.  One thread per connection."""
import socket
import sys
import threading

from clients import read_head   # (this folder is the script's path)


def serve(conn):
    with conn:
        buf = bytearray(1 << 20)
        head, rest = read_head(conn)
        if not head:
            return
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        left = length - len(rest)
        view = memoryview(buf)
        while left > 0:
            n = conn.recv_into(view, min(left, len(buf)))
            if n == 0:
                return
            left -= n
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")


def main():
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", int(sys.argv[1])))
    srv.listen(1024)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
