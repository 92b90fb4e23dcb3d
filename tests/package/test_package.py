"""The .deb of scripts/package, in a fresh copy of its release's root, as a
Debian user meets it: dpkg -i, lighty-enable-mod, the root's stock lighttpd
with the stock lighttpd.conf, an upload polled exactly, lighty-disable-mod,
dpkg --purge.  Bad input: a .deb built for another lighttpd is refused.

Environment (scripts/test sets it): PACKAGE_ROOT, the release's root from
scripts/build-for; PACKAGE_DEB, the .deb built in it; PACKAGE_OTHER_DEB, a
.deb built for another lighttpd version.  Run as root (chroot, dpkg)."""
import ctypes
import fcntl
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "docs"))
from check_docs import Page, anchors, broken_links  # noqa: E402
from lighty import Lighttpd, free_port, piecewise  # noqa: E402

PACKAGE = "lighttpd-mod-uploadprogress"
CONF = "05-uploadprogress.conf"
STOCK_CONF = "/etc/lighttpd/lighttpd.conf"
HERE = Path(__file__).resolve().parent


def env_path(name):
    value = os.environ.get(name)
    if not value:
        pytest.skip("%s is not set: scripts/test sets it (doc/building.md, Debian packages)" % name)
    return Path(value)


def own_loopback_network():
    """The stock lighttpd.conf also listens on [::]:80 (use-ipv6.pl runs
    before any override can change server.port): give this process and the
    servers it starts a network of their own, with only a loopback."""
    clone_newnet = 0x40000000
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(clone_newnet) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")
    siocsifflags, iff_up = 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s, siocsifflags, struct.pack("16sh", b"lo", iff_up))


def in_root(root, *cmd, check=True):
    return subprocess.run(["chroot", str(root), *cmd], check=check, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)


class StockLighttpd(Lighttpd):
    """The root's own /usr/sbin/lighttpd with the stock lighttpd.conf; only
    a conf-enabled file of ours moves it to a loopback port."""

    def __init__(self, root):
        super().__init__(root)
        self.errorlog = root / "var/log/lighttpd/error.log"

    def write_config(self):
        self.port = free_port()
        (self.dir / "etc/lighttpd/conf-enabled/99-test-port.conf").write_text(
            'server.bind = "127.0.0.1"\nserver.port := %d\n' % self.port)
        return STOCK_CONF

    def command(self, conf):
        return ["chroot", str(self.dir), "/usr/sbin/lighttpd", "-D", "-f", conf]

    def enter(self):
        """command() enters the root itself, whatever UPLOADPROGRESS_ROOT says."""
        return None


@pytest.fixture(scope="module")
def root():
    """A fresh copy of the release's root, deleted afterwards."""
    source = env_path("PACKAGE_ROOT")
    env_path("PACKAGE_DEB")
    own_loopback_network()
    copy = source.with_name(source.name + ".package-test")
    remove = ["rm", "-rf", "--one-file-system", str(copy)]
    subprocess.run(remove, check=True)
    # -x: not into a mount that a concurrent scripts/build-for holds (/src)
    subprocess.run(["cp", "-a", "-x", "--reflink=auto", str(source), str(copy)], check=True)
    yield copy
    subprocess.run(remove, check=True)


@pytest.fixture
def server(root):
    servers = []

    def start():
        servers.append(StockLighttpd(root).start())
        return servers[-1]

    yield start
    for s in servers:
        s.stop()


def deb_in_root(root, deb):
    """Copies a .deb into the root; its path as the root sees it."""
    shutil.copy(deb, root / "tmp" / Path(deb).name)
    return "/tmp/" + Path(deb).name


def package_files(root):
    out = in_root(root, "dpkg-query", "-L", PACKAGE).stdout.split("\n")
    return [p for p in out if p.startswith("/")]


def test_install_puts_module_conffile_and_docs_in_place(root):
    result = in_root(root, "dpkg", "-i", deb_in_root(root, os.environ["PACKAGE_DEB"]))
    assert "Setting up %s" % PACKAGE in result.stdout
    files = package_files(root)
    for path in ("/usr/lib/lighttpd/mod_uploadprogress.so",
                 "/etc/lighttpd/conf-available/" + CONF,
                 "/usr/share/doc/%s/copyright" % PACKAGE,
                 "/usr/share/doc/%s/doc/mod_uploadprogress.md" % PACKAGE,
                 "/usr/share/doc/%s/examples/lighttpd.conf" % PACKAGE):
        assert path in files
        assert (root / path.lstrip("/")).is_file(), path
    conffiles = (root / ("var/lib/dpkg/info/%s.conffiles" % PACKAGE)).read_text().split()
    assert conffiles == ["/etc/lighttpd/conf-available/" + CONF]


def test_installed_docs_have_no_dangling_link(root):
    """Every relative link of every installed page (README.md, doc/*.md)
    resolves among the installed files, #anchors included."""
    docs = root / ("usr/share/doc/" + PACKAGE)
    pages = sorted(docs.rglob("*.md")) + sorted(docs.rglob("*.md.gz"))
    assert docs / "README.md" in pages and docs / "doc/client.md" in pages, pages
    dangling = []
    for page in pages:
        if page.suffix == ".gz":
            dangling.append("%s is compressed: its links cannot be followed" % page)
            continue
        dangling += ["%s: %s" % (page.relative_to(docs), b) for b in broken_links(
            Page(page, page), lambda p: p.exists(),
            lambda p: anchors(p) if p.suffix == ".md" else set())]
    assert dangling == []


def test_enabled_module_tracks_an_upload_exactly(root, server):
    result = in_root(root, "lighty-enable-mod", "uploadprogress", "cgi")
    assert "Enabling uploadprogress: ok" in result.stdout, result.stdout
    shutil.copy(HERE.parent / "integration/www/sink.cgi", root / "usr/lib/cgi-bin/sink.cgi")
    s = server()
    pid = uuid.uuid4().hex
    status, body = piecewise(s, pid, [1000, 30000, 70000, 99000], path="/cgi-bin/sink.cgi")
    assert (status, body) == (200, b"read 200000 bytes\n")
    answer = s.wait_for(pid, lambda a: a["state"] != "uploading")[-1]
    assert answer == {"state": "done", "received": 200000, "size": 200000}


def test_disabled_module_answers_no_polls(root, server):
    result = in_root(root, "lighty-disable-mod", "uploadprogress")
    assert "Disabling uploadprogress" in result.stdout, result.stdout
    s = server()
    assert s.request("POST", "/cgi-bin/sink.cgi", body=b"x" * 10)[0] == 200
    status, _, _ = s.request("GET", "/progress?X-Progress-ID=" + uuid.uuid4().hex)
    assert status == 404


def test_purge_leaves_no_file_of_the_package(root):
    in_root(root, "lighty-enable-mod", "uploadprogress")
    link = root / "etc/lighttpd/conf-enabled" / CONF
    assert link.is_symlink()
    docs = "/usr/share/doc/" + PACKAGE
    ours = [p for p in package_files(root)
            if p.startswith(docs) or not (root / p.lstrip("/")).is_dir()]
    assert len(ours) > 20
    in_root(root, "dpkg", "--purge", PACKAGE)
    left = [p for p in ours if os.path.lexists(root / p.lstrip("/"))]
    assert left == []
    assert not os.path.lexists(link)
    assert in_root(root, "dpkg-query", "-W", PACKAGE, check=False).returncode != 0


def test_package_for_another_lighttpd_is_refused(root):
    other = env_path("PACKAGE_OTHER_DEB")
    depends = subprocess.run(["dpkg-deb", "-f", str(other), "Depends"], check=True,
                             text=True, stdout=subprocess.PIPE).stdout
    wanted = re.search(r"lighttpd \(= [^)]*\)", depends).group(0)
    result = in_root(root, "dpkg", "-i", deb_in_root(root, other), check=False)
    assert result.returncode != 0
    assert "dependency problems" in result.stdout, result.stdout
    assert "depends on %s; however" % wanted in result.stdout, result.stdout
    state = in_root(root, "dpkg-query", "-W", "-f=${Status}", PACKAGE).stdout
    assert state != "install ok installed", state
