"""The synchronous client: one connection to flowgated's Unix socket, each call bounded by
the timeout given to connect, and batch() pipelining many checks on that connection.

The same guarantees as the C++ client (client/client.hpp): a timed-out or broken
connection is closed at once, so an answer that arrives late can never be taken for a
later request's; every answer is matched to its request by id. A client holds no global
state: use one per thread (a client shared by threads serializes their calls).
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

from flowgate import wire
from flowgate.errors import (
    DaemonError,
    DisconnectedError,
    FlowgateError,
    IoError,
    NotRunningError,
    ProtocolError,
    TimeoutError,
)
from flowgate.wire import Decision, Direction

_CHUNK = 1 << 16
_SEND_CHUNK = 1 << 20


def connect_error(path: str, error: OSError) -> FlowgateError:
    """What a failed connect() means: nothing listens, or another system error."""
    if isinstance(error, (FileNotFoundError, ConnectionRefusedError)):
        return NotRunningError(f"flowgated is not running at {path} ({error.strerror})")
    return IoError(f"cannot connect to flowgated at {path}: {error.strerror or error}")


class Client:
    """One connection to flowgated. Make it with ``Client.connect()``; use it as a
    context manager (or call close()).

    ``check``/``explain`` return a Decision (a deny too: only ``allowed`` says yes);
    ``describe``/``status`` the daemon's answer; ``reload`` the new policy hash. A request
    the daemon refuses raises DaemonError with its code; a daemon that cannot be reached,
    is too slow or breaks the connection raises NotRunningError, TimeoutError,
    DisconnectedError, ProtocolError or IoError.
    """

    def __init__(self, sock: socket.socket, path: str, timeout: float) -> None:
        sock.setblocking(False)
        self._sock: socket.socket | None = sock
        self._path = path
        self.timeout = timeout
        self._poller = select.poll()
        self._poller.register(sock.fileno(), select.POLLIN)
        self._buffer = bytearray()
        self._lines: deque[bytes] = deque()
        self._next_id = 1
        self._lost_because = ""
        self._lock = threading.Lock()

    @classmethod
    def connect(cls, path: str | os.PathLike[str] | None = None, timeout: float = 5.0) -> Client:
        """Connects to flowgated's socket (``path``, else FLOWGATE_SOCKET, else the system's);
        ``timeout`` (seconds) bounds the connect and every later answer."""
        where = os.fspath(path) if path is not None else wire.default_socket_path()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(where)
        except socket.timeout:
            sock.close()
            raise TimeoutError(f"flowgated at {where} did not accept within {timeout:g} s") from None
        except OSError as error:
            sock.close()
            raise connect_error(where, error) from None
        return cls(sock, where, timeout)

    @property
    def path(self) -> str:
        return self._path

    @property
    def connected(self) -> bool:
        """False after close(), a timeout or a lost connection: connect again."""
        return self._sock is not None

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._lose(DisconnectedError("this client was closed"))

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # The calls.

    def check(
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
        """May ``data`` about ``subject`` go to ``recipient`` for ``purpose``?"""
        request = wire.check_request(
            purpose,
            recipient,
            data,
            activity=activity,
            subject=subject,
            direction=direction,
            context=context,
        )
        return self._decide(request)

    def explain(
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
        """As check, with the rules considered in ``Decision.trace``. Audited too."""
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
        return self._decide(request)

    def describe(self) -> dict[str, Any]:
        """The loaded policy's vocabulary (purposes, parties, categories) and ``policy``."""
        return wire.answer_or_raise(self.request({"op": "describe"}))

    def status(self) -> dict[str, Any]:
        """Version, ``policy``, uptime, ``counters``, ``audit``, ``checkpoints``."""
        return wire.answer_or_raise(self.request({"op": "status"}))

    def reload(self) -> str:
        """Admins only: the new policy's hash. A bad policy raises DaemonError
        ``reload_failed`` whose answer holds the diagnostics; the old policy keeps serving."""
        answer = wire.answer_or_raise(self.request({"op": "reload"}))
        policy = answer.get("policy")
        return policy if isinstance(policy, str) else ""

    def batch(self, requests: Iterable[Mapping[str, Any]]) -> list[Decision | DaemonError]:
        """Pipelines checks (and explains) on this connection: each request a mapping as
        ``flowgate.check_request`` makes it; the results in request order, each a Decision
        or, for a request the daemon refused, its DaemonError (returned, not raised). A
        connection that fails midway raises, with the answers that came in ``answers``."""
        answers = self.raw_batch(wire.batch_requests(requests))
        try:
            return [wire.decision_or_error(answer) for answer in answers]
        except ProtocolError as error:
            with self._lock:
                raise self._lose(error, answers) from None

    def request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Sends any request object and returns the answer as it came (an error answer
        is still an answer). A request without an "id" gets one."""
        return self.raw_batch([request])[0]

    def raw_batch(self, requests: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Pipelines any requests and returns the answers as they came, in order."""
        with self._lock:
            return self._exchange(requests)

    # The connection.

    def _decide(self, request: dict[str, Any]) -> Decision:
        answer = wire.answer_or_raise(self.request(request))
        try:
            return Decision.from_answer(answer)
        except ProtocolError as error:
            with self._lock:
                raise self._lose(error) from None

    def _lose(
        self, error: FlowgateError, answers: list[dict[str, Any]] | None = None
    ) -> FlowgateError:
        """Closes the connection and remembers why, for the calls that follow."""
        if self._sock is not None:
            self._poller.unregister(self._sock.fileno())
            self._sock.close()
            self._sock = None
            self._lost_because = error.message
        self._buffer.clear()
        self._lines.clear()
        if answers is not None:
            error.answers = answers
        return error

    def _take_lines(self, chunk: bytes) -> None:
        """Appends received bytes; complete lines go to the queue of answers."""
        self._buffer += chunk
        if b"\n" not in chunk:
            if len(self._buffer) > wire.MAX_ANSWER_BYTES:
                raise ProtocolError(
                    f"flowgated sent an answer longer than {wire.MAX_ANSWER_BYTES} bytes"
                )
            return
        *lines, rest = self._buffer.split(b"\n")
        self._lines.extend(lines)
        self._buffer = bytearray(rest)

    def _exchange(self, requests: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        if self._sock is None:
            raise DisconnectedError(wire.lost_message(self._path, self._lost_because))
        ids, out, self._next_id = wire.with_ids(requests, self._next_id)
        answers: list[dict[str, Any]] = []
        try:
            self._send_and_receive(self._sock, ids, memoryview(out), answers)
        except FlowgateError as error:
            raise self._lose(error, answers) from None
        closing = wire.closing_error(answers[-1]) if answers else None
        if closing is not None:  # the daemon closes after it: so does this client
            self._lose(closing)
        return answers

    def _send_and_receive(
        self, sock: socket.socket, ids: list[Any], out: memoryview, answers: list[dict[str, Any]]
    ) -> None:
        """Sends and receives together: a large batch must not fill both directions'
        buffers while neither side reads. Once the daemon has closed its end (a send
        fails), what it wrote before closing is still read: the answers it owed, or its
        reason for closing (too_many_connections, line_too_long)."""
        fd = sock.fileno()
        sent = 0
        writing = True
        deadline = time.monotonic() + self.timeout
        while len(answers) < len(ids):
            if self._lines:
                answer = wire.parse_answer(self._lines.popleft())
                wire.check_answers(answer, ids[len(answers)])
                answers.append(answer)
                deadline = time.monotonic() + self.timeout
                continue
            to_send = writing and sent < len(out)
            self._poller.modify(fd, select.POLLIN | (select.POLLOUT if to_send else 0))
            left = deadline - time.monotonic()
            ready = self._poller.poll(max(0, int(left * 1000) + 1)) if left > 0 else []
            if not ready:
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"flowgated did not answer within {round(self.timeout * 1000)} ms"
                    )
                continue
            events = ready[0][1]
            if events & select.POLLOUT and to_send:
                try:
                    sent += sock.send(out[sent : sent + _SEND_CHUNK], socket.MSG_NOSIGNAL)
                except (BlockingIOError, InterruptedError):
                    pass
                except (BrokenPipeError, ConnectionResetError):
                    writing = False  # the daemon closed: read what it said before it did
                except OSError as error:
                    raise DisconnectedError(f"flowgated closed the connection ({error})") from None
            if events & (select.POLLIN | select.POLLHUP | select.POLLERR):
                try:
                    chunk = sock.recv(_CHUNK)
                except (BlockingIOError, InterruptedError):
                    continue
                except ConnectionResetError:  # only after what the daemon sent was read
                    chunk = b""
                except OSError as error:
                    raise IoError(f"reading flowgated's answer: {error}") from None
                if not chunk:
                    raise wire.closed_with(answers, len(ids) - len(answers))
                self._take_lines(chunk)
