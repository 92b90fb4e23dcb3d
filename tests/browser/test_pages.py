"""The example pages in headless Chromium, against the shipped
examples/lighttpd.conf with the built module (only the port and the error log
are overridden).  run.mjs drives the browser and checks the page; these
tests check what the server recorded for the page's upload id.

SCREENSHOT_DIR=$PWD/doc refreshes the README's screenshot of the modern page."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
from lighty import ROOT, demo_done, start_shipped  # noqa: E402


@pytest.fixture
def shipped(tmp_path):
    server = start_shipped(tmp_path)
    yield server
    server.stop()


# The demo's upload.cgi reports two stages after the body (doc/processing.md),
# each held for 2 s here, so that a page's polls (every 500 ms) and event
# streams (every 250 ms) all tell each of them.
SLOW_STAGES = """
server.modules += ( "mod_setenv" )
setenv.add-environment = ( "DEMO_STAGE_SECONDS" => "2" )
"""


@pytest.fixture
def shipped_slow_stages(tmp_path):
    if not os.path.exists(str(ROOT) + "/usr/bin/curl" if ROOT else "/usr/bin/curl"):
        pytest.skip("no curl where lighttpd runs: the demo's upload.cgi reports no stages")
    server = start_shipped(tmp_path, SLOW_STAGES)
    yield server
    server.stop()


def run_page(server, scenario, tmp_path):
    """Runs one scenario of run.mjs; returns its RESULT (id, bar values)."""
    proc = subprocess.run(
        ["node", str(HERE / "run.mjs"), scenario, "http://127.0.0.1:%d" % server.port,
         str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300, cwd=HERE)
    out = proc.stdout.decode(errors="replace")
    print(out)
    assert proc.returncode == 0, out + server.error_log()
    return json.loads(out.rsplit("RESULT ", 1)[1])


def assert_done(server, pid):
    answer, _ = server.poll(pid)
    assert answer["state"] == "done"
    assert answer["received"] == answer["size"] > 3 * 1024 * 1024


def test_classic_frames_show_the_upload_to_the_end(shipped, tmp_path):
    result = run_page(shipped, "classic", tmp_path)
    assert_done(shipped, result["id"])


def test_too_big_frames_show_the_custom_message(shipped, tmp_path):
    result = run_page(shipped, "too-big", tmp_path)
    assert shipped.poll(result["id"])[1] == b'{"state":"error","status":413}'


def test_modern_page_shows_bar_speed_and_time_left(shipped, tmp_path):
    result = run_page(shipped, "modern", tmp_path)
    assert_done(shipped, result["id"])
    assert result["transport"] == "events"   # the server streams: the page follows
    shot = (tmp_path / "screenshot-modern.png")
    if shot.exists():   # else it went to SCREENSHOT_DIR
        assert shot.read_bytes().startswith(b"\x89PNG")


def test_modern_page_polls_when_its_url_says_so(shipped, tmp_path):
    result = run_page(shipped, "modern-poll", tmp_path)
    assert_done(shipped, result["id"])


def test_modern_page_moves_the_bar_at_every_event_over_events(shipped, tmp_path):
    result = run_page(shipped, "modern-events", tmp_path)
    assert_done(shipped, result["id"])
    assert result["transport"] == "events" and result["eventsPushed"] >= 3


def test_modern_page_polls_on_when_its_event_stream_breaks(shipped, tmp_path):
    result = run_page(shipped, "modern-stream-breaks", tmp_path)
    assert_done(shipped, result["id"])
    assert result["transport"] == "poll"


def test_modern_page_forced_to_events_reports_a_refused_stream(shipped, tmp_path):
    result = run_page(shipped, "modern-events-refused", tmp_path)
    assert result["transport"] == "events"   # no fallback to polls
    assert result["message"] == "The connection to the server was lost."


def test_modern_page_cancel_ends_the_upload_as_an_error(shipped, tmp_path):
    result = run_page(shipped, "modern-cancel", tmp_path)
    seen = shipped.wait_for(result["id"], lambda a: a["state"] != "uploading", timeout=30)
    answer = seen[-1]
    assert answer["state"] == "error" and answer["status"] == 400
    assert 0 < answer["received"] < answer["size"]


def test_modern_page_says_too_big_over_the_global_limit(shipped, tmp_path):
    result = run_page(shipped, "modern-too-big", tmp_path)
    assert shipped.poll(result["id"])[1] == b'{"state":"error","status":413}'


def test_client_options_in_chromium(shipped, tmp_path):
    result = run_page(shipped, "client-options", tmp_path)
    answer, _ = shipped.poll(result["id"])
    assert answer == demo_done(300000)


@pytest.mark.parametrize("page", ["modern", "classic"])
@pytest.mark.parametrize("transport", ["events", "poll"])
def test_pages_show_the_stages_of_the_work_after_the_upload(shipped_slow_stages, tmp_path, page,
                                                            transport):
    result = run_page(shipped_slow_stages, "%s-processing-%s" % (page, transport), tmp_path)
    assert result["transport"] == transport
    answer, _ = shipped_slow_stages.poll(result["id"])
    assert answer["state"] == "done" and answer["phase"] == "finished"
