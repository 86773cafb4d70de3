"""The wire protocol (docs/protocol.md), shared by Client and AsyncClient: the requests
they build, how an answer line is read and matched to its request, and the Decision an
answer to a check becomes. No sockets here: the two clients differ only in how they wait.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from flowgate.errors import DaemonError, DisconnectedError, FlowgateError, ProtocolError

DEFAULT_SOCKET = "/run/flowgate/flowgate.sock"

# The most an answer line may hold before it is taken for a broken daemon: describe's
# answer is as large as the policy (at most 16 MiB), every other answer far smaller.
MAX_ANSWER_BYTES = 64 * 1024 * 1024

Direction = Literal["send", "receive"]

# The error codes after which the daemon closes the connection (docs/protocol.md).
CLOSING_CODES = frozenset({"line_too_long", "too_many_connections", "line_timeout",
                           "too_many_refused"})


def default_socket_path() -> str:
    """The socket path from FLOWGATE_SOCKET, else the system's."""
    return os.environ.get("FLOWGATE_SOCKET") or DEFAULT_SOCKET


def check_request(
    purpose: str,
    recipient: str,
    data: Sequence[str],
    *,
    activity: str | None = None,
    subject: str | None = None,
    direction: Direction | str = "send",
    context: Mapping[str, Any] | None = None,
    op: str = "check",
) -> dict[str, Any]:
    """The wire request for a check (or, with op="explain", an explain), without an id.

    Names are identifiers or the table's labels. ``context`` is sent as given:
    ``consent`` (bool), ``objection`` (bool), ``legal_basis`` (str), and any key a later
    daemon tests. Fields left at None are left out of the request.
    """
    if isinstance(data, (str, bytes)):
        raise TypeError("data is a sequence of category names, not one string")
    request: dict[str, Any] = {"op": op, "purpose": purpose}
    if activity is not None:
        request["activity"] = activity
    request["recipient"] = recipient
    request["data"] = list(data)
    request["direction"] = direction
    if subject is not None:
        request["subject"] = subject
    if context is not None:
        request["context"] = dict(context)
    return request


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _id_of(value: Any) -> str | None:
    """The "id" of an {"id":…,"label":…} object, or the string itself."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


@dataclass(frozen=True)
class Decision:
    """flowgated's decision on a check or explain. Only ``allowed`` says yes.

    ``rule`` and ``legal_basis`` are the ids of the deciding rule and its legal basis
    (None when none decided); ``obligations`` the ids of what the caller must do;
    ``policy`` the hash of the policy snapshot that decided; ``audit_seq`` the committed
    audit row (None only for an ``audit_unavailable`` deny, which no row records).
    ``answer`` is everything the daemon said, fields this package does not know included
    (explain's ``trace``, an unknown name's suggestions, ...).
    """

    allowed: bool
    reason: str
    rule: str | None
    legal_basis: str | None
    obligations: tuple[str, ...]
    policy: str
    audit_seq: int | None
    answer: dict[str, Any] = field(repr=False, compare=False, hash=False)

    @property
    def trace(self) -> list[dict[str, Any]]:
        """explain's evaluation trace (empty for a check)."""
        trace = self.answer.get("trace")
        return trace if isinstance(trace, list) else []

    @classmethod
    def from_answer(cls, answer: dict[str, Any]) -> Decision:
        """The decision an answer carries; ProtocolError if it carries none."""
        decision = answer.get("decision")
        if decision not in ("allow", "deny"):
            raise ProtocolError(
                f"flowgated answered a check without a decision: {json.dumps(answer)[:200]}"
            )
        obligations = answer.get("obligations")
        seq = answer.get("audit_seq")
        return cls(
            allowed=decision == "allow",
            reason=_text(answer.get("reason")),
            rule=_id_of(answer.get("rule")),
            legal_basis=_id_of(answer.get("legal_basis")),
            obligations=tuple(
                o for o in (_id_of(item) for item in obligations or ()) if o is not None
            )
            if isinstance(obligations, list)
            else (),
            policy=_text(answer.get("policy")),
            audit_seq=seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
            answer=answer,
        )


def encode(request: Mapping[str, Any]) -> bytes:
    """One request line. JSON escapes every newline inside a string, so the line's only
    newline is its end."""
    return json.dumps(request, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def with_ids(requests: Iterable[Mapping[str, Any]], next_id: int) -> tuple[list[Any], bytes, int]:
    """The requests' ids (a request without one gets ``next_id``, counted up), their lines
    joined, and the next id to give. The caller's mappings are not changed."""
    ids: list[Any] = []
    lines: list[bytes] = []
    for request in requests:
        if "id" not in request:
            request = {**request, "id": next_id}
            next_id += 1
        ids.append(request["id"])
        lines.append(encode(request))
    return ids, b"".join(lines), next_id


def parse_answer(line: bytes | bytearray) -> dict[str, Any]:
    """An answer line as an object; ProtocolError for anything else."""
    try:
        answer = json.loads(line)
    except ValueError:  # UnicodeDecodeError and JSONDecodeError both are
        answer = None
    if not isinstance(answer, dict):
        raise ProtocolError("flowgated answered something that is not a JSON object")
    return answer


def check_answers(answer: dict[str, Any], expected_id: Any) -> None:
    """ProtocolError unless ``answer`` answers the request whose id is ``expected_id``:
    an answer for another request means the two sides no longer agree on which answer is
    whose, and nothing after it can be trusted. A null id is the daemon's answer to a
    line it could not read an id from (line_too_long, too_many_connections)."""
    echoed = answer.get("id")
    if echoed is None:
        return
    if echoed != expected_id or isinstance(echoed, bool) != isinstance(expected_id, bool):
        raise ProtocolError(
            f"flowgated answered id {json.dumps(echoed)} where id {json.dumps(expected_id)}"
            " was expected"
        )


def error_in(answer: dict[str, Any]) -> DaemonError | None:
    """The daemon's {"error":{"code","message"}} as a DaemonError, if the answer is one."""
    if "error" not in answer:
        return None
    error = answer["error"]
    code = message = ""
    if isinstance(error, dict):
        code = _text(error.get("code"))
        message = _text(error.get("message"))
    code = code or "unknown"
    said = f"flowgated answered {code}" + (f": {message}" if message else "")
    return DaemonError(code, said, answer)


def closed_with(answers: list[dict[str, Any]], unanswered: int) -> FlowgateError:
    """Why the daemon closed a connection with ``unanswered`` requests still owed: its own
    reason when the last thing it said was an error about the connection rather than a
    request (no id: too_many_connections, line_too_long), else that it closed."""
    closed = f"flowgated closed the connection with {unanswered} request(s) unanswered"
    if answers and answers[-1].get("id") is None:
        error = error_in(answers[-1])
        if error is not None:
            return DaemonError(error.code, f"{error.message} ({closed})", error.answer)
    return DisconnectedError(closed)


def closing_error(answer: dict[str, Any]) -> DaemonError | None:
    """The answer's error if it is one after which the daemon closes the connection."""
    error = error_in(answer)
    return error if error is not None and error.code in CLOSING_CODES else None


def answer_or_raise(answer: dict[str, Any]) -> dict[str, Any]:
    """The answer itself, or its DaemonError raised."""
    error = error_in(answer)
    if error is not None:
        raise error
    return answer


def decision_or_error(answer: dict[str, Any]) -> Decision | DaemonError:
    """A batch's item: the decision, or the daemon's refusal of that one request."""
    error = error_in(answer)
    return error if error is not None else Decision.from_answer(answer)


def batch_requests(requests: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """A batch's requests, each a check (the default op) or an explain."""
    out: list[Mapping[str, Any]] = []
    for request in requests:
        op = request.get("op", "check")
        if op not in ("check", "explain"):
            raise ValueError(f"batch pipelines check and explain requests, not {op!r}")
        out.append(request if "op" in request else {"op": "check", **request})
    return out


def lost_message(path: str, lost_because: str) -> str:
    """What a call on a closed client says."""
    return (
        f"not connected to flowgated at {path}: the connection was closed after"
        f' "{lost_because}"; connect again'
    )
