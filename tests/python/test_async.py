"""AsyncClient against the real daemon: 100 concurrent tasks on one connection, each given
the answer to its own request; the same calls as Client; a silent daemon times out every
waiting task and closes the connection; a cancelled task does not shift the answers."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from typing import Callable

import pytest

import flowgate
from conftest import Answerer, Daemon, FakeDaemon, request_id


def test_a_hundred_concurrent_tasks_each_get_their_own_answer(daemon: Daemon) -> None:
    async def main() -> list[tuple[str, flowgate.Decision]]:
        async with await flowgate.AsyncClient.connect(daemon.socket) as client:
            async def task(n: int) -> list[tuple[str, flowgate.Decision]]:
                out = []
                for i in range(20):
                    subject = f"a{n}-{i}"
                    recipient = "prevent" if (n + i) % 2 else "employer"
                    out.append((subject, await client.check(
                        "health_services", recipient, ["checkup_result"], subject=subject)))
                return out

            per_task = await asyncio.gather(*(task(n) for n in range(100)))
            assert client.connected
            return [item for items in per_task for item in items]

    answered = asyncio.run(main())
    assert len(answered) == 2000
    subjects = {row["seq"]: json.loads(row["request"])["subject"]
                for row in daemon.rows("kind = 'check'")}
    assert len(subjects) == 2000
    for subject, decision in answered:
        assert subjects[decision.audit_seq] == subject
        n, i = (int(part) for part in subject[1:].split("-"))
        assert decision.allowed == bool((n + i) % 2)


def test_the_same_calls_as_client(make_daemon: Callable[..., Daemon]) -> None:
    daemon = make_daemon(admin=True)

    async def main() -> None:
        client = await flowgate.AsyncClient.connect(daemon.socket, timeout=60)
        try:
            explained = await client.explain("health_services", "prevent", ["checkup_result"],
                                             activity="lifestyle_programme")
            assert explained.allowed and explained.rule == "r3_j" and explained.trace
            described, status = await asyncio.gather(client.describe(), client.status())
            assert described["policy"] == status["policy"]
            assert (await client.reload()).startswith("sha256:")
            denied = flowgate.check_request("health_services", "employer", ["checkup_result"])
            results = await client.batch([denied, {**denied, "direction": "sideways"}]
                                         + [denied] * 998)
            assert [type(r).__name__ for r in results[:3]] == ["Decision", "DaemonError",
                                                               "Decision"]
            assert len(results) == 1000
            with pytest.raises(flowgate.DaemonError) as refused:
                await client.check("health_services", "prevent", ["checkup_result"],
                                   direction="sideways")
            assert refused.value.code == "bad_field_value"
            assert client.connected
        finally:
            await client.close()
        assert not client.connected
        with pytest.raises(flowgate.DisconnectedError, match="this client was closed"):
            await client.status()

    asyncio.run(main())


def test_not_running_is_raised_by_connect(daemon: Daemon) -> None:
    daemon.kill()
    with pytest.raises(flowgate.NotRunningError):
        asyncio.run(flowgate.AsyncClient.connect(daemon.socket))


def test_a_silent_daemon_times_out_every_waiting_task_and_closes(
    fake_daemon: Callable[[Answerer], FakeDaemon],
) -> None:
    silent = fake_daemon(lambda line: None)

    async def main() -> None:
        client = await flowgate.AsyncClient.connect(silent.path, timeout=0.2)
        started = time.monotonic()
        results = await asyncio.gather(
            *(client.check("p", "r", ["d"]) for _ in range(10)), return_exceptions=True)
        assert 0.2 <= time.monotonic() - started < 2
        assert all(isinstance(r, flowgate.TimeoutError) for r in results)
        assert not client.connected
        with pytest.raises(flowgate.DisconnectedError, match="did not answer within 200 ms"):
            await client.check("p", "r", ["d"])
        await client.close()

    asyncio.run(main())


def test_a_stopped_daemon_is_a_timeout(daemon: Daemon) -> None:
    async def main() -> None:
        async with await flowgate.AsyncClient.connect(daemon.socket, timeout=0.3) as client:
            daemon.signal(signal.SIGSTOP)
            try:
                with pytest.raises(flowgate.TimeoutError):
                    await client.check("health_services", "prevent", ["checkup_result"])
            finally:
                daemon.signal(signal.SIGCONT)
            assert not client.connected

    asyncio.run(main())


def test_a_cancelled_task_does_not_shift_the_answers(
    fake_daemon: Callable[[Answerer], FakeDaemon],
) -> None:
    def slow_first(line: bytes) -> bytes:
        subject = json.loads(line)["subject"]
        if subject == "first":
            time.sleep(0.2)
        return json.dumps({"id": request_id(line), "decision": "allow", "reason": subject,
                           "policy": "sha256:00", "audit_seq": 1}).encode() + b"\n"

    fake = fake_daemon(slow_first)

    async def main() -> None:
        async with await flowgate.AsyncClient.connect(fake.path, timeout=2) as client:
            first = asyncio.create_task(client.check("p", "r", ["d"], subject="first"))
            await asyncio.sleep(0.05)
            second = asyncio.create_task(client.check("p", "r", ["d"], subject="second"))
            await asyncio.sleep(0.01)
            first.cancel()
            assert (await second).reason == "second"
            assert (await client.check("p", "r", ["d"], subject="third")).reason == "third"

    asyncio.run(main())


def test_an_answer_to_another_id_is_protocol_for_every_waiting_task(
    fake_daemon: Callable[[Answerer], FakeDaemon],
) -> None:
    fake = fake_daemon(lambda line: b'{"id":"someone else","decision":"allow"}\n')

    async def main() -> None:
        async with await flowgate.AsyncClient.connect(fake.path, timeout=2) as client:
            results = await asyncio.gather(
                *(client.check("p", "r", ["d"]) for _ in range(3)), return_exceptions=True)
            assert all(isinstance(r, flowgate.ProtocolError) for r in results)
            assert not client.connected

    asyncio.run(main())
