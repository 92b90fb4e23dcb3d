import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from lighty import Lighttpd  # noqa: E402


@pytest.fixture
def make_server(tmp_path):
    """make_server(config_text, modules=...) -> a started Lighttpd, stopped after the test."""
    servers = []

    def make(config="", **kw):
        server = Lighttpd(tmp_path / ("s%d" % len(servers)), config, **kw)
        server.dir.mkdir()
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        out = server.stop()
        # sanitizer reports go to lighttpd's stderr, which the fixture keeps
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            assert marker not in out, out
        assert server.memory_errors() == ""
