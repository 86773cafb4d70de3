"""The asyncio client: the same calls as Client, awaited, on one connection that many
tasks share. Their requests are pipelined (each written whole, in the order the tasks
asked) and one reader task hands each answer, in order, to the request it answers.

The timeout bounds the wait for each next answer once a request is outstanding; when it
passes, or the connection breaks, the connection is closed and every request still
waiting fails with the reason, so a late answer can never be taken for a later request's.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

from flowgate import wire
from flowgate.client import connect_error
from flowgate.errors import (
    DaemonError,
    DisconnectedError,
    FlowgateError,
    IoError,
    ProtocolError,
    TimeoutError,
)
from flowgate.wire import Decision, Direction

_Pending = tuple[Any, "asyncio.Future[dict[str, Any]]"]


def _copy(error: FlowgateError) -> FlowgateError:
    """The same failure as a new exception, one for each request it fails."""
    if isinstance(error, DaemonError):
        return DaemonError(error.code, error.message, error.answer)
    return type(error)(error.message)


class AsyncClient:
    """One connection to flowgated for asyncio code. Make it with
    ``await AsyncClient.connect()``; use it with ``async with`` (or await close()).
    Bound to the event loop it was made in."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        path: str,
        timeout: float,
    ) -> None:
        self._reader = reader
        self._writer: asyncio.StreamWriter | None = writer
        self._path = path
        self.timeout = timeout
        self._pending: deque[_Pending] = deque()
        self._wakeup = asyncio.Event()
        self._next_id = 1
        self._lost_because = ""
        self._last_answers: list[dict[str, Any]] = []
        self._reading = asyncio.get_running_loop().create_task(self._read_answers())

    @classmethod
    async def connect(
        cls, path: str | os.PathLike[str] | None = None, timeout: float = 5.0
    ) -> AsyncClient:
        """As Client.connect."""
        where = os.fspath(path) if path is not None else wire.default_socket_path()
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_unix_connection(
                    where, limit=wire.MAX_ANSWER_BYTES
                )
        except asyncio.TimeoutError:
            raise TimeoutError(f"flowgated at {where} did not accept within {timeout:g} s") from None
        except OSError as error:
            raise connect_error(where, error) from None
        return cls(reader, writer, where, timeout)

    @property
    def path(self) -> str:
        return self._path

    @property
    def connected(self) -> bool:
        return self._writer is not None

    async def close(self) -> None:
        writer = self._writer
        self._lose(lambda: DisconnectedError("this client was closed"))
        self._reading.cancel()
        try:
            await self._reading
        except asyncio.CancelledError:
            pass
        if writer is not None:
            try:
                await writer.wait_closed()
            except OSError:
                pass

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # The calls.

    async def check(
        self,
        purpose: str,
        recipient: str,
        data: Sequence[str],
        *,
        activity: str | None = None,
        subject: str | None = None,
        direction: Direction | str = "send",
        context: Mapping[str, Any] | None = None,
    ) -> Decision:
        request = wire.check_request(
            purpose,
            recipient,
            data,
            activity=activity,
            subject=subject,
            direction=direction,
            context=context,
        )
        return self._decision(await self.request(request))

    async def explain(
        self,
        purpose: str,
        recipient: str,
        data: Sequence[str],
        *,
        activity: str | None = None,
        subject: str | None = None,
        direction: Direction | str = "send",
        context: Mapping[str, Any] | None = None,
    ) -> Decision:
        request = wire.check_request(
            purpose,
            recipient,
            data,
            activity=activity,
            subject=subject,
            direction=direction,
            context=context,
            op="explain",
        )
        return self._decision(await self.request(request))

    async def describe(self) -> dict[str, Any]:
        return wire.answer_or_raise(await self.request({"op": "describe"}))

    async def status(self) -> dict[str, Any]:
        return wire.answer_or_raise(await self.request({"op": "status"}))

    async def reload(self) -> str:
        answer = wire.answer_or_raise(await self.request({"op": "reload"}))
        policy = answer.get("policy")
        return policy if isinstance(policy, str) else ""

    async def batch(self, requests: Iterable[Mapping[str, Any]]) -> list[Decision | DaemonError]:
        """As Client.batch."""
        answers = await self.raw_batch(wire.batch_requests(requests))
        try:
            return [wire.decision_or_error(answer) for answer in answers]
        except ProtocolError as error:
            error.answers = answers
            self._lose(lambda: ProtocolError(error.message))
            raise

    async def request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return (await self.raw_batch([request]))[0]

    async def raw_batch(self, requests: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        futures = self._send(requests)
        writer = self._writer
        if writer is not None:
            try:
                await writer.drain()
            except ConnectionError:
                pass  # the reader says why, to every request waiting
        # Every future is awaited, so none holds an exception nobody retrieved.
        done = await asyncio.gather(*futures, return_exceptions=True)
        answers: list[dict[str, Any]] = []
        for result in done:
            if isinstance(result, BaseException):
                if isinstance(result, FlowgateError):
                    result.answers = answers
                raise result
            answers.append(result)
        return answers

    # The connection.

    def _decision(self, answer: dict[str, Any]) -> Decision:
        try:
            return Decision.from_answer(wire.answer_or_raise(answer))
        except ProtocolError as error:
            self._lose(lambda: ProtocolError(error.message))
            raise

    def _send(self, requests: Iterable[Mapping[str, Any]]) -> list[asyncio.Future[dict[str, Any]]]:
        """Writes the requests whole and queues a future for each answer, with no await in
        between: the order of the queue is the order of the lines on the socket."""
        if self._writer is None:
            raise DisconnectedError(wire.lost_message(self._path, self._lost_because))
        ids, out, self._next_id = wire.with_ids(requests, self._next_id)
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[dict[str, Any]]] = []
        for request_id in ids:
            future: asyncio.Future[dict[str, Any]] = loop.create_future()
            self._pending.append((request_id, future))
            futures.append(future)
        self._writer.write(out)
        self._wakeup.set()
        return futures

    def _lose(self, make_error: Callable[[], FlowgateError]) -> None:
        """Closes the connection and fails every request still waiting."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self._lost_because = make_error().message
        while self._pending:
            _, future = self._pending.popleft()
            if not future.done():
                future.set_exception(make_error())
        self._wakeup.set()

    async def _read_answers(self) -> None:
        try:
            await self._answer_in_order()
        except FlowgateError as error:
            self._lose(lambda: _copy(error))
        except asyncio.CancelledError:
            raise
        except Exception as error:  # never leave a request waiting on a dead reader
            self._lose(lambda: IoError(f"reading flowgated's answers: {error!r}"))

    async def _answer_in_order(self) -> None:
        last: list[dict[str, Any]] = []
        while self._writer is not None:
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            try:
                async with asyncio.timeout(self.timeout):
                    line = await self._reader.readline()
            except asyncio.TimeoutError:
                raise TimeoutError(
                    f"flowgated did not answer within {round(self.timeout * 1000)} ms"
                ) from None
            except ValueError:  # the line outgrew the reader's limit
                raise ProtocolError(
                    f"flowgated sent an answer longer than {wire.MAX_ANSWER_BYTES} bytes"
                ) from None
            except ConnectionError:
                line = b""
            if not line.endswith(b"\n"):
                raise wire.closed_with(last, len(self._pending))
            answer = wire.parse_answer(line)
            request_id, future = self._pending[0]
            wire.check_answers(answer, request_id)
            self._pending.popleft()
            last = [answer]
            if not future.done():  # a caller that was cancelled no longer waits
                future.set_result(answer)
            closing = wire.closing_error(answer)
            if closing is not None:  # the daemon closes after it: so does this client
                unanswered = len(self._pending)
                self._lose(lambda: wire.closed_with([answer], unanswered))

