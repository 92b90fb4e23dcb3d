"""The bench's table: printed, and written into doc/benchmarks.md between
its two markers with the date, the machine and the commit it measured."""
import datetime
import os
import platform
import re
import subprocess
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
DOC = TOP / "doc" / "benchmarks.md"
BEGIN = "<!-- results: written by bench/run --write-doc; edits here are lost -->"
END = "<!-- end of results -->"


def format_table(rows):
    w1 = max(len(r[0]) for r in rows)
    w2 = max(len(r[1]) for r in rows)
    lines = ["%-*s  %-*s  %s" % (w1, "measurement", w2, "figure", "details"),
             "-" * (w1 + w2 + 40)]
    lines += [("%-*s  %-*s  %s" % (w1, r[0], w2, r[1], r[2])).rstrip() for r in rows]
    return "\n".join(lines)


def print_table(rows):
    print(format_table(rows))


def git(*args):
    return subprocess.run(["git", "-C", str(TOP)] + list(args), capture_output=True,
                          text=True).stdout.strip()


def commit():
    """The commit measured, marked when the tree had uncommitted changes."""
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return git("rev-parse", "--short=12", "HEAD") + (" with uncommitted changes" if dirty else "")


def machine():
    model = re.search(r"^model name\s*:\s*(.*)$", Path("/proc/cpuinfo").read_text(), re.M)
    return "%s, %d CPUs, Linux %s, load average %.1f at the end" % (
        model.group(1) if model else platform.machine(), os.cpu_count(), platform.release(),
        os.getloadavg()[0])


def results_section(rows, how):
    """The doc's section for this run's rows: how it ran, then the table."""
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join([
        BEGIN, "",
        "`bench/run%s`, %s, commit %s; %s." % (how, when, commit(), machine()), "",
        "```", format_table(rows), "```", "", END])


def write_doc(rows, how):
    """Replaces the results between the markers of doc/benchmarks.md."""
    text = DOC.read_text()
    begin, end = text.find(BEGIN), text.find(END)
    if begin < 0 or end < begin:
        raise RuntimeError("%s has no results markers (%s ... %s)" % (DOC, BEGIN, END))
    DOC.write_text(text[:begin] + results_section(rows, how) + text[end + len(END):])
    print("wrote the results into", DOC.relative_to(TOP))
