"""The HTML summary opened in a real browser: headless Chromium (Debian's ``chromium`` package, which
``.ci/run`` installs) loads the page from a file, and the test reads what it shows, what it logged and
what it tried to fetch, over the DevTools protocol on a pipe (standard library only).

Without /usr/bin/chromium the tests skip, except under CI (``CI`` set), where they fail: a browser
test that skips in CI would pass without ever having run.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import subprocess
import time
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from batchsms.summary import CampaignRow, figures, write_html

CHROMIUM = Path("/usr/bin/chromium")
SYDNEY = ZoneInfo("Australia/Sydney")
T0 = 1796083200  # Tue 1 Dec 2026 00:00 UTC (11:00 AEDT)


def chromium() -> str:
    if CHROMIUM.exists():
        return str(CHROMIUM)
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing under CI: .ci/run installs Debian's chromium package (apt-get)")
    pytest.skip(f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium); CI installs it")


class Browser:
    """Headless Chromium driven over ``--remote-debugging-pipe``: JSON messages ending in NUL, ours on
    its fd 3, its answers and events on its fd 4."""

    def __init__(self, exe: str, profile: Path, timeout: float = 20.0) -> None:
        self.deadline = time.monotonic() + timeout
        to_child, self._out = os.pipe()
        self._in, from_child = os.pipe()

        def pipes_at_3_and_4() -> None:  # in the child, before exec: move the ends to 3 and 4
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_child, from_child)]
            for target, fd in zip((3, 4), high, strict=True):
                os.dup2(fd, target)

        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-extensions", "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"],
            pass_fds=(3, 4), preexec_fn=pipes_at_3_and_4, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_child)
        os.close(from_child)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            self.call(f"{domain}.enable", session=True)

    def _message(self) -> dict:
        while b"\0" not in self._buffer:
            left = self.deadline - time.monotonic()
            assert left > 0, "Chromium did not answer in time"
            ready, _, _ = select.select([self._in], [], [], left)
            if ready:
                chunk = os.read(self._in, 1 << 20)
                assert chunk, f"Chromium closed the pipe (exit code {self.proc.poll()})"
                self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, *, session: bool = False) -> dict:
        self._next_id += 1
        request = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            request["sessionId"] = self.session
        os.write(self._out, json.dumps(request).encode() + b"\0")
        while True:
            message = self._message()
            if message.get("id") == self._next_id:
                assert "error" not in message, f"{method}: {message['error']}"
                return message["result"]
            self.events.append(message)

    def wait_for(self, event: str) -> dict:
        for seen in self.events:
            if seen.get("method") == event:
                self.events.remove(seen)
                return seen
        while True:
            message = self._message()
            if message.get("method") == event:
                return message
            self.events.append(message)

    def open(self, url: str) -> None:
        """Load ``url`` and wait for its load event; events from earlier pages are dropped."""
        self.events.clear()
        self.call("Page.navigate", {"url": url}, session=True)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"]["value"]

    def complaints(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions and browser log errors since the page opened."""
        found = []
        for e in self.events:
            params = e.get("params", {})
            if e.get("method") == "Runtime.consoleAPICalled" and params["type"] in ("error", "warning", "assert"):
                found.append(f"console.{params['type']}: {[a.get('value') for a in params['args']]}")
            elif e.get("method") == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails'].get('text')}")
            elif e.get("method") == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
                found.append(f"log {params['entry']['level']}: {params['entry']['text']}")
        return found

    def requests(self) -> list[str]:
        """Every URL the page asked for since it opened (its own file included)."""
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]

    def close(self) -> None:
        with contextlib.suppress(AssertionError):  # it may close the pipe before it answers
            self.call("Browser.close")
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._out)
        os.close(self._in)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    started = Browser(chromium(), tmp_path_factory.mktemp("chromium-profile"))
    yield started
    started.close()


def campaign() -> list[CampaignRow]:
    rows = [CampaignRow(2 + i, "sent", "AU", "mobile", 1, Decimal("0.055"), "AUD", "Delivered", T0 + 600 * i)
            for i in range(24)]
    rows += [CampaignRow(30 + i, "sent", "NZ", "mobile", 2, Decimal("0.09"), "AUD", "Failed", error="absent subscriber")
             for i in range(2)]
    rows += [CampaignRow(40, "scheduled", "NZ", "mobile", 1, Decimal("0.09"), "AUD", "Processing"),
             CampaignRow(41, "failed", "AU", "mobile", 1, error="<img src=x onerror=alert(1)>"),
             CampaignRow(42, "unknown", "<script>alert(1)</script>", "mobile", 1),
             CampaignRow(43, "invalid", problems=("invalid-phone",)),
             CampaignRow(44, "skipped", "AU", "mobile", 1, problems=("suppressed",))]
    return rows


def test_the_page_shows_the_figures_with_no_console_error_and_no_request(browser, tmp_path):
    page = write_html(tmp_path / "campaign.html", figures(campaign(), zone=SYDNEY, title="Spring <sale>",
                                                          generated_at=T0 + 86400, source="c.results.csv"))
    url = page.as_uri()
    browser.open(url)
    shown = browser.evaluate("document.body.innerText")
    assert browser.complaints() == []
    assert browser.requests() in ([], [url])  # the page itself, nothing else
    assert browser.evaluate("document.title") == "Spring <sale>: campaign summary"
    for text in ("Spring <sale>", "Recipients\n29", "Delivered\n24", "92.3%", "of 26 sent messages with a final",
                 "A$1.59", "Australia (AU)", "New Zealand (NZ)", "<script>alert(1)</script>",
                 "<img src=x onerror=alert(1)>", "invalid-phone", "the recipient is not a valid phone number",
                 "absent subscriber", "Tue 1 Dec 2026 11:00 AEDT"):
        assert text in shown, text
    assert browser.evaluate("document.querySelectorAll('script, img, iframe, link, object, embed').length") == 0
    charts = browser.evaluate(
        "[...document.querySelectorAll('svg')].map(s => [s.getAttribute('role'), s.querySelector(':scope > title')"
        ".textContent, Math.round(s.getBoundingClientRect().width)])")
    assert [c[1] for c in charts] == [
        "Funnel: rows in the sheet, passed the check, sent, delivered", "What happened to every row",
        "Recipients by country", "Recipients by line type", "Cost of the messages sent, by country",
        "Messages delivered per hour, Australia/Sydney"]
    assert all(role == "img" and width > 300 for role, _, width in charts)
    # The funnel's bars are drawn to scale: rows 31, passed 29, sent 27, delivered 24 (of a 400-unit bar).
    widths = browser.evaluate("[...document.querySelectorAll('svg')[0].querySelectorAll('rect')]"
                              ".map(r => r.width.baseVal.value)")
    assert widths == [400, pytest.approx(400 * 29 / 31, abs=0.1), pytest.approx(400 * 27 / 31, abs=0.1),
                      pytest.approx(400 * 24 / 31, abs=0.1)]
    pdf = base64.b64decode(browser.call("Page.printToPDF", {}, session=True)["data"])
    assert pdf.startswith(b"%PDF")


def test_the_checks_see_console_errors_and_requests(browser, tmp_path):
    """The same checks on a page that logs an error and fetches an image do complain: they can fail."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html lang="en"><title>bad</title><img src="http://127.0.0.1:9/x.png">'
                    '<script>console.error("boom")</script></html>', encoding="utf-8")
    browser.open(page.as_uri())
    assert "console.error: ['boom']" in browser.complaints()
    assert "http://127.0.0.1:9/x.png" in browser.requests()
