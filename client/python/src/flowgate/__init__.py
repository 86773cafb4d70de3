"""Ask flowgated, the data-flow authorization daemon, whether personal data may flow.

    import flowgate

    with flowgate.Client.connect() as client:          # FLOWGATE_SOCKET, else the system's
        decision = client.check("health_services", "prevent", ["checkup_result"],
                                activity="lifestyle_programme", subject="p-000123")
        if decision.allowed:
            ...                                         # decision.obligations, .audit_seq

The wire protocol only (docs/protocol.md), standard library only. A deny is a Decision;
failures to get an answer are exceptions named after the C++ client's error kinds.
"""

from flowgate.async_client import AsyncClient
from flowgate.client import Client
from flowgate.errors import (
    DaemonError,
    DisconnectedError,
    FlowgateError,
    IoError,
    NotRunningError,
    ProtocolError,
)
from flowgate.errors import TimeoutError as TimeoutError  # not in __all__: * must not shadow the builtin
from flowgate.wire import DEFAULT_SOCKET, Decision, check_request, default_socket_path

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_SOCKET",
    "AsyncClient",
    "Client",
    "DaemonError",
    "Decision",
    "DisconnectedError",
    "FlowgateError",
    "IoError",
    "NotRunningError",
    "ProtocolError",
    "check_request",
    "default_socket_path",
]
