"""Open the report in a real headless Chromium with the network blocked: charts render, nothing leaves the file.

Blocking and detection: Chromium is pointed at a local proxy that answers every request with 403 and
records it, so any attempt to fetch anything over the network is both refused and seen. Chromium's own
background traffic is switched off by flags, so the only requests could come from the page.
Chromium is Debian's package, installed by `make test`; set ADVISOR_SKIP_BROWSER=1 to skip knowingly.
"""

from __future__ import annotations

import http.server
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from advisor import compare
from reports import render_report

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from report_drilldown import measure  # noqa: E402
from report_page import CHROMIUM, FLAGS, Chromium, constructed_run  # noqa: E402

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(bool(os.environ.get("ADVISOR_SKIP_BROWSER")), reason="ADVISOR_SKIP_BROWSER set")]


# Chromium's own housekeeping (network time, component updates, sign-in) that flags do not silence;
# exact hosts only, so a page fetching e.g. fonts.googleapis.com would still be caught.
BROWSER_HOSTS = ("clients2.google.com", "update.googleapis.com", "accounts.google.com")


class RecordingProxy(http.server.BaseHTTPRequestHandler):
    seen: list[str] = []

    def _refuse(self):
        if not any(host in self.path.split("/")[2 if "://" in self.path else 0] for host in BROWSER_HOSTS):
            RecordingProxy.seen.append(f"{self.command} {self.path}")
        self.send_response(403)
        self.end_headers()

    do_GET = do_POST = do_HEAD = do_CONNECT = _refuse

    def log_message(self, *args):
        pass


@pytest.fixture
def proxy():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RecordingProxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    RecordingProxy.seen = []
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def chromium(*args, user_dir, proxy) -> subprocess.CompletedProcess:
    assert CHROMIUM, "chromium is not installed: `make test` installs Debian's chromium (or set ADVISOR_SKIP_BROWSER=1)"
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={user_dir}", f"--proxy-server={proxy}",
                           "--proxy-bypass-list=<-loopback>", *args], capture_output=True, text=True, timeout=120)


def test_report_renders_offline_with_charts(classification_task, tmp_path, proxy):
    task = classification_task("prompting: {shots: [0, 1], templates: [terse]}")
    report = compare(task, out=tmp_path / "run", isolate=False) / "report.html"
    html = report.read_text()
    html = html.replace("</body>", '<img src="https://example.com/probe.png"></body>')  # proves the probe works
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("img-src data:", "img-src data: https:"))
    chromium("--virtual-time-budget=3000", "--dump-dom", probe.as_uri(), user_dir=tmp_path / "p", proxy=proxy)
    assert any("example.com" in r for r in RecordingProxy.seen), "the proxy did not see a request the page made"

    RecordingProxy.seen = []
    shot = tmp_path / "report.png"
    dom = chromium("--virtual-time-budget=3000", "--dump-dom", report.as_uri(), user_dir=tmp_path / "u", proxy=proxy).stdout
    chromium("--window-size=1280,1600", f"--screenshot={shot}", report.as_uri(), user_dir=tmp_path / "s", proxy=proxy)
    assert RecordingProxy.seen == [], f"the report made network requests: {RecordingProxy.seen}"
    svgs = re.findall(r"<svg[^>]*>(.*?)</svg>", dom, re.S)
    assert len(svgs) >= 2 and all(re.search(r"<(rect|circle|polyline)", s) for s in svgs)
    assert "Recommendation:" in dom
    assert shot.stat().st_size > 20_000  # a blank page compresses to a few KB


def test_drilldown_renders_and_a_filter_click_changes_the_rows(tmp_path, proxy):
    page = render_report(constructed_run(tmp_path / "run", 300, 4))
    with Chromium(tmp_path / "u", proxy=proxy) as browser:
        browser.open(page.as_uri())
        state = "[+dd.dataset.matching, document.querySelectorAll('.dd-table tbody tr').length]"
        view = f"(function () {{ var dd = document.getElementById('dd-root'); return {state}; }})()"
        assert browser.js(view) == [300, 100]  # every item matches; the first page of rows is drawn
        browser.js("document.getElementById('dd-disagree').click()")
        matching, rows = browser.js(view)
        assert 0 < matching < 300 and rows == min(matching, 100)
        browser.js("document.querySelector('.dd-table tbody tr').click()")  # the row's details: answers and retrieved chunks
        details = browser.js("document.querySelector('.dd-details').innerText")
        assert "Gold document: doc-" in details and "Retrieved 4 chunks; gold document among them:" in details
        browser.js("document.getElementById('dd-disagree').click()")
        browser.js("var q = document.getElementById('dd-q'); q.value = 'Q00007'; q.dispatchEvent(new Event('input'))")
        assert browser.js(view) == [1, 1]  # the text search, case-insensitive, on the item id
    with Chromium(tmp_path / "q", proxy=proxy) as browser:  # the same filter from the query string
        browser.open(page.as_uri() + "?dd_disagree=1")
        assert browser.js("+document.getElementById('dd-root').dataset.matching") == matching
    assert RecordingProxy.seen == [], f"the report made network requests: {RecordingProxy.seen}"


def test_without_javascript_the_rest_of_the_report_shows(tmp_path, proxy):
    page = render_report(constructed_run(tmp_path / "run", 20, 2))
    with Chromium(tmp_path / "u", proxy=proxy) as browser:
        browser.send("Emulation.setScriptExecutionDisabled", value=True)
        browser.open(page.as_uri())
        dom = browser.send("DOM.getOuterHTML", nodeId=browser.send("DOM.getDocument")["root"]["nodeId"])["outerHTML"]
    assert "Results" in dom and "<svg" in dom and "This view needs JavaScript" in dom
    assert re.search(r'<div id="dd-root" hidden="">\s*</div>', dom)  # nothing drawn, nothing broken


def test_a_page_of_10000_items_by_10_trials_meets_its_budget(tmp_path):
    row = measure(10_000, 10, tmp_path, repeat=3)  # the median of three opens: one slow open on a busy machine is noise
    assert row["html_mb"] < 10 and row["sampled"] is None
    assert row["interactive_ms"] < 2000 and row["filter_ms"] < 2000, row
