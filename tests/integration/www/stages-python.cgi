#!/usr/bin/python3
"""stages.cgi in Python (urllib): the same stages, gates and modes."""
import os
import signal
import sys
import time
import urllib.error
import urllib.request

if os.environ.get("LD_PRELOAD"):
    # the server's preloads (a sanitizer's runtime in scripts/test) are not ours
    del os.environ["LD_PRELOAD"]
    os.execv(sys.executable, [sys.executable] + sys.argv)

pid = os.environ["HTTP_X_PROGRESS_ID"]
url = "http://127.0.0.1:%s/progress-report" % os.environ["SERVER_PORT"]
gates = os.path.join(os.path.dirname(os.environ["SCRIPT_FILENAME"]), "gates")
query = os.environ.get("QUERY_STRING", "")
n = len(sys.stdin.buffer.read())


def report(form):
    req = urllib.request.Request(url, data=form.encode(), headers={"X-Progress-ID": pid})
    try:
        code = urllib.request.urlopen(req, timeout=10).status
    except urllib.error.HTTPError as e:
        code = e.code
    with open(os.path.join(gates, pid + ".codes"), "a") as f:
        f.write("%d\n" % code)


def gate(k):   # waits up to 30 s for the test
    for _ in range(300):
        if os.path.exists(os.path.join(gates, "%s.%d" % (pid, k))):
            return
        time.sleep(0.1)


report("stage=checking&percent=50")
gate(1)
report("stage=saving+the+file")
gate(2)
if "mode=202" in query:
    # mod_cgi ends a CGI with its response: the work outlives it
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.stdout.write("Status: 202\r\nContent-Type: text/plain\r\n\r\naccepted %d bytes\n" % n)
    sys.stdout.flush()
    os.close(1)    # the response ends here; the work goes on
    sys.stdout = open(os.devnull, "w")
    report("stage=indexing&percent=10")
    gate(3)
    if "mode=202-failed" in query:
        report("outcome=failed&message=index+is+full")
    else:
        report("outcome=finished&message=indexed")
else:
    sys.stdout.write("Status: 200\r\nContent-Type: text/plain\r\n\r\nread %d bytes\n" % n)
