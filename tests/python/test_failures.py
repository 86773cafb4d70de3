"""Each way a call can fail raises the exception named after the C++ client's error kind,
and leaves the client in the state that kind promises: not_running, timeout (the
connection closed, so a late answer is never taken for a later request's), disconnected,
protocol, io, and daemon_error with the daemon's code. Silent and broken daemons are real
socket servers in the test; the real daemon is stopped with SIGSTOP."""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path
from typing import Any, Callable

import pytest

import flowgate
from conftest import Answerer, Daemon, FakeDaemon, request_id

FakeMaker = Callable[[Answerer], FakeDaemon]


def answer_line(answer: dict[str, Any]) -> bytes:
    return json.dumps(answer).encode() + b"\n"


def allow_for(line: bytes, **extra: Any) -> bytes:
    return answer_line({"id": request_id(line), "decision": "allow", "reason": "fake",
                        "rule": {"id": "r1"}, "legal_basis": None, "obligations": [],
                        "policy": "sha256:00", "audit_seq": 1, **extra})


def ask(client: flowgate.Client) -> flowgate.Decision:
    return client.check("health_services", "prevent", ["checkup_result"])


def test_no_daemon_at_the_path_is_not_running_naming_it(tmp_dir: Path) -> None:
    missing = tmp_dir / "none.sock"
    with pytest.raises(flowgate.NotRunningError) as error:
        flowgate.Client.connect(missing)
    assert error.value.kind == "not_running"
    assert str(missing) in error.value.message
    # A socket file nobody listens on (a daemon that died) is the same.
    stale = tmp_dir / "stale.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(stale))
    listener.close()
    with pytest.raises(flowgate.NotRunningError):
        flowgate.Client.connect(stale)


def test_a_path_too_long_for_a_socket_is_io(tmp_dir: Path) -> None:
    with pytest.raises(flowgate.IoError) as error:
        flowgate.Client.connect(tmp_dir / ("x" * 200))
    assert error.value.kind == "io"


def test_a_killed_daemon_is_not_running_for_the_next_connect(daemon: Daemon) -> None:
    client = flowgate.Client.connect(daemon.socket)
    daemon.kill()
    with pytest.raises(flowgate.DisconnectedError):
        ask(client)
    assert not client.connected
    with pytest.raises(flowgate.DisconnectedError, match="connect again"):
        ask(client)
    with pytest.raises(flowgate.NotRunningError):
        flowgate.Client.connect(daemon.socket)


def test_an_error_answer_is_daemon_error_with_its_code_and_the_client_goes_on(
    daemon: Daemon,
) -> None:
    with flowgate.Client.connect(daemon.socket) as client:
        with pytest.raises(flowgate.DaemonError) as refused:
            client.check("health_services", "prevent", ["checkup_result"], direction="sideways")
        assert refused.value.code == "bad_field_value"
        assert refused.value.answer["error"]["code"] == "bad_field_value"
        assert "bad_field_value" in refused.value.message
        # request() hands back an error answer as it came.
        raw = client.request({"op": "check", "purpose": "health_services"})
        assert raw["error"]["code"] == "missing_field"
        assert client.connected and ask(client).allowed
    # Both refused checks are audited denies.
    assert [row["decision"] for row in daemon.rows("kind = 'refused'")] == ["deny", "deny"]


def test_too_many_connections_is_the_daemons_code_not_a_broken_pipe(
    make_daemon: Callable[..., Daemon],
) -> None:
    daemon = make_daemon(start=False)
    text = daemon.config.read_text().replace("[limits]\n", "[limits]\nmax_connections = 1\n")
    daemon.config.write_text(text)
    daemon.start()
    first = flowgate.Client.connect(daemon.socket)
    while True:  # until the daemon has seen start()'s own connection close
        try:
            assert ask(first).allowed
            break
        except flowgate.DaemonError as error:
            assert error.code == "too_many_connections"
            time.sleep(0.01)
            first = flowgate.Client.connect(daemon.socket)
    with first:
        with flowgate.Client.connect(daemon.socket) as second:
            with pytest.raises(flowgate.DaemonError) as refused:
                ask(second)
            assert refused.value.code == "too_many_connections"
            assert not second.connected


def test_a_silent_daemon_is_a_timeout_after_which_the_client_is_closed(
    fake_daemon: FakeMaker,
) -> None:
    silent = fake_daemon(lambda line: None)
    client = flowgate.Client.connect(silent.path, timeout=0.2)
    started = time.monotonic()
    with pytest.raises(flowgate.TimeoutError) as error:
        ask(client)
    waited = time.monotonic() - started
    assert 0.2 <= waited < 2
    assert error.value.kind == "timeout"
    assert "200 ms" in error.value.message
    assert not client.connected
    with pytest.raises(flowgate.DisconnectedError, match="did not answer within 200 ms"):
        ask(client)


def test_a_late_answer_is_never_taken_for_the_next_requests(fake_daemon: FakeMaker) -> None:
    def late_then_prompt(line: bytes) -> bytes | None:
        request = json.loads(line)
        if request["subject"] == "late":
            time.sleep(0.4)  # answers after the client gave up
            return allow_for(line, reason="the late one")
        return allow_for(line, reason="the prompt one")

    fake = fake_daemon(late_then_prompt)
    client = flowgate.Client.connect(fake.path, timeout=0.1)
    with pytest.raises(flowgate.TimeoutError):
        client.check("p", "r", ["d"], subject="late")
    time.sleep(0.5)  # the late answer has been written by now
    with pytest.raises(flowgate.DisconnectedError):
        client.check("p", "r", ["d"], subject="next")
    with flowgate.Client.connect(fake.path, timeout=2) as again:
        assert again.check("p", "r", ["d"], subject="next").reason == "the prompt one"


def test_a_stopped_daemon_is_a_timeout_and_a_new_client_works_once_it_goes_on(
    daemon: Daemon,
) -> None:
    client = flowgate.Client.connect(daemon.socket, timeout=0.3)
    daemon.signal(signal.SIGSTOP)
    try:
        with pytest.raises(flowgate.TimeoutError):
            ask(client)
    finally:
        daemon.signal(signal.SIGCONT)
    assert not client.connected
    with flowgate.Client.connect(daemon.socket) as again:
        assert ask(again).allowed


@pytest.mark.parametrize("reply", [b"not json\n", b"[1, 2]\n", b"\xff\xfe\n", b'"text"\n'])
def test_an_answer_that_is_not_a_json_object_is_protocol(fake_daemon: FakeMaker,
                                                          reply: bytes) -> None:
    fake = fake_daemon(lambda line: reply)
    client = flowgate.Client.connect(fake.path, timeout=2)
    with pytest.raises(flowgate.ProtocolError) as error:
        ask(client)
    assert error.value.kind == "protocol"
    assert not client.connected


def test_an_answer_to_another_id_is_protocol(fake_daemon: FakeMaker) -> None:
    fake = fake_daemon(lambda line: answer_line({"id": 999, "decision": "allow"}))
    client = flowgate.Client.connect(fake.path, timeout=2)
    with pytest.raises(flowgate.ProtocolError, match="id 999 where id 1 was expected"):
        ask(client)
    assert not client.connected


def test_an_answer_to_a_check_without_a_decision_is_protocol_never_an_allow(
    fake_daemon: FakeMaker,
) -> None:
    fake = fake_daemon(lambda line: answer_line({"id": request_id(line), "allowed": True}))
    client = flowgate.Client.connect(fake.path, timeout=2)
    with pytest.raises(flowgate.ProtocolError, match="without a decision"):
        ask(client)
    assert not client.connected


def test_fields_the_package_does_not_know_are_kept_in_the_answer(fake_daemon: FakeMaker) -> None:
    def deny_with_suggestions(line: bytes) -> bytes:
        return answer_line({"id": request_id(line), "decision": "deny",
                            "reason": "unknown purpose 'helth'", "rule": None,
                            "legal_basis": None, "obligations": [], "policy": "sha256:00",
                            "audit_seq": 7, "suggestions": {"purpose": ["health_services"]},
                            "something_new": [1, {"x": None}]})

    fake = fake_daemon(deny_with_suggestions)
    with flowgate.Client.connect(fake.path, timeout=2) as client:
        decision = client.check("helth", "prevent", ["checkup_result"])
    assert not decision.allowed
    assert (decision.rule, decision.legal_basis, decision.audit_seq) == (None, None, 7)
    assert decision.answer["suggestions"] == {"purpose": ["health_services"]}
    assert decision.answer["something_new"] == [1, {"x": None}]


def test_a_deny_without_an_audit_row_has_no_seq(fake_daemon: FakeMaker) -> None:
    fake = fake_daemon(lambda line: answer_line({
        "id": request_id(line), "decision": "deny", "reason": "audit_unavailable",
        "rule": None, "legal_basis": None, "obligations": [], "policy": "sha256:00",
        "audit_seq": None}))
    with flowgate.Client.connect(fake.path, timeout=2) as client:
        decision = ask(client)
    assert not decision.allowed
    assert decision.reason == "audit_unavailable"
    assert decision.audit_seq is None


def test_answers_split_across_many_writes_and_joined_in_one_are_read_right(
    fake_daemon: FakeMaker,
) -> None:
    def in_pieces(line: bytes) -> list[bytes]:
        whole = allow_for(line, reason="x" * 5000)
        return [whole[i:i + 7] for i in range(0, len(whole), 7)]

    with flowgate.Client.connect(fake_daemon(in_pieces).path, timeout=2) as client:
        decision = ask(client)
        assert decision.allowed and decision.reason == "x" * 5000
        assert ask(client).audit_seq == 1

    held: list[bytes] = []

    def all_at_once(line: bytes) -> bytes | None:  # the three answers in one write
        held.append(allow_for(line, reason=str(request_id(line))))
        return b"".join(held) if len(held) == 3 else None

    with flowgate.Client.connect(fake_daemon(all_at_once).path, timeout=2) as client:
        results = client.batch([flowgate.check_request("p", "r", ["d"])] * 3)
    assert [r.reason for r in results if isinstance(r, flowgate.Decision)] == ["1", "2", "3"]
