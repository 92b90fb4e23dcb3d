"""What scripts/build sets up, on this host: deb-src entries for every
binary entry of the system's apt sources, whatever the host; and a build
for a lighttpd newer than the tested releases, which succeeds with a note
naming the tested range, while an id that names two releases stops with
what to pass.

The newer lighttpd is sid's configured tree (scripts/build-for sid makes
it; scripts/test runs that first) with config.h saying 1.4.86."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parent.parent.parent
SID_TREE = TOP / ".deps/roots/sid/build/lighttpd-1.4.85"
TESTED = "tested with lighttpd 1.4.69 to 1.4.85"


def add_deb_src(etc):
    subprocess.run(["bash", "-c", "WHO=test; . scripts/apt-packages.sh; SUDO=; add_deb_src"],
                   cwd=TOP, env=dict(os.environ, APT_ETC=str(etc)), check=True)


def test_deb_src_mirrors_every_binary_entry_whatever_its_host(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "deb http://archive.ubuntu.com/ubuntu noble main universe\n"
        "# deb http://archive.ubuntu.com/ubuntu noble-backports main\n"
        "deb [arch=amd64] http://mirror.example.org/repo bookworm main\n")
    (tmp_path / "sources.list.d/ubuntu.sources").write_text(
        "Types: deb\nURIs: http://security.ubuntu.com/ubuntu/\nSuites: noble-security\n"
        "Components: main\nSigned-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg\n\n"
        "Types: deb-src\nURIs: http://src.example.org/only-src\nSuites: x\nComponents: main\n")
    (tmp_path / "sources.list.d/local.list").write_text("deb http://10.0.0.5/debian trixie main\n")
    add_deb_src(tmp_path)
    lines = (tmp_path / "sources.list.d/mod_uploadprogress-src.list").read_text().splitlines()
    assert lines == ["deb-src http://archive.ubuntu.com/ubuntu noble main universe",
                     "deb-src [arch=amd64] http://mirror.example.org/repo bookworm main",
                     "deb-src http://10.0.0.5/debian trixie main"]
    deb822 = (tmp_path / "sources.list.d/mod_uploadprogress-src.sources").read_text()
    assert deb822.strip() == (
        "Types: deb-src\nURIs: http://security.ubuntu.com/ubuntu/\nSuites: noble-security\n"
        "Components: main\nSigned-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg")


def tree_of(tmp_path, version, version_id):
    """sid's configured tree as another lighttpd: config.h with another
    version (None: no PACKAGE_VERSION) and LIGHTTPD_VERSION_ID."""
    if not (SID_TREE / "config.h").exists():
        pytest.fail("%s is missing: run scripts/build-for sid first" % SID_TREE)
    tree = tmp_path / "lighttpd"
    tree.mkdir()
    (tree / "src").symlink_to(SID_TREE / "src")
    lines = []
    for line in (SID_TREE / "config.h").read_text().splitlines():
        if line.startswith("#define LIGHTTPD_VERSION_ID "):
            line = "#define LIGHTTPD_VERSION_ID %s" % version_id
        elif line.startswith("#define PACKAGE_VERSION "):
            line = '#define PACKAGE_VERSION "%s"' % version if version else ""
        lines.append(line)
    (tree / "config.h").write_text("\n".join(lines) + "\n")
    return tree


def build(tmp_path, tree, *options, cc="gcc"):
    return subprocess.run([str(TOP / "scripts/build"), str(tmp_path / ("build-" + cc)), *options],
                          env=dict(os.environ, LIGHTTPD_SRC=str(tree), CC=cc), cwd=TOP,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=600)


@pytest.mark.parametrize("cc", ["gcc", "clang"])
@pytest.mark.parametrize("version_id", ["0x10456", "0x10486"], ids=["autotools", "meson"])
def test_a_newer_lighttpd_builds_with_a_note_naming_the_tested_range(tmp_path, cc, version_id):
    result = build(tmp_path, tree_of(tmp_path, "1.4.86", version_id), cc=cc)
    assert result.returncode == 0, result.stdout
    assert TESTED in result.stdout, result.stdout
    assert (tmp_path / ("build-" + cc) / "mod_uploadprogress.so").is_file()


def test_an_id_naming_two_releases_stops_with_what_to_pass(tmp_path):
    # 0x10455: autotools' 1.4.85 or meson's 1.4.55, and no PACKAGE_VERSION
    tree = tree_of(tmp_path, None, "0x10455")
    result = build(tmp_path, tree)
    assert result.returncode != 0, result.stdout
    assert "configure with -Dlighttpd_version=1.4.N" in result.stdout, result.stdout
    shutil.rmtree(tmp_path / "build-gcc")
    result = build(tmp_path, tree, "-Dlighttpd_version=1.4.85")
    assert result.returncode == 0, result.stdout
    assert TESTED not in result.stdout


def test_a_package_this_release_lacks_stops_with_one_line_naming_it():
    # what scripts/setup-build-deps does with its list, on a release that
    # has neither alternative of a package (the first is installed here)
    result = subprocess.run(
        ["bash", "-c", "WHO=setup-build-deps; . scripts/apt-packages.sh; "
         "install_packages gcc 'no-such-package-19|nor-this-one-19'"],
        cwd=TOP, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
    assert result.returncode != 0
    said = [line for line in result.stderr.splitlines() if line.startswith("setup-build-deps:")]
    assert said == ["setup-build-deps: this system's apt sources have no package "
                    "no-such-package-19 or nor-this-one-19 "
                    "(known to work: Debian bookworm, trixie, sid)"], result.stderr
