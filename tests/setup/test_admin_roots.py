"""A new admin's machine, per Debian release: a fresh minimal root with the
release's binary entries (RELEASE, -updates, -security; sid alone), its
stock lighttpd and git (tests/setup/make-admin-root).  There, as the README
says, a clone of this repository and scripts/build: it succeeds, says what
it installs before it does, installs no server, browser or test tool,
leaves policy-rc.d alone, and the module it built loads into the root's
stock lighttpd and answers polls of an upload.

The three roots are made at once, fresh on every run (nothing is kept from
an earlier run unless ADMIN_ROOTS_REUSE=1, for working on these tests).
ADMIN_ROOTS_RELEASES picks releases (default: bookworm trixie sid).  Needs
root and the network to deb.debian.org.

ADMIN_ROOTS_PACKAGE names the releases whose admin root also runs the
packager's command, scripts/package RELEASE, after the build: the release
root it makes is nested in the admin's (about 6 minutes more per release
on the shared machine, so scripts/test leaves it out; those cases skip)."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parent.parent.parent
RELEASES = os.environ.get("ADMIN_ROOTS_RELEASES", "bookworm trixie sid").split()
PACKAGE_ON = os.environ.get("ADMIN_ROOTS_PACKAGE", "").split()
WHERE = TOP / ".deps" / "admin-roots"
# What a production web server must not get from building a module.
FORBIDDEN = ("apache2", "nginx", "chromium", "haproxy", "valgrind", "lintian", "nodejs")


@pytest.fixture(scope="session")
def admin_roots():
    """Makes the roots, all at once; {release: (root, make-admin-root's output)}."""
    made, procs = {}, {}
    start = time.monotonic()
    for release in RELEASES:
        root = WHERE / release
        if os.environ.get("ADMIN_ROOTS_REUSE") == "1" and (root / "root/admin/packages").exists():
            made[release] = (root, "reused")
            continue
        package = [release] if release in PACKAGE_ON else []
        procs[release] = (root, subprocess.Popen(
            [str(TOP / "tests/setup/make-admin-root"), release, str(root)] + package,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    for release, (root, proc) in procs.items():
        out = proc.communicate(timeout=1800)[0]
        made[release] = (root, out if proc.returncode == 0 else None)
    print("admin roots made in %.0f s" % (time.monotonic() - start), file=sys.stderr)
    return made


@pytest.fixture(params=RELEASES)
def admin(request, admin_roots):
    """The release's admin root, its scripts/build done; its /root/admin."""
    root, out = admin_roots[request.param]
    assert out is not None, "make-admin-root failed for %s" % request.param
    return root


def record(root, name):
    return (root / "root/admin" / name).read_text()


def test_scripts_build_succeeds(admin):
    log = record(admin, "build.log")
    assert record(admin, "build.rc").strip() == "0", log
    assert (admin / "root/mod_uploadprogress/build/mod_uploadprogress.so").is_file(), log


def test_scripts_build_says_what_it_installs_first(admin):
    lines = record(admin, "build.log").splitlines()
    said = [line for line in lines if line.startswith("setup-build-deps: installing ")]
    assert len(said) == 1, lines
    named = said[0].split(": installing ", 1)[1].split()
    assert {"gcc", "meson", "ninja-build", "dpkg-dev"} <= set(named), named
    installed = set(record(admin, "packages").split())
    assert set(named) <= installed, set(named) - installed


def test_no_server_browser_or_test_tool_is_installed(admin):
    installed = record(admin, "packages").split()
    assert "lighttpd" in installed
    unwanted = [p for p in installed
                if any(p == f or p.startswith(f + "-") or p.startswith(f + ":")
                       for f in FORBIDDEN)]
    assert unwanted == []


def test_policy_rc_d_is_left_alone(admin):
    assert record(admin, "policy-rc.d.after") == record(admin, "policy-rc.d.before")


def test_module_loads_into_the_stock_lighttpd_and_answers(admin):
    env = dict(os.environ,
               UPLOADPROGRESS_ROOT=str(admin),
               UPLOADPROGRESS_MODULE=str(admin / "root/mod_uploadprogress/build/mod_uploadprogress.so"))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         str(TOP / "tests/integration/test_progress.py"),
         "-k", "unknown_id_is_starting or received_is_exact_after_each_piece"],
        env=env, cwd=TOP, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=600)
    assert result.returncode == 0, result.stdout
    assert "3 passed" in result.stdout, result.stdout


def test_scripts_package_builds_the_releases_deb_on_this_host(admin):
    """scripts/package on a host of this release: the .deb is built and
    lintian runs in the release's root; the host gets mmdebstrap and mount
    (build-for's), never lintian."""
    if admin.name not in PACKAGE_ON:
        pytest.skip("scripts/package on a %s host runs with ADMIN_ROOTS_PACKAGE=%s"
                    % (admin.name, admin.name))
    log = record(admin, "package.log")
    assert record(admin, "package.rc").strip() == "0", log[-3000:]
    deb = log.splitlines()[-1]
    assert deb.endswith(".deb") and (admin / deb.lstrip("/")).is_file(), log[-3000:]
    assert "package: lintian " in log
    before = set(record(admin, "packages").split())
    after = set(record(admin, "packages.package").split())
    assert {"mmdebstrap", "mount"} <= after
    assert not any(p == "lintian" or p.startswith("lintian:") for p in after), after - before
