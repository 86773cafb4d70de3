"""The package's calls against the real daemon, as a service uses them: check and explain
give a Decision whose fields are those of the committed audit row; a deny is a decision;
describe, status and reload; the socket from FLOWGATE_SOCKET; one client per thread."""

from __future__ import annotations

import json
import threading
from typing import Any, Callable

import pytest

import flowgate
from conftest import Daemon


def to_prevent(client: flowgate.Client, **extra: Any) -> flowgate.Decision:
    return client.check("health_services", "prevent", ["checkup_result"],
                        activity="lifestyle_programme", subject="p-000123", **extra)


def test_check_allows_with_the_rule_obligations_and_committed_seq(daemon: Daemon) -> None:
    with flowgate.Client.connect(daemon.socket) as client:
        decision = to_prevent(client)
    assert decision.allowed
    assert decision.rule == "r3_j"
    assert decision.legal_basis == "appi_27_5_1"
    assert decision.obligations == ("contract_reference",)
    assert decision.policy.startswith("sha256:")
    assert decision.reason
    assert decision.answer["decision"] == "allow"
    assert decision.answer["rule"]["table"] == {"row": 3, "case": "j"}
    assert decision.audit_seq is not None
    [row] = daemon.rows("seq = ?", decision.audit_seq)
    assert (row["kind"], row["decision"], row["rule"]) == ("check", "allow", "r3_j")
    assert json.loads(row["request"])["subject"] == "p-000123"


def test_a_deny_is_a_decision_not_an_exception(daemon: Daemon) -> None:
    with flowgate.Client.connect(daemon.socket) as client:
        denied = client.check("health_services", "employer", ["checkup_result"])
        assert not denied.allowed
        assert denied.reason
        assert denied.rule is None or isinstance(denied.rule, str)
        [row] = daemon.rows("seq = ?", denied.audit_seq)
        assert row["decision"] == "deny"
        # An unknown name is a deny too, and whatever the daemon adds to it is kept.
        unknown = client.check("health_servces", "prevent", ["checkup_result"])
        assert not unknown.allowed
        assert "health_servces" in unknown.reason
        assert unknown.answer["reason"] == unknown.reason
        # Consent on record turns the employer's deny into the collaboration case.
        consented = client.check("health_services", "employer", ["checkup_result"],
                                 context={"consent": True})
        assert consented.allowed
        assert consented.rule == "r3_d"
        assert consented.obligations == ("provision_record",)
        assert client.connected


def test_names_may_be_the_tables_labels(daemon: Daemon) -> None:
    with flowgate.Client.connect(daemon.socket) as client:
        decision = client.check("保健事業に必要な利用目的", "(株)PREVENT", ["checkup_result"],
                                activity="lifestyle_programme")
    assert decision.allowed
    assert decision.rule == "r3_j"


def test_explain_carries_the_trace_with_the_deciding_rule_matched(daemon: Daemon) -> None:
    with flowgate.Client.connect(daemon.socket) as client:
        explained = client.explain("health_services", "prevent", ["checkup_result"],
                                   activity="lifestyle_programme")
        checked = to_prevent(client)
    assert explained.allowed and explained.rule == checked.rule
    assert any(step["rule"] == explained.rule and step["matched"] for step in explained.trace)
    assert checked.trace == []
    [row] = daemon.rows("seq = ?", explained.audit_seq)
    assert row["kind"] == "explain"


def test_describe_and_status_agree_on_the_policy(daemon: Daemon) -> None:
    with flowgate.Client.connect(daemon.socket) as client:
        described = client.describe()
        status = client.status()
    assert described["policy"].startswith("sha256:")
    assert described["policy"] == status["policy"]
    assert "health_services" in [purpose["id"] for purpose in described["purposes"]]
    assert described["parties"] and described["categories"]
    assert status["version"]
    assert status["audit"]["available"] is True


def test_reload_as_an_admin_answers_the_new_hash_which_then_decides(
    make_daemon: Callable[..., Daemon],
) -> None:
    daemon = make_daemon(admin=True)
    with flowgate.Client.connect(daemon.socket, timeout=60) as client:
        before = client.status()["policy"]
        with open(daemon.policy / "members.policy", "a", encoding="utf-8") as policy:
            policy.write("\n# reloaded by the Python client's test\n")
        reloaded = client.reload()
        assert reloaded.startswith("sha256:") and reloaded != before
        assert to_prevent(client).policy == reloaded


def test_a_bad_policy_is_reload_failed_with_the_diagnostics_and_the_old_one_serves(
    make_daemon: Callable[..., Daemon],
) -> None:
    daemon = make_daemon(admin=True)
    (daemon.policy / "zz-broken.policy").write_text(
        '# broken on purpose\ncategory oops "x" sensitivity;\n', encoding="utf-8")
    with flowgate.Client.connect(daemon.socket, timeout=60) as client:
        before = client.status()["policy"]
        with pytest.raises(flowgate.DaemonError) as refused:
            client.reload()
        assert refused.value.code == "reload_failed"
        assert refused.value.kind == "daemon_error"
        assert "zz-broken.policy:2:" in refused.value.message
        assert refused.value.answer["error"]["diagnostics"]
        assert to_prevent(client).policy == before


def test_reload_by_anyone_else_is_forbidden_and_the_client_goes_on(daemon: Daemon) -> None:
    with flowgate.Client.connect(daemon.socket) as client:
        with pytest.raises(flowgate.DaemonError) as refused:
            client.reload()
        assert refused.value.code == "forbidden"
        assert client.connected
        assert to_prevent(client).allowed
    assert [row["kind"] for row in daemon.rows("kind = 'admin_refused'")] == ["admin_refused"]


def test_the_socket_comes_from_flowgate_socket(daemon: Daemon, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWGATE_SOCKET", str(daemon.socket))
    assert flowgate.default_socket_path() == str(daemon.socket)
    with flowgate.Client.connect() as client:
        assert client.path == str(daemon.socket)
        assert to_prevent(client).allowed
    monkeypatch.setenv("FLOWGATE_SOCKET", "")
    assert flowgate.default_socket_path() == flowgate.DEFAULT_SOCKET == "/run/flowgate/flowgate.sock"


def test_the_context_manager_closes_the_connection(daemon: Daemon) -> None:
    with flowgate.Client.connect(daemon.socket) as client:
        assert to_prevent(client).allowed
    assert not client.connected
    with pytest.raises(flowgate.DisconnectedError, match="this client was closed"):
        to_prevent(client)


def test_one_client_per_thread_each_gets_its_own_answers(daemon: Daemon) -> None:
    results: dict[int, list[tuple[str, int | None]]] = {}
    failures: list[BaseException] = []

    def work(n: int) -> None:
        try:
            with flowgate.Client.connect(daemon.socket) as client:
                results[n] = []
                for i in range(50):
                    subject = f"t{n}-{i}"
                    recipient = "prevent" if (n + i) % 2 else "employer"
                    d = client.check("health_services", recipient, ["checkup_result"],
                                     subject=subject)
                    assert d.allowed == (recipient == "prevent")
                    results[n].append((subject, d.audit_seq))
        except BaseException as error:  # reported below, with the thread's number
            failures.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    # Each answer was the one to that thread's own request: its row names its subject.
    rows = {row["seq"]: json.loads(row["request"]) for row in daemon.rows("kind = 'check'")}
    for answered in results.values():
        for subject, seq in answered:
            assert rows[seq]["subject"] == subject
    assert len(rows) == 8 * 50


def test_check_refuses_one_string_for_data(daemon: Daemon) -> None:
    with flowgate.Client.connect(daemon.socket) as client:
        with pytest.raises(TypeError):
            client.check("health_services", "prevent", "checkup_result")
        assert to_prevent(client).allowed
