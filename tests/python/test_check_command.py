"""flowgate-check against the real daemon, side by side with the real ``flowgate check``:
for the same flags the same exit status (0 allow, 1 deny, 2 error), the same output, and
the same request in the audit log; and the failures a shell gate must see as exit 2."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from typing import Any

import pytest

from conftest import SOURCE_DIR, Daemon, built

ALLOWED = ["--purpose", "health_services", "--to", "prevent", "--data", "checkup_result"]
DENIED = ["--purpose", "health_services", "--to", "employer", "--data", "checkup_result"]


def flowgate_check(arguments: list[str], env: dict[str, str] | None = None
                   ) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **(env or {}),
                   "PYTHONPATH": str(SOURCE_DIR / "client" / "python" / "src")}
    return subprocess.run([sys.executable, "-m", "flowgate.check_command", *arguments],
                          capture_output=True, text=True, env=environment, timeout=60,
                          stdin=subprocess.DEVNULL)


def flowgate(arguments: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([built("FLOWGATE"), *arguments], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def without_seq(text: str) -> str:
    return re.sub(r"(audit seq:\s+)\d+", r"\1N", text)


def last_request(daemon: Daemon) -> dict[str, Any]:
    rows = daemon.rows("kind IN ('check', 'refused')")
    request = json.loads(rows[-1]["request"])
    request.pop("id", None)
    return dict(request)


SAME = [
    ALLOWED,
    DENIED,
    DENIED + ["--consent"],
    ["--purpose", "health_services", "--activity", "lifestyle_programme", "--recipient",
     "prevent", "--data", "checkup_result,medical_claims", "--subject", "p-000123"],
    ["--purpose", "保健事業に必要な利用目的", "--to", "(株)PREVENT", "--data", "checkup_result",
     "--data", "benefit", "--legal-basis", "appi_27_1_consent", "--objection"],
    ["--purpose", "health_services", "--to", "prevent", "--data", "checkup_result", "--receive"],
    ["--purpose", "health_services", "--to", "prevent", "--data", "checkup_result", "benefit"],
    ["--request", '{"purpose":"health_services","recipient":"prevent","data":["checkup_result"]}'],
    ["--purpose", "health_servces", "--to", "prevent", "--data", "checkup_result"],
]


@pytest.mark.parametrize("arguments", SAME, ids=lambda a: " ".join(a)[:60])
def test_the_same_flags_give_the_same_status_output_and_request(shared_daemon: Daemon,
                                                                arguments: list[str]) -> None:
    daemon = shared_daemon
    ours = flowgate_check(["--socket", str(daemon.socket), *arguments])
    our_request = last_request(daemon)
    theirs = flowgate(["--socket", str(daemon.socket), "check", *arguments])
    their_request = last_request(daemon)
    assert ours.returncode == theirs.returncode, ours.stderr
    assert ours.returncode in (0, 1)
    assert without_seq(ours.stdout) == without_seq(theirs.stdout)
    assert ours.stderr == theirs.stderr == ""
    assert our_request == their_request

    ours_json = flowgate_check(["--socket", str(daemon.socket), *arguments, "--json"])
    theirs_json = flowgate(["--socket", str(daemon.socket), "check", *arguments, "--json"])
    assert ours_json.returncode == theirs_json.returncode == ours.returncode
    ours_answer, theirs_answer = json.loads(ours_json.stdout), json.loads(theirs_json.stdout)
    assert ours_answer.pop("audit_seq") != theirs_answer.pop("audit_seq")
    assert ours_answer == theirs_answer


def test_allow_is_0_and_deny_is_1(shared_daemon: Daemon) -> None:
    daemon = shared_daemon
    allowed = flowgate_check(["--socket", str(daemon.socket), *ALLOWED])
    assert allowed.returncode == 0
    assert allowed.stdout.startswith("allow: ")
    assert " r3_j (table row 3, case j)\n" in allowed.stdout
    denied = flowgate_check(["--socket", str(daemon.socket), *DENIED])
    assert denied.returncode == 1
    assert denied.stdout.startswith("deny: ")


def test_the_socket_comes_from_flowgate_socket(shared_daemon: Daemon) -> None:
    daemon = shared_daemon
    ran = flowgate_check(ALLOWED, env={"FLOWGATE_SOCKET": str(daemon.socket)})
    assert ran.returncode == 0, ran.stderr


@pytest.mark.parametrize("arguments, says", [
    (["--purpose", "health_services"], "flowgate: give --purpose, --to and --data (or --request JSON)\n"),
    (["--request", "[1]"], "flowgate: --request is not a JSON object\n"),
    (["--request", '{"purpose":"health_services"}'], "flowgate: missing_field: "),
])
def test_a_request_that_cannot_be_asked_is_2_said_as_flowgate_says_it(
    shared_daemon: Daemon, arguments: list[str], says: str,
) -> None:
    daemon = shared_daemon
    ours = flowgate_check(["--socket", str(daemon.socket), *arguments])
    theirs = flowgate(["--socket", str(daemon.socket), "check", *arguments])
    assert ours.returncode == theirs.returncode == 2
    assert ours.stderr.startswith(says)
    assert ours.stderr == theirs.stderr
    assert ours.stdout == theirs.stdout == ""


def test_a_usage_error_is_2_and_help_is_0() -> None:
    assert flowgate_check(["--no-such-flag"]).returncode == 2
    assert flowgate_check(["--timeout-ms", "soon", *ALLOWED]).returncode == 2
    helped = flowgate_check(["--help"])
    assert helped.returncode == 0
    for flag in ("--socket", "--timeout-ms", "--request", "--purpose", "--activity", "--to",
                 "--recipient", "--data", "--subject", "--legal-basis", "--consent",
                 "--objection", "--receive", "--json"):
        assert flag in helped.stdout


def test_a_daemon_that_is_down_is_2_and_json_says_not_running(daemon: Daemon) -> None:
    daemon.kill()
    ours = flowgate_check(["--socket", str(daemon.socket), *ALLOWED, "--json"])
    theirs = flowgate(["--socket", str(daemon.socket), "check", *ALLOWED, "--json"])
    assert ours.returncode == theirs.returncode == 2
    assert json.loads(ours.stdout)["error"]["code"] == "not_running"
    assert json.loads(theirs.stdout)["error"]["code"] == "not_running"
    assert ours.stderr.startswith("flowgate: flowgated is not running at ")


def test_a_stopped_daemon_is_2_once_the_wait_is_over(daemon: Daemon) -> None:
    daemon.signal(signal.SIGSTOP)
    try:
        stalled = flowgate_check(["--socket", str(daemon.socket), "--timeout-ms", "200",
                                  *ALLOWED, "--json"])
    finally:
        daemon.signal(signal.SIGCONT)
    assert stalled.returncode == 2
    assert "did not answer within 200 ms" in stalled.stderr
    assert json.loads(stalled.stdout)["error"]["code"] == "timeout"
