"""The harness shared by tests/integration and bench/: it starts lighttpd
(lighttpd.py: and judges how it ended), nginx, Apache and the backends
(servers.py, backends.py, body_sink.py) on 127.0.0.1, each in its own
session (processes.py), and talks raw HTTP to them (clients.py).  Python's
standard library only: /usr/bin/python3 from a clean clone."""
