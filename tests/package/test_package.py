"""The .deb of scripts/package, in a fresh copy of its release's root, as a
Debian user meets it: dpkg -i, lighty-enable-mod, the root's stock lighttpd
with the stock lighttpd.conf, an upload polled exactly, lighty-disable-mod,
dpkg --purge.  Bad input: a .deb built for another lighttpd is refused.
lighttpd's updates: the root's own lighttpd repacked as the next Debian
revision (a security update: the same binary, version 1.4.79-2+deb13u1),
offered in an archive, is installed by apt upgrade under the module,
which keeps answering; repacked as the next
upstream version, apt keeps it back (and names the module when asked for
it), and dpkg refuses to configure it, saying why, while the module is
installed.  The root
itself has the release's -updates and -security entries.

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


def in_root(root, *cmd, check=True, timeout=120):
    return subprocess.run(["chroot", str(root), *cmd], check=check, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)


def lighttpd_version(root):
    return in_root(root, "dpkg-query", "-W", "-f=${Version}", "lighttpd").stdout


def lighttpd_packages(root):
    """The installed binary packages of lighttpd's source (lighttpd,
    lighttpd-mod-openssl): a lighttpd update brings them all, and Debian's
    own modules depend on lighttpd's exact version."""
    out = in_root(root, "dpkg-query", "-W", "-f=${source:Package} ${Package}\\n").stdout
    return [line.split()[1] for line in out.splitlines() if line.split()[0] == "lighttpd"]


def download_lighttpd(root):
    """The .debs of the root's lighttpd packages, from the release's
    archive, into /tmp/lighttpd-debs of the root (before the test leaves
    the host's network)."""
    version = lighttpd_version(root)
    wanted = " ".join("%s=%s" % (p, version) for p in lighttpd_packages(root))
    in_root(root, "sh", "-c",
            "apt-get -qq -o Acquire::Check-Valid-Until=false update && "
            "mkdir -p /tmp/lighttpd-debs && cd /tmp/lighttpd-debs && "
            "apt-get -qq download " + wanted, timeout=600)


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
    copy = source.with_name(source.name + ".package-test")
    remove = ["rm", "-rf", "--one-file-system", str(copy)]
    subprocess.run(remove, check=True)
    # -x: not into a mount that a concurrent scripts/build-for holds (/src)
    subprocess.run(["cp", "-a", "-x", "--reflink=auto", str(source), str(copy)], check=True)
    download_lighttpd(copy)
    # the copy is ours: no service start when lighttpd is upgraded in it,
    # and the /proc that sid's lighttpd postinst needs (systemd-tmpfiles)
    policy = copy / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    subprocess.run(["mount", "-t", "proc", "proc", str(copy / "proc")], check=True)
    own_loopback_network()
    try:
        yield copy
    finally:
        subprocess.run(["umount", str(copy / "proc")], check=True)
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


def assert_tracks_an_upload(s):
    pid = uuid.uuid4().hex
    status, body = piecewise(s, pid, [1000, 30000, 70000, 99000], path="/cgi-bin/sink.cgi")
    assert (status, body) == (200, b"read 200000 bytes\n")
    answer = s.wait_for(pid, lambda a: a["state"] != "uploading")[-1]
    assert answer == {"state": "done", "received": 200000, "size": 200000}


def test_enabled_module_tracks_an_upload_exactly(root, server):
    result = in_root(root, "lighty-enable-mod", "uploadprogress", "cgi")
    assert "Enabling uploadprogress: ok" in result.stdout, result.stdout
    shutil.copy(HERE.parent / "integration/www/sink.cgi", root / "usr/lib/cgi-bin/sink.cgi")
    assert_tracks_an_upload(server())


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
    fields = subprocess.run(["dpkg-deb", "-f", str(other), "Depends", "Breaks"], check=True,
                            text=True, stdout=subprocess.PIPE).stdout
    clauses = re.findall(r"lighttpd \([<>=]+ [^)]*\)", fields)
    assert len(clauses) == 3, fields
    result = in_root(root, "dpkg", "-i", deb_in_root(root, other), check=False)
    assert result.returncode != 0
    # an older lighttpd fails its Depends, a newer one its Breaks
    assert any("depends on %s; however" % c in result.stdout
               or "%s breaks %s" % (PACKAGE, c) in result.stdout for c in clauses), result.stdout
    state = in_root(root, "dpkg-query", "-W", "-f=${Status}", PACKAGE).stdout
    assert state != "install ok installed", state


def repacked_lighttpd(root, version):
    """The root's lighttpd packages, the same files, with another version;
    their paths in the root.  (dpkg-deb -R; in the control file, Version
    and the packages' exact dependencies on each other; dpkg-deb -b; by the
    release's own dpkg-deb.)"""
    out = "/tmp/lighttpd-%s" % version
    in_root(root, "sh", "-c",
            "rm -rf %(out)s && mkdir %(out)s && for deb in /tmp/lighttpd-debs/*.deb; do "
            "rm -rf /tmp/repack && dpkg-deb -R $deb /tmp/repack && "
            "sed -i 's/^Version: .*/Version: %(new)s/; "
            "s/\\(lighttpd[a-z0-9-]* (= \\)[^)]*)/\\1%(new)s)/g' "
            "/tmp/repack/DEBIAN/control && "
            "dpkg-deb -b /tmp/repack %(out)s/ >/dev/null || exit 1; done && rm -rf /tmp/repack"
            % {"out": out, "new": version})
    return sorted("%s/%s" % (out, p.name) for p in (root / out.lstrip("/")).glob("*.deb"))


def next_debian_revision(root, version):
    """The version a security update of lighttpd has (1.4.79-2+deb13u1),
    or a binNMU's (1.4.85-1+b1) on sid."""
    major = (root / "etc/debian_version").read_text().split(".")[0]
    return version + ("+deb%su1" % major if major.isdigit() else "+b1")


def next_upstream(version):
    major, minor, patch = version.split("-")[0].split(".")
    return "%s.%s.%d-1" % (major, minor, int(patch) + 1)


def offer_in_a_local_archive(root, debs):
    """Makes the debs the candidates of a file: archive that apt knows (only that
    archive's list is fetched: the test has no network)."""
    in_root(root, "sh", "-c",
            "mkdir -p /tmp/archive && cp %s /tmp/archive/ && cd /tmp/archive && "
            "dpkg-scanpackages . >Packages 2>/dev/null && "
            "echo 'deb [trusted=yes] file:/tmp/archive ./' >/etc/apt/sources.list.d/next.list && "
            "apt-get -qq -o Dir::Etc::sourcelist=sources.list.d/next.list "
            "-o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0 update" % " ".join(debs))


def test_a_security_update_of_lighttpd_installs_and_the_module_answers(root, server):
    in_root(root, "dpkg", "-i", deb_in_root(root, os.environ["PACKAGE_DEB"]))
    in_root(root, "lighty-enable-mod", "uploadprogress", check=False)
    update = next_debian_revision(root, lighttpd_version(root))
    offer_in_a_local_archive(root, repacked_lighttpd(root, update))
    result = in_root(root, "apt-get", "-y", "upgrade", check=False)
    assert result.returncode == 0, result.stdout
    assert lighttpd_version(root) == update, result.stdout
    state = in_root(root, "dpkg-query", "-W", "-f=${Status}", PACKAGE).stdout
    assert state == "install ok installed", state
    assert in_root(root, "dpkg", "--audit").stdout == ""
    assert_tracks_an_upload(server())


def test_apt_keeps_the_next_upstream_lighttpd_back_and_says_why(root):
    before = lighttpd_version(root)
    newer = next_upstream(before)
    offer_in_a_local_archive(root, repacked_lighttpd(root, newer))
    upgrade = in_root(root, "apt-get", "-s", "upgrade")
    assert re.search(r"kept back:\s+lighttpd\b", upgrade.stdout), upgrade.stdout
    assert "Inst lighttpd" not in upgrade.stdout, upgrade.stdout
    # asked for it by name, apt names the module that stands in the way
    install = in_root(root, "apt-get", "-s", "--no-remove", "install", "lighttpd", check=False)
    assert install.returncode != 0, install.stdout
    assert re.search(r"REMOVED:\s+(\S+\s+)*%s\b" % PACKAGE, install.stdout), install.stdout


def test_dpkg_refuses_to_configure_the_next_upstream_lighttpd_and_says_why(root):
    before = lighttpd_version(root)
    newer = next_upstream(before)
    limit = newer.split("-")[0]
    result = in_root(root, "dpkg", "-i", *repacked_lighttpd(root, newer), check=False)
    assert result.returncode != 0, result.stdout
    assert "%s (%s) breaks lighttpd (>= %s~) and is installed" % (
        PACKAGE, in_root(root, "dpkg-query", "-W", "-f=${Version}", PACKAGE).stdout, limit) \
        in result.stdout, result.stdout
    status = in_root(root, "dpkg-query", "-W", "-f=${Status} ${Version}", "lighttpd").stdout
    assert status != "install ok installed " + newer, status
    state = in_root(root, "dpkg-query", "-W", "-f=${Status}", PACKAGE).stdout
    assert state == "install ok installed", state


def test_the_root_has_the_release_updates_and_security(root):
    release = env_path("PACKAGE_ROOT").name
    suites = [("debian", release)]
    if release != "sid":
        suites += [("debian", release + "-updates"), ("debian-security", release + "-security")]
    lines = set()
    for f in [root / "etc/apt/sources.list", *(root / "etc/apt/sources.list.d").glob("*.list")]:
        if f.exists():
            lines |= {" ".join(line.split()) for line in f.read_text().splitlines()}
    for archive, suite in suites:
        for kind in ("deb", "deb-src"):
            line = "%s http://deb.debian.org/%s %s main" % (kind, archive, suite)
            assert line in lines, (line, sorted(lines))
