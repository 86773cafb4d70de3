"""batch() against the real daemon: 10,000 checks pipelined on one connection, each result
the answer to its own request (its audit row names the request's subject); a refused
request is its DaemonError in its place; a daemon stopped or killed midway fails the
batch with the answers that came, each of them committed."""

from __future__ import annotations

import json
import signal
import threading
import time
from typing import Any

import pytest

import flowgate
from conftest import Daemon


def numbered_checks(count: int, prefix: str) -> list[dict[str, Any]]:
    """Every third goes to the employer (a deny); every other one carries its own id."""
    requests = []
    for i in range(count):
        request = flowgate.check_request(
            "health_services", "employer" if i % 3 == 0 else "prevent", ["checkup_result"],
            subject=f"{prefix}-{i}")
        if i % 2 == 0:
            request["id"] = f"q-{i}"
        requests.append(request)
    return requests


def subjects_by_seq(daemon: Daemon) -> dict[int, str]:
    return {row["seq"]: json.loads(row["request"]).get("subject", "")
            for row in daemon.rows("kind = 'check'")}


def test_ten_thousand_checks_are_pipelined_and_answered_in_order(daemon: Daemon) -> None:
    requests = numbered_checks(10_000, "b")
    with flowgate.Client.connect(daemon.socket, timeout=30) as client:
        results = client.batch(requests)
        assert client.connected
    assert len(results) == len(requests)
    decisions = [r for r in results if isinstance(r, flowgate.Decision)]
    assert len(decisions) == len(requests)
    for i, decision in enumerate(decisions):
        assert decision.allowed == (i % 3 != 0)
        if i % 2 == 0:
            assert decision.answer["id"] == f"q-{i}"
    # Each decision is the one for its own request: its committed row names its subject.
    subjects = subjects_by_seq(daemon)
    assert len(subjects) == len(requests)
    assert [subjects[d.audit_seq] for d in decisions if d.audit_seq is not None] == [
        r["subject"] for r in requests]
    assert requests[1].get("id") is None  # the caller's requests are not changed


def test_a_refused_request_is_its_daemon_error_in_its_place(daemon: Daemon) -> None:
    good = flowgate.check_request("health_services", "prevent", ["checkup_result"])
    bad = {**good, "direction": "sideways"}
    without_op = {key: value for key, value in good.items() if key != "op"}
    explain = flowgate.check_request("health_services", "prevent", ["checkup_result"],
                                     op="explain")
    with flowgate.Client.connect(daemon.socket) as client:
        results = client.batch([good, bad, without_op, explain, bad])
        assert client.connected
    kinds = [type(r).__name__ for r in results]
    assert kinds == ["Decision", "DaemonError", "Decision", "Decision", "DaemonError"]
    refused = results[1]
    assert isinstance(refused, flowgate.DaemonError) and refused.code == "bad_field_value"
    explained = results[3]
    assert isinstance(explained, flowgate.Decision) and explained.trace


def test_a_connection_cut_off_for_junk_raises_the_daemons_code(daemon: Daemon) -> None:
    bad = {**flowgate.check_request("health_services", "prevent", ["checkup_result"]),
           "direction": "sideways"}
    with flowgate.Client.connect(daemon.socket) as client:
        with pytest.raises(flowgate.DaemonError) as cut_off:
            client.batch([bad] * 100)
        assert cut_off.value.code == "too_many_refused"
        assert "unanswered" in cut_off.value.message
        assert cut_off.value.answers and cut_off.value.answers[0]["error"]["code"] == (
            "bad_field_value")
        assert not client.connected


def test_only_checks_and_explains_are_batched_and_nothing_is_sent_otherwise(
    daemon: Daemon,
) -> None:
    with flowgate.Client.connect(daemon.socket) as client:
        with pytest.raises(ValueError, match="'status'"):
            client.batch([flowgate.check_request("a", "b", ["c"]), {"op": "status"}])
        assert client.batch([]) == []
        assert [a["id"] for a in client.raw_batch([{"op": "status"}, {"op": "describe"}])] == [
            1, 2]
    assert daemon.rows("kind = 'check'") == []


def run_batch_in_thread(client: flowgate.Client, requests: list[dict[str, Any]]
                        ) -> tuple[threading.Thread, list[BaseException]]:
    raised: list[BaseException] = []

    def run() -> None:
        try:
            client.batch(requests)
        except BaseException as error:
            raised.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, raised


def wait_for_requests(daemon: Daemon, at_least: int) -> None:
    with flowgate.Client.connect(daemon.socket) as watcher:
        deadline = time.monotonic() + 60
        while watcher.status()["counters"]["requests"] < at_least:
            assert time.monotonic() < deadline, "the batch did not get going"
            time.sleep(0.002)


def check_partial(daemon: Daemon, error: flowgate.FlowgateError,
                  requests: list[dict[str, Any]]) -> None:
    """The answers that came before the failure are the first ones, in order, each
    committed as the row for its own request."""
    assert 0 < len(error.answers) < len(requests)
    subjects = subjects_by_seq(daemon)
    for request, answer in zip(requests, error.answers):
        assert subjects[answer["audit_seq"]] == request["subject"]


def test_a_daemon_stopped_mid_batch_is_a_timeout_with_the_answers_that_came(
    daemon: Daemon,
) -> None:
    requests = numbered_checks(40_000, "s")
    client = flowgate.Client.connect(daemon.socket, timeout=1.0)
    thread, raised = run_batch_in_thread(client, requests)
    try:
        wait_for_requests(daemon, 2_000)
        daemon.signal(signal.SIGSTOP)
        thread.join(timeout=30)
    finally:
        daemon.signal(signal.SIGCONT)
    assert not thread.is_alive()
    [error] = raised
    assert isinstance(error, flowgate.TimeoutError)
    assert not client.connected
    with pytest.raises(flowgate.DisconnectedError):
        client.batch(requests[:1])
    with flowgate.Client.connect(daemon.socket) as again:  # the daemon goes on serving
        assert again.check("health_services", "prevent", ["checkup_result"]).allowed
    check_partial(daemon, error, requests)


def test_a_daemon_killed_mid_batch_is_disconnected_with_the_answers_that_came(
    daemon: Daemon,
) -> None:
    requests = numbered_checks(40_000, "k")
    client = flowgate.Client.connect(daemon.socket, timeout=5)
    thread, raised = run_batch_in_thread(client, requests)
    wait_for_requests(daemon, 2_000)
    daemon.kill()
    thread.join(timeout=30)
    assert not thread.is_alive()
    [error] = raised
    assert isinstance(error, flowgate.DisconnectedError)
    assert "unanswered" in error.message
    assert not client.connected
    check_partial(daemon, error, requests)
