"""Open a page in a real headless Chromium and report what it did.

Driven over the DevTools protocol on a pipe (--remote-debugging-pipe: fds 3 and 4,
messages ended by NUL), with the standard library only: no port to race for, no
package to install. The report holds every console error, uncaught exception and
error log entry (a Content-Security-Policy violation is one), every network request
the page made, the value of a JavaScript expression evaluated after the load event,
and optionally a PNG screenshot.
"""

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise SystemExit("no chromium on PATH (scripts/install-deps.sh installs Debian's)")


class Browser:
    def __init__(self, width=1400, height=1800):
        self.width, self.height = width, height
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()
        # Move the browser's ends above 10 so that dup2 onto 3 and 4 cannot clobber them.
        child_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_browser_r)
        os.close(from_browser_w)

        def wire_pipes():
            os.dup2(child_r, 3)
            os.dup2(child_w, 4)

        self.profile = tempfile.mkdtemp(prefix="flowgate-chromium-")
        self.log = open(os.path.join(self.profile, "stderr.log"), "wb")
        args = [
            find_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
            "--remote-debugging-pipe", "--user-data-dir=" + self.profile,
            "--no-first-run", "--no-default-browser-check", "--disable-extensions",
            "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-default-apps", "--mute-audio",
            "--window-size=%d,%d" % (width, height), "about:blank",
        ]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=self.log, preexec_fn=wire_pipes, pass_fds=(3, 4))
        os.close(child_r)
        os.close(child_w)
        self.write_fd, self.read_fd = to_browser_w, from_browser_r
        self.buffer = b""
        self.next_id = 0
        self.events = []

    def _read_message(self, deadline):
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("chromium did not answer in time")
            ready, _, _ = select.select([self.read_fd], [], [], left)
            if ready:
                chunk = os.read(self.read_fd, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the pipe")
                self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method, params=None, session=None, timeout=30):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.write_fd, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError("%s: %s" % (method, reply["error"]))
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method, session, timeout=30):
        for event in self.events:
            if event.get("method") == method and event.get("sessionId") == session:
                return event
        deadline = time.monotonic() + timeout
        while True:
            event = self._read_message(deadline)
            self.events.append(event)
            if event.get("method") == method and event.get("sessionId") == session:
                return event

    def drain(self, seconds):
        deadline = time.monotonic() + seconds
        try:
            while True:
                self.events.append(self._read_message(deadline))
        except TimeoutError:
            pass

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.write_fd)
        os.close(self.read_fd)
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


def check_page(path, expression, screenshot=None, width=1400, height=1800):
    """Load `path` (a file) and return {"errors", "requests", "value"}."""
    url = "file://" + os.path.abspath(path)
    browser = Browser(width, height)
    try:
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.call("Target.attachToTarget",
                               {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.call(domain + ".enable", session=session)
        browser.call("Emulation.setDeviceMetricsOverride",
                     {"width": width, "height": height, "deviceScaleFactor": 1,
                      "mobile": False}, session=session)
        browser.events.clear()
        browser.call("Page.navigate", {"url": url}, session=session)
        browser.wait_event("Page.loadEventFired", session)
        browser.drain(0.3)  # late console messages and requests
        result = browser.call("Runtime.evaluate",
                              {"expression": expression, "returnByValue": True},
                              session=session)
        if "exceptionDetails" in result:
            raise RuntimeError("the test's expression failed: %s" % result["exceptionDetails"])
        value = result["result"].get("value")
        if screenshot:
            shot = browser.call("Page.captureScreenshot", {"format": "png"}, session=session)
            with open(screenshot, "wb") as out:
                out.write(base64.b64decode(shot["data"]))
        errors, requests = [], []
        for event in browser.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append("console: %s" % [a.get("value") for a in params.get("args", [])])
            elif method == "Runtime.exceptionThrown":
                errors.append("exception: %s" % params["exceptionDetails"].get("text"))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                errors.append("log: %s" % params["entry"].get("text"))
            elif method == "Network.requestWillBeSent":
                if params["request"]["url"] != url:
                    requests.append(params["request"]["url"])
        return {"errors": errors, "requests": requests, "value": value}
    finally:
        browser.close()
