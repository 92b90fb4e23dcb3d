#!/usr/bin/env python3
"""The docs check (issue 21), run by scripts/test: what README.md and doc/
promise, checked against the tree and the built module.

- Every relative link in README.md and doc/*.md resolves: the file exists,
  and a #anchor names a heading of the target page (GitHub's slugs).
- The pages the package ships (debian/*.docs, *.examples, as dh_installdocs
  lays them out) link only to pages it ships too.
- Every key of the module's key table (cpk in src/mod_uploadprogress.c) has
  a row in doc/mod_uploadprogress.md's key table, with the scope the source
  gives it, and a commented line with that row's default in the package's
  conf-available file.
- Every command in README's shell blocks runs here, or is listed below with
  the reason it cannot (and where it is tested instead).  The smoke test
  (`$ curl ...` in a console block) runs against the built module loaded
  by the package's conf-available file, on a free 127.0.0.1 port, and must
  print exactly the lines that follow it.
- README's quick install lines are the commands of its Install section.

Prints one "ok"/"FAIL" line per check and ends with "N passed, N failed".
Environment: UPLOADPROGRESS_MODULE (default build/mod_uploadprogress.so)."""
import re
import subprocess
import sys
import tempfile
import unicodedata
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TOP / "tests" / "integration"))

PAGES = [TOP / "README.md", *sorted((TOP / "doc").glob("*.md"))]
CONF_AVAILABLE = TOP / "debian/conf-available/05-uploadprogress.conf"
KEY_TABLE_PAGE = TOP / "doc/mod_uploadprogress.md"
SCOPE_OF = {"T_CONFIG_SCOPE_SERVER": "global",
            "T_CONFIG_SCOPE_CONNECTION": "global or per condition"}

# README commands that cannot run inside this check, and why; each is
# matched by its start.
NOT_HERE = {
    "scripts/demo": "serves until Ctrl-C: tests/integration/test_examples.py starts it and polls it",
    "scripts/test": "runs this check",
    "scripts/build-for": "makes a Debian release's root: scripts/test runs it",
    "scripts/package": "builds the .deb in a release's root: scripts/test runs it for tests/package",
    "apt install": "installs into this system: tests/package installs the .deb in a copy of its root",
    "lighty-enable-mod": "changes this system's lighttpd: tests/package enables it in a copy of its root",
    "meson install": "writes to /usr/lib/lighttpd: tests/package installs the module in a root",
}

# README commands that run here as they are (in the tree's top folder).
RUN_AS_IS = ("scripts/build",)

results = []


def check(name, problems):
    """Records one check: passed when problems is empty."""
    results.append(not problems)
    if problems:
        print("FAIL %s" % name)
        for p in problems:
            print("     %s" % p)
    else:
        print("ok   %s" % name)


# --- Markdown, as GitHub reads it --------------------------------------------

FENCE = re.compile(r"^(```|~~~)\s*([\w-]*)")


def blocks(text):
    """Fenced blocks of a page: (language, lines) in order."""
    out, lang, lines = [], None, []
    for line in text.splitlines():
        m = FENCE.match(line)
        if lang is None and m:
            lang, lines = m.group(2), []
        elif lang is not None and line.startswith(("```", "~~~")):
            out.append((lang, lines))
            lang = None
        elif lang is not None:
            lines.append(line)
    return out


def prose(text):
    """The page without its fenced blocks and inline code."""
    kept, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            kept.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(kept)


def slug(heading):
    """GitHub's anchor for a heading."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    kept = "".join(c for c in text
                   if c in " -_" or unicodedata.category(c)[0] in "LN")
    return kept.replace(" ", "-")


def anchors(page):
    """Every anchor of a page, with GitHub's -1, -2 for repeated headings."""
    seen, out = {}, set()
    text = page.read_text()
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m and not fenced:
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else "%s-%d" % (base, n))
    return out


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def relative_links(page):
    return [t for t in LINK.findall(prose(page.read_text()))
            if not re.match(r"^[a-z][a-z0-9+.-]*:", t)]


def broken_links(page, exists, page_anchors):
    """Links of page that do not resolve.  exists(path) and
    page_anchors(path) say what is there (in the tree, or as installed)."""
    bad = []
    for target in relative_links(page.source):
        path, _, anchor = target.partition("#")
        dest = page.path if not path else (page.path.parent / path)
        dest = Path(*normalised(dest.parts))
        if not exists(dest):
            bad.append("%s: %s does not exist" % (target, dest))
        elif anchor and anchor not in page_anchors(dest):
            bad.append("%s: no heading makes #%s" % (target, anchor))
    return bad


def normalised(parts):
    out = []
    for p in parts:
        if p == "..":
            out.pop()
        elif p != ".":
            out.append(p)
    return out


class Page:
    """A page as it is found (source) and where links start from (path)."""

    def __init__(self, source, path):
        self.source, self.path = source, path


def check_links():
    for page in PAGES:
        check("links of %s resolve" % page.relative_to(TOP),
              broken_links(Page(page, page), lambda p: p.exists(),
                           lambda p: anchors(p) if p.suffix == ".md" else set()))


# --- what the package ships -----------------------------------------------------

PACKAGE = "lighttpd-mod-uploadprogress"
DOC_DIR = "usr/share/doc/" + PACKAGE


def shipped_layout():
    """{installed path: source path} of the package's docs and examples,
    relative to /usr/share/doc/<package>, laid out as dh_installdocs,
    dh_installexamples and dh_install do."""
    layout = {}

    def add(src, dest_dir):
        files = [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file())
        for f in files:
            layout[dest_dir / f.relative_to(src.parent)] = f

    debian = TOP / "debian"
    for line in (debian / (PACKAGE + ".docs")).read_text().split():
        for src in sorted(TOP.glob(line)):
            add(src, Path("."))
    for line in (debian / (PACKAGE + ".examples")).read_text().split():
        for src in sorted(TOP.glob(line)):
            add(src, Path("examples"))
    for line in (debian / (PACKAGE + ".install")).read_text().splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[1].startswith(DOC_DIR):
            for src in sorted(TOP.glob(fields[0])):
                add(src, Path(fields[1][len(DOC_DIR):].strip("/") or "."))
    return {Path(*normalised(k.parts)): v for k, v in layout.items()}


def check_package_links():
    """The links of every page the package ships, resolved among what it ships."""
    layout = shipped_layout()
    installed = set(layout)
    dirs = {d for p in installed for d in p.parents}
    problems = []
    for path, src in sorted(layout.items()):
        if src.suffix != ".md":
            continue
        problems += ["%s: %s" % (path, b) for b in broken_links(
            Page(src, path), lambda p: p in installed or p in dirs,
            lambda p: anchors(layout[p]) if p in layout and p.suffix == ".md" else set())]
    check("the package ships every page its pages link to", problems)


# --- config keys ---------------------------------------------------------------

def source_keys():
    """{key: scope} of the cpk table."""
    text = (TOP / "src/mod_uploadprogress.c").read_text()
    table = re.search(r"config_plugin_keys_t cpk\[\] = \{(.*?)\};", text, re.S).group(1)
    return dict(re.findall(r'CONST_STR_LEN\("(upload-progress\.[a-z-]+)"\),\s*'
                           r"T_CONFIG_\w+,\s*(T_CONFIG_SCOPE_\w+)", table))


def key_rows():
    """{key: {column: cell}} of the key table in doc/mod_uploadprogress.md."""
    rows, header = {}, None
    for line in KEY_TABLE_PAGE.read_text().splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = [c.lower() for c in cells]
        elif not set(cells[0]) <= set("-: "):
            m = re.fullmatch(r"`(upload-progress\.[a-z-]+)`", cells[0])
            if m and "default" in header and "scope" in header:
                rows[m.group(1)] = dict(zip(header, cells))
    return rows


def conf_defaults():
    """{key: value} of the conf-available file's lines, commented or not."""
    out = {}
    for line in CONF_AVAILABLE.read_text().splitlines():
        m = re.match(r"^#?\s*(upload-progress\.[a-z-]+)\s*=\s*(\S+)", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def check_keys():
    keys = source_keys()
    check("the cpk table has keys", [] if keys else ["no upload-progress.* key found in src/"])
    rows, conf = key_rows(), conf_defaults()
    conf_text = CONF_AVAILABLE.read_text()
    for key, scope in sorted(keys.items()):
        problems = []
        row = rows.get(key)
        if row is None:
            problems.append("no row in the key table of %s" % KEY_TABLE_PAGE.relative_to(TOP))
        else:
            if row.get("scope") != SCOPE_OF[scope]:
                problems.append("scope %r in the doc, %r in src (%s)"
                                % (row.get("scope"), SCOPE_OF[scope], scope))
            if not any(row.get(c) for c in ("what it does", "description")):
                problems.append("the key table does not say what it does")
        if key not in conf:
            problems.append("not in %s" % CONF_AVAILABLE.relative_to(TOP))
        elif row is not None:
            default = re.search(r"`([^`]*)`", row.get("default", ""))
            if default and conf[key] != default.group(1) and key != "upload-progress.progress-url":
                problems.append("%s says %s, the doc's default is %s"
                                % (CONF_AVAILABLE.name, conf[key], default.group(1)))
            if key != "upload-progress.progress-url" and not re.search(
                    r"^#\s*%s\b" % re.escape(key), conf_text, re.M):
                problems.append("%s sets it instead of showing it commented"
                                % CONF_AVAILABLE.name)
        check("%s is documented and in the conf-available file" % key, problems)


# --- README's commands -------------------------------------------------------

def readme_commands():
    """(command, expected output or None) of README's shell blocks."""
    out = []
    for lang, lines in blocks((TOP / "README.md").read_text()):
        if lang in ("sh", "shell", "bash"):
            for line in lines:
                cmd = re.sub(r"\s+#.*$", "", line).strip()
                if cmd and not cmd.startswith("#"):
                    out.append((cmd, None))
        elif lang == "console":
            for line in lines:
                if line.startswith("$ "):
                    out.append((line[2:].strip(), []))
                elif out and out[-1][1] is not None:
                    out[-1][1].append(line)
    return out


def serving(config):
    """A started lighttpd with the tests' base configuration and config."""
    from lighty import BASE_CONFIG, Lighttpd
    # Like Debian's lighttpd.conf: a list of modules that the configuration
    # under test appends to, and no handler it may set up itself.
    base = "".join(line for line in BASE_CONFIG.splitlines(True) if not line.startswith("cgi."))
    tmp = tempfile.TemporaryDirectory()
    server = Lighttpd(tmp.name, base=base, modules=("mod_access",), config="\n" + config)
    server.tmp = tmp
    return server.start()


def stopped(server):
    server.stop()
    server.tmp.cleanup()


def run_smoke_test(cmd, expected):
    """A README curl against the built module, loaded by the package's
    conf-available file exactly as lighty-enable-mod enables it."""
    local = cmd.replace("http://127.0.0.1/", "http://127.0.0.1:%d/")
    if local == cmd:
        return ["it does not ask http://127.0.0.1/, where the check can answer"]
    server = serving(CONF_AVAILABLE.read_text())
    try:
        got = subprocess.run(["sh", "-c", local.replace("%d", str(server.port))],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30).stdout
    finally:
        stopped(server)
    want = "".join(line + "\n" for line in expected).encode()
    return [] if got == want else ["printed %r, README says %r" % (got, want)]


def check_reference_example():
    """The first lighttpd block of the reference's Example section works
    as written: appended to a module list, it tracks an upload to a CGI."""
    text = KEY_TABLE_PAGE.read_text()
    section = re.search(r"^## Example\n(.*?)(?=^## )", text, re.S | re.M)
    conf = [lines for lang, lines in blocks(section.group(1)) if lang == "lighttpd"] \
        if section else []
    if not conf:
        check("the reference's Example works", ["no lighttpd block under ## Example"])
        return
    from lighty import ID
    server = serving("\n".join(conf[0]))
    try:
        status, _, body = server.request("POST", "/sink.cgi?X-Progress-ID=" + ID,
                                         body=b"x" * 100000)
        answer = server.poll(ID)[0]
    finally:
        stopped(server)
    want = {"state": "done", "received": 100000, "size": 100000}
    check("the reference's Example works", [] if (status, answer) == (200, want)
          else ["upload %s %r, then poll %r" % (status, body, answer)])


def check_commands():
    commands = readme_commands()
    check("README has a smoke test (a console block with curl and its answer)",
          [] if any(c.startswith("curl ") and e for c, e in commands)
          else ["no `$ curl ...` followed by its answer"])
    for cmd, expected in commands:
        bare = re.sub(r"^(?:[A-Z_]+=\S*\s+)+", "", cmd)      # without VAR=value in front
        reason = next((r for start, r in NOT_HERE.items() if bare.startswith(start)), None)
        if reason:
            print("skip %s: %s" % (cmd, reason))
        elif cmd in RUN_AS_IS:
            proc = subprocess.run(["sh", "-c", cmd], cwd=TOP, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, timeout=900)
            check("README: %s" % cmd, [] if proc.returncode == 0 else
                  ["exit %d: %s" % (proc.returncode, proc.stdout.decode(errors="replace")[-2000:])])
        elif cmd.startswith("curl ") and expected is not None:
            check("README: %s" % cmd, run_smoke_test(cmd, expected))
        else:
            check("README: %s" % cmd,
                  ["neither run here nor listed in tests/docs/check_docs.py's NOT_HERE"])


def check_quick_install():
    """The first screen's install lines are those of the Install section
    (which has the details), so the two cannot drift apart."""
    text = (TOP / "README.md").read_text()
    sections = re.split(r"^## ", text, flags=re.M)
    first = sections[0]
    rest = "\n".join(sections[1:])
    quick = [l for lang, lines in blocks(first) if lang == "sh" for l in lines
             if re.match(r"^(scripts/package|apt install|lighty-enable-mod)", l)]
    problems = [] if quick else ["the first screen has no install lines"]
    for line in quick:
        cmd = re.sub(r"\s+#.*$", "", line).strip()
        if not any(re.sub(r"\s+#.*$", "", l).strip() == cmd
                   for lang, lines in blocks(rest) for l in lines):
            problems.append("%r is not a command of README's Install section" % cmd)
    check("README's first-screen install is the Install section's", problems)


def main():
    for part in (check_links, check_package_links, check_keys, check_quick_install,
                 check_reference_example, check_commands):
        try:
            part()
        except Exception as err:    # a broken part is one failure, the others still run
            check(part.__name__, ["%s: %s" % (type(err).__name__, err)])
    passed = sum(results)
    failed = len(results) - passed
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
