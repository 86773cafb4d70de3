"""Why a call to flowgated failed, as exceptions named after the C++ client's error kinds.

Each class's ``kind`` is the name the C++ client (``client/client.hpp``) and ``flowgate
check --json`` give the same failure, so logs read alike whichever client wrote them. A
deny is a decision, never one of these: only a request the daemon could not be asked, or
would not answer, raises.
"""

from __future__ import annotations

from typing import Any


class FlowgateError(Exception):
    """Any failure to get an answer from flowgated. ``answers`` holds, for a batch, the
    raw answers that did arrive, in request order, before the failure."""

    kind = "error"

    def __init__(self, message: str, *, answers: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.answers: list[dict[str, Any]] = answers if answers is not None else []


class NotRunningError(FlowgateError):
    """Nothing listens on the socket (no such file, or the connection was refused)."""

    kind = "not_running"


class TimeoutError(FlowgateError):  # noqa: A001 - as asyncio.TimeoutError: flowgate's own
    """No answer in time. The connection is closed, so a late answer can never be taken
    for a later request's; connect again."""

    kind = "timeout"


class DisconnectedError(FlowgateError):
    """The daemon closed the connection, or this client had already lost it (after a
    timeout, say, or close()): connect again."""

    kind = "disconnected"


class ProtocolError(FlowgateError):
    """The answer was not a JSON object, or it answered another request's id. The
    connection is closed: nothing after it could be trusted."""

    kind = "protocol"


class IoError(FlowgateError):
    """Any other system error: a permission on the socket, a path too long, ..."""

    kind = "io"


class DaemonError(FlowgateError):
    """The daemon answered ``{"error":{"code","message"}}``. ``code`` is its code
    (``forbidden``, ``reload_failed``, ``missing_field``, ``too_many_connections``, ...),
    ``answer`` the whole answer (a failed reload's ``diagnostics``, the ``policy`` that
    keeps serving)."""

    kind = "daemon_error"

    def __init__(
        self,
        code: str,
        message: str,
        answer: dict[str, Any],
        *,
        answers: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message, answers=answers)
        self.code = code
        self.answer = answer

    def __reduce__(self) -> tuple[Any, ...]:  # pickled with its code and answer
        return (type(self), (self.code, self.message, self.answer), {"answers": self.answers})
