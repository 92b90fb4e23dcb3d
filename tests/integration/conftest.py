import os
import re
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import lighty  # noqa: E402
from lighty import Lighttpd, root_of_tests  # noqa: E402


@pytest.fixture(autouse=True)
def judge_every_server():
    """After each test, stops and judges (Lighttpd.stop) every server it
    started and left running, however it started them."""
    yield
    faults = []
    while lighty.running:
        server = lighty.running[-1]
        try:
            server.stop()
        except AssertionError as fault:
            faults.append("%s: %s" % (server.dir, fault))
    assert not faults, "\n\n".join(faults)


def skip_several_workers_under_valgrind(config):
    """Under valgrind, a server.max-worker > 1 server is not started: its
    workers start so slowly on a loaded machine that a SIGTERM can come
    before they take it, and lighttpd then never stops.  The plain, ASan
    and release runs have every multi-worker test."""
    workers = re.search(r"server\.max-worker\s*=\s*(\d+)", config)
    if os.environ.get("UPLOADPROGRESS_VALGRIND") and workers and int(workers.group(1)) > 1:
        pytest.skip("several workers are not run under valgrind")


@pytest.fixture
def make_server(tmp_path):
    """make_server(config_text, modules=..., expect_exit=...) -> a started
    Lighttpd, stopped and judged after the test (Lighttpd.stop)."""
    servers = []

    def make(config="", **kw):
        skip_several_workers_under_valgrind(config)
        server = Lighttpd(tmp_path / ("s%d" % len(servers)), config, **kw)
        server.dir.mkdir()
        servers.append(server)
        return server.start()

    yield make
    faults = []
    for server in servers:
        try:
            server.stop()
        except AssertionError as fault:
            faults.append("%s: %s" % (server.dir, fault))
    assert not faults, "\n\n".join(faults)


@pytest.fixture
def make_backend():
    """make_backend("http" | "fastcgi") -> a started harness.backends.Backend,
    stopped after the test."""
    from harness.backends import Backend
    backends = []

    def make(kind):
        backends.append(Backend(kind))
        return backends[-1]

    yield make
    for backend in backends:
        backend.stop()


@pytest.hookimpl(tryfirst=True)   # before pytest reads --basetemp
def pytest_configure(config):
    # With UPLOADPROGRESS_ROOT, every tmp_path lies inside the root, where
    # the chrooted lighttpd sees it (unless --basetemp says where).
    if root_of_tests() and not config.option.basetemp:
        config.option.basetemp = str(root_of_tests())
    config.addinivalue_line(
        "markers", "many_uploads: 1,000 uploads at once (deselect with -m 'not many_uploads')")
    config.addinivalue_line(
        "markers", "lighttpd_interface: checks a way the module meets lighttpd (a hook, a kind of"
        " request, a key lighttpd parses, another module, a restart, workers); the subset run"
        " against a lighttpd the whole suite already ran on (tests/README.md)")
