"""The client's own logic (examples/uploadprogress.js) in Node.js, with
stand-ins for the browser's XMLHttpRequest, fetch and EventSource:
tests/node/client_options.test.mjs (node:test).  The pages, and the same
options in a real browser, are in test_pages.py."""
import subprocess
from pathlib import Path

NODE_TESTS = Path(__file__).resolve().parent.parent / "node"


def test_client_options_in_node():
    proc = subprocess.run(["node", "--test", "client_options.test.mjs"], cwd=NODE_TESTS,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    out = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, out
    assert "# fail 0" in out and "# pass 0" not in out, out
